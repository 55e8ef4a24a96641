"""Flatten simulator-generated flow instances to Arrow; print instances/s and memory.

Beside it, on the same input in the same run: ``pandas.json_normalize`` (instances, plus
the tasks after decoding each graph string), the usual hand-rolled alternative. It does
less than the flattener (no coercions, time zones, schedules, relations or parameters),
so the ratio is a floor.

    python benchmarks/flatten.py [--instances 100000] [--batch 10000]

Times are CPU seconds of this process spent in the calls measured; generating the input
is not timed. Memory is the RSS held before a batch is flattened (mostly the input
batch) and the peak while it is flattened and typed. On Linux the peak is reset before
each batch (``/proc/self/clear_refs``), so a peak that stays flat as the total grows
shows memory bounded by the batch; elsewhere it is the process's peak so far.

Each batch's time is split into making the rows (decoding, coercions, schedules) and
typing them into Arrow tables.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from extractor.simulator import Population
from extractor.tables._flattener import flatten_records
from extractor.tables._frames import build_frames

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def rss_mb() -> float:
    """The resident set now (Linux), else the process's peak."""
    if _STATUS.exists():
        return int(re.findall(r"VmRSS:\s+(\d+)", _STATUS.read_text())[0]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    if _CLEAR_REFS.exists():
        _CLEAR_REFS.write_text("5")  # resets VmHWM, the peak resident set


def peak_mb() -> float:
    """The peak resident set since :func:`reset_peak` (Linux), else the process's."""
    if _STATUS.exists():
        return int(re.findall(r"VmHWM:\s+(\d+)", _STATUS.read_text())[0]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds(work: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.process_time()
    result = work()
    return time.process_time() - start, result


def normalize(batch: list[dict[str, Any]]) -> int:
    records = []
    for raw in batch:
        record = dict(raw)
        graph = record["graph"]
        record["graph"] = json.loads(graph) if isinstance(graph, str) else graph
        records.append(record)
    instances = pd.json_normalize(records, max_level=0)
    tasks = pd.json_normalize(records, record_path=["graph", "tasks"], meta=["instanceId"])
    return len(instances) + len(tasks)


def batches(population: Population, total: int, size: int) -> Iterator[list[dict[str, Any]]]:
    batch = []
    for instance_id in population.ids(limit=total):
        record = population.instance(instance_id)
        if record is not None:
            batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    population = Population(seed=args.seed, flows=300)
    tz = ZoneInfo("Asia/Shanghai")
    when = datetime.now(UTC)
    rows_s = typing_s = norm_s = 0.0
    done = tasks = 0
    task_counts: list[int] = []
    peaks: list[float] = []
    print(
        f"{'instances':>10} {'ours/s':>9} {'normalize/s':>12} {'ratio':>6} "
        f"{'held MB':>8} {'peak MB':>8}"
    )
    for batch in batches(population, args.instances, args.batch):
        held = rss_mb()
        reset_peak()

        making, rows = cpu_seconds(
            lambda batch=batch: flatten_records(batch, source_tz=tz, extracted_at=when)
        )
        typing, frames = cpu_seconds(lambda rows=rows: build_frames(rows))
        peaks.append(peak_mb())
        seconds = making + typing
        rows_s += making
        typing_s += typing
        norm_seconds = cpu_seconds(lambda batch=batch: normalize(batch))[0]
        norm_s += norm_seconds
        assert not rows.rejects, rows.rejects[:1]
        done += len(batch)
        tasks += frames.tables["task_instances"].num_rows
        task_counts.extend(frames.tables["flow_instances"].column("task_count").to_pylist())
        print(
            f"{done:>10} {len(batch) / seconds:>9,.0f} {len(batch) / norm_seconds:>12,.0f} "
            f"{norm_seconds / seconds:>5.1f}x {held:>8.0f} {peaks[-1]:>8.0f}"
        )
        del rows, frames

    print()
    ours_s = rows_s + typing_s
    print(f"instances flattened:        {done:,}")
    print(
        f"task instances:             {tasks:,} (median {statistics.median(task_counts):.0f}, "
        f"mean {statistics.mean(task_counts):.1f} per instance)"
    )
    print(
        f"extractor flatten -> Arrow: {done / ours_s:,.0f} instances/s "
        f"({ours_s:.2f} CPU s, one core: rows {rows_s / done * 1e6:.0f} us, "
        f"typing {typing_s / done * 1e6:.0f} us per instance)"
    )
    print(
        f"pandas.json_normalize:      {done / norm_s:,.0f} instances/s ({norm_s:.2f} CPU s); "
        f"the flattener is {norm_s / ours_s:.1f}x as fast"
    )
    print(
        f"peak RSS while flattening:  {max(peaks):.0f} MB, first batch {peaks[0]:.0f} MB, "
        f"last {peaks[-1]:.0f} MB (batches of {args.batch:,})"
    )


if __name__ == "__main__":
    main()
