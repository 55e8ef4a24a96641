"""Flatten simulator-generated flow instances to Arrow; print instances/s and memory.

Beside it, on the same input in the same run: ``pandas.json_normalize`` (instances, plus
the tasks after decoding each graph string), the usual hand-rolled alternative, and with
``--reference`` the flattener's reference path (every record the careful way).

    python benchmarks/flatten.py [--instances 100000] [--batch 10000] [--stages]

Times are CPU seconds of this process spent in the calls measured; generating the input
is not timed. Memory is the RSS held before a batch is flattened (mostly the input
batch) and the peak while it is flattened and typed. On Linux the peak is reset before
each batch (``/proc/self/clear_refs``), so a peak that stays flat as the total grows
shows memory bounded by the batch; elsewhere it is the process's peak so far.

``--stages`` then splits one batch's time: decoding the graphs, the rest of the work
per record (coercions, columns, typing a chunk of columns at a time), the work per
batch (timestamps, next fires, tables) and the merge into frames. Decoding the records
and typing the task columns is work that any design on msgspec and pyarrow must do, so
the rate those two alone would allow is printed as well: a ceiling for this design.
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

from extractor._fastcolumns import Batch, finish
from extractor._fastpath import _Adder
from extractor._shapes import graph_of, record_of
from extractor._wallclock import shift_for
from extractor.flattener import Rows, flatten_records
from extractor.frames import build_frames
from extractor.simulator import Population

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


class _TimedBatch(Batch):
    """A batch that counts the CPU time spent typing its chunks."""

    seconds = 0.0

    def flush(self) -> None:
        start = time.process_time()
        super().flush()
        self.seconds += time.process_time() - start


def stages(population: Population, size: int, tz: ZoneInfo, when: datetime) -> None:
    """Print where the time of a fresh batch goes, per instance."""
    # Two copies: decoding caches each graph text's UTF-8 form, which the second must pay.
    copy, batch = (next(batches(population, size, size)) for _ in range(2))
    n = len(batch)

    def decode() -> None:
        for raw in copy:
            graph_of(record_of(raw).graph)

    def gather() -> _TimedBatch:
        adder = _Adder()
        adder.batch = timed = _TimedBatch()
        for position, raw in enumerate(batch):
            adder.add(raw, position, None)
        return timed

    shift = shift_for(tz)
    assert shift is not None
    decoding, _ = cpu_seconds(decode)
    gathering, timed = cpu_seconds(gather)
    typing, _ = cpu_seconds(lambda: finish(timed, shift, when))
    rows = flatten_records(batch, source_tz=tz, extracted_at=when)
    merging, _ = cpu_seconds(lambda: build_frames(rows))
    total = gathering + typing + merging
    print(f"\nwhere the time goes, per instance (a fresh batch of {n:,}):")
    for label, seconds in (
        ("decode record and graph (msgspec)", decoding),
        ("coercions and columns, per record", gathering - decoding - timed.seconds),
        ("typing tasks and relations, per chunk", timed.seconds),
        ("per batch: times, next fires, tables", typing),
        ("merge into frames", merging),
        ("total", total),
    ):
        print(f"  {label:40s} {seconds / n * 1e6:6.1f} us  {seconds / total:4.0%}")
    floor = decoding + timed.seconds
    print(
        f"decoding and typing the tasks alone: {n / floor:,.0f} instances/s "
        "(the ceiling, were every other column free)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reference", action="store_true", help="time the reference path too")
    parser.add_argument("--stages", action="store_true", help="split one batch's time")
    args = parser.parse_args()

    population = Population(seed=args.seed, flows=300)
    tz = ZoneInfo("Asia/Shanghai")
    when = datetime.now(UTC)
    ours_s = norm_s = reference_s = 0.0
    done = tasks = took_reference = 0
    task_counts: list[int] = []
    peaks: list[float] = []
    print(f"{'instances':>10} {'ours/s':>9} {'normalize/s':>12} {'held MB':>8} {'peak MB':>8}")
    for batch in batches(population, args.instances, args.batch):
        held = rss_mb()
        reset_peak()

        def ours(batch: list[dict[str, Any]] = batch) -> tuple[Rows, Any]:
            rows = flatten_records(batch, source_tz=tz, extracted_at=when)
            return rows, build_frames(rows)

        seconds, (rows, frames) = cpu_seconds(ours)
        peaks.append(peak_mb())
        ours_s += seconds
        norm_seconds = cpu_seconds(lambda batch=batch: normalize(batch))[0]
        norm_s += norm_seconds
        if args.reference:
            reference_s += cpu_seconds(
                lambda batch=batch: build_frames(
                    flatten_records(batch, source_tz=tz, extracted_at=when, fast=False)
                )
            )[0]
        assert not rows.rejects, rows.rejects[:1]
        assert rows.fast is not None
        took_reference += len(rows.fast.refused)
        done += len(batch)
        tasks += frames.tables["task_instances"].num_rows
        task_counts.extend(frames.tables["flow_instances"].column("task_count").to_pylist())
        print(
            f"{done:>10} {len(batch) / seconds:>9,.0f} {len(batch) / norm_seconds:>12,.0f} "
            f"{held:>8.0f} {peaks[-1]:>8.0f}"
        )
        del rows, frames

    print()
    print(f"instances flattened:        {done:,} ({took_reference} took the reference path)")
    print(
        f"task instances:             {tasks:,} (median {statistics.median(task_counts):.0f}, "
        f"mean {statistics.mean(task_counts):.1f} per instance)"
    )
    print(
        f"extractor flatten -> Arrow: {done / ours_s:,.0f} instances/s "
        f"({ours_s:.2f} CPU s, one core)"
    )
    if args.reference:
        print(f"reference path alone:       {done / reference_s:,.0f} instances/s (-> Arrow)")
    print(f"pandas.json_normalize:      {done / norm_s:,.0f} instances/s ({norm_s:.2f} CPU s)")
    print(
        f"peak RSS while flattening:  {max(peaks):.0f} MB, first batch {peaks[0]:.0f} MB, "
        f"last {peaks[-1]:.0f} MB (batches of {args.batch:,})"
    )
    if args.stages:
        stages(population, args.batch, tz, when)


if __name__ == "__main__":
    main()
