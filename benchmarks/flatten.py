"""Flatten simulator-generated flow instances to Arrow; print instances/s and peak memory.

Beside it, on the same input in the same run: ``pandas.json_normalize`` (instances, plus
the tasks after decoding each graph string), the usual hand-rolled alternative.

    python benchmarks/flatten.py [--instances 100000] [--batch 10000]

Generating the input is not timed. Memory is the process's peak RSS, read after each
batch: flattening works batch by batch, so it should stay flat as the total grows.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from extractor.flatten import flatten_records
from extractor.frames import build_frames
from extractor.simulator import Population


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    population = Population(seed=args.seed, flows=300)
    tz = ZoneInfo("Asia/Shanghai")
    when = datetime.now(UTC)
    ids = population.ids(limit=args.instances)
    flat_s = norm_s = 0.0
    done = tasks = 0
    task_counts: list[int] = []
    print(f"{'instances':>10} {'flatten/s':>10} {'peak RSS MB':>12}")
    while done < args.instances:
        batch = []
        for instance_id in ids:
            record = population.instance(instance_id)
            if record is not None:
                batch.append(record)
            if len(batch) == args.batch:
                break
        if not batch:
            break
        gc.collect()
        t0 = time.process_time()
        rows = flatten_records(batch, source_tz=tz, extracted_at=when)
        frames = build_frames(rows)
        flat_s += time.process_time() - t0
        t0 = time.process_time()
        normalize(batch)
        norm_s += time.process_time() - t0
        done += len(batch)
        tasks += frames.tables["task_instances"].num_rows
        task_counts.extend(frames.tables["flow_instances"].column("task_count").to_pylist())
        assert not rows.rejects, rows.rejects[:1]
        del batch, rows, frames
        print(f"{done:>10} {done / flat_s:>10.0f} {peak_rss_mb():>12.0f}")

    print()
    print(f"instances flattened:        {done}")
    print(
        f"task instances:             {tasks} (median {statistics.median(task_counts):.0f} "
        f"per instance)"
    )
    print(
        f"extractor flatten -> Arrow: {done / flat_s:,.0f} instances/s "
        f"({flat_s:.2f} CPU s, one core)"
    )
    print(f"pandas.json_normalize:      {done / norm_s:,.0f} instances/s ({norm_s:.2f} CPU s)")
    print(f"peak RSS:                   {peak_rss_mb():.0f} MB (batches of {args.batch})")


if __name__ == "__main__":
    main()
