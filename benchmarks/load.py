"""Throughput of the loaders on a synthetic batch, with pandas ``to_sql`` beside them.

Builds ~100,000 flow instances (about 2.6 million rows: 8 tasks, 0-5 dependencies,
10 relations and 4 parameters each) and prints rows per second for a first load and a
second upsert of the same instances into SQLite (a file), PostgreSQL (a throwaway server
with default durability settings, or ``ENOS_TEST_POSTGRES_URL``) and Parquet. Prints
figures only; nothing is asserted.

    python benchmarks/load.py                 # full size
    python benchmarks/load.py --instances 5000
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from extractor.load import write_parquet, write_sql
from extractor.tables._frames import FlowFrames, rows_to_arrow
from extractor.tables._schema import (
    DEPENDENCIES,
    FAILURES,
    INSTANCES,
    PARAMETERS,
    QUARANTINE,
    RELATIONS,
    TABLES,
    TASKS,
)

# The server start/stop logic is shared with the test suite's fixture.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from pgserver import fresh_database, postgres_url

TARGETS = {"sqlite": 300_000, "postgresql": 200_000, "parquet": 2_000_000}
"""Rows per second a first load should reach."""

_START = datetime(2026, 1, 1, tzinfo=UTC)
_STATUSES = ("SUCCESS", "SUCCESS", "SUCCESS", "FAIL", "RUNNING", "SKIP")


def build_frames(instances: int, *, seed: int = 7) -> FlowFrames:
    """Build a batch of synthetic instances that uses every table."""
    rng = random.Random(seed)
    rows: dict[str, list[tuple[Any, ...]]] = {t.name: [] for t in TABLES}
    for n in range(instances):
        instance_id = f"{100_000 + n % 500}-{20260101000000 + n:014d}"
        flow_id = 100_000 + n % 500
        trigger = _START + timedelta(seconds=26 * n)  # 100,000 instances span 30 days
        start = trigger + timedelta(seconds=rng.uniform(0, 30))
        end = start + timedelta(seconds=rng.uniform(5, 900))
        cal_dt = trigger.date() if n % 200 else None
        rows[INSTANCES.name].append(_instance(instance_id, flow_id, trigger, start, end, cal_dt))
        nodes = [f"{flow_id}-{k}" for k in range(8)]
        for k, node in enumerate(nodes):
            rows[TASKS.name].append(
                (f"{node}-{n:09d}", instance_id, flow_id * 10 + k, f"task {k} of flow {flow_id}",
                 node, rng.choice(_STATUSES), 100.0 * k, 40.5 * (k % 3), None)
            )  # fmt: skip
        for k in range(rng.randint(0, 5)):
            rows[DEPENDENCIES.name].append(
                (instance_id, f"dep-{k}", flow_id + k + 1, f"upstream flow {k}",
                 f"{flow_id + k + 1}-{20260101000000 + n:014d}", k % 2 == 0, "SUCCESS",
                 -50.0, 20.0 * k, None)
            )  # fmt: skip
        for k in range(10):
            rows[RELATIONS.name].append(
                (instance_id, nodes[k % 8], nodes[(k * 3 + 1) % 8] + f"/{k}")
            )
        for k, (key, value) in enumerate(
            (("bizdate", trigger.strftime("%Y%m%d")), ("env", "prod"), ("retries", "3"),
             ("owner", "ops-team"))
        ):  # fmt: skip
            rows[PARAMETERS.name].append((instance_id, key, value, k))
        if n % 100 == 0:
            rows[QUARANTINE.name].append(
                (instance_id, "graph.relations", 0, "not an edge", '{"from": 1}')
            )
        if n % 250 == 0:
            rows[FAILURES.name].append(
                (f"missing-{n:09d}", "fetch", "NotFoundError", 404, 1101, "no such instance",
                 1, end, None)
            )  # fmt: skip
    return FlowFrames(
        tables={
            t.name: rows_to_arrow(
                t, (dict(zip(t.column_names, r, strict=True)) for r in rows[t.name])
            )
            for t in TABLES
        }
    )


def _instance(
    instance_id: str,
    flow_id: int,
    trigger: datetime,
    start: datetime,
    end: datetime,
    cal_dt: date | None,
) -> tuple[Any, ...]:
    values = {
        "instance_id": instance_id,
        "flow_id": flow_id,
        "flow_name": f"flow {flow_id} 日报",
        "freq": "0 15 * * * ? *",
        "cycle": "H",
        "cycle_name": "hour",
        "do_as": "etl",
        "status": 1,
        "status_desc": "success",
        "status_name": "SUCCESS",
        "is_terminal": True,
        "trigger_time": trigger,
        "start_time": start,
        "end_time": end,
        "record_time": end,
        "duration_s": (end - start).total_seconds(),
        "start_delay_s": (start - trigger).total_seconds(),
        "is_virtual": False,
        "owner": "ops",
        "alert_mode": 1,
        "alert_mode_name": "email",
        "cal_dt": cal_dt,
        "has_edit_pri": True,
        "has_read_pri": True,
        "creator": "ops",
        "owners": "ops;etl",
        "alert_to": "ops@example.com",
        "app_id": "app-1",
        "graph_instance_id": instance_id,
        "task_count": 8,
        "failed_task_count": 0,
        "cron_second": "0",
        "cron_minute": "15",
        "cron_hour": "*",
        "cron_day_of_month": "*",
        "cron_month": "*",
        "cron_day_of_week": "?",
        "cron_year": "*",
        "cron_is_valid": True,
        "cron_description": "At 15 minutes past the hour",
        "cron_interval_s": 3600,
        "next_trigger_time": trigger + timedelta(hours=1),
        "parameters_json": '[{"key":"bizdate","value":"${yyyymmdd}"}]',
        "extra_json": None,
        "extracted_at": end,
    }
    return tuple(values.get(name) for name in INSTANCES.column_names)


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _report(target: str, phase: str, rows: int, seconds: float) -> None:
    goal = TARGETS.get(target)
    note = f"(target {goal:,} rows/s)" if goal and phase == "first load" else ""
    print(f"{target:<22} {phase:<14} {rows:>11,} {seconds:>9.2f} {rows / seconds:>13,.0f}  {note}")


def _loads(target: str, rows: int, load: Callable[[], object]) -> None:
    first = _timed(load)
    _report(target, "first load", rows, first)
    second = _timed(load)
    _report(target, "second upsert", rows, second)
    print(f"{'':<22} second / first = {second / first:.2f} (target <= 2.00)")


def _to_sql(frames: FlowFrames, engine: sa.Engine) -> None:
    for t in TABLES:
        frames.frame(t.name).to_sql(
            t.name, engine, if_exists="append", index=False, chunksize=50_000
        )


def _pandas_baselines(frames: FlowFrames, rows: int, sqlite_url: str, server_url: str) -> None:
    """Time ``DataFrame.to_sql`` on the same frames, converted to pandas beforehand."""
    for t in TABLES:
        frames.frame(t.name)
    with fresh_database(server_url, prefix="bench") as postgresql_url:
        for target, url in (("sqlite", sqlite_url), ("postgres", postgresql_url)):
            engine = sa.create_engine(url)
            seconds = _timed(partial(_to_sql, frames, engine))
            _report(f"pandas to_sql {target}", "first load", rows, seconds)
            engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100_000, help="instances to build")
    parser.add_argument("--skip-pandas", action="store_true", help="leave out pandas to_sql")
    args = parser.parse_args(argv)

    built = time.perf_counter()
    frames = build_frames(args.instances)
    rows = sum(frames.row_counts.values())
    print(f"built {args.instances:,} instances, {rows:,} rows in "
          f"{time.perf_counter() - built:.1f} s: {frames!r}")  # fmt: skip
    print(f"\n{'target':<22} {'phase':<14} {'rows':>11} {'seconds':>9} {'rows/s':>13}")

    with tempfile.TemporaryDirectory(prefix="enos-bench-") as tmp:
        root = Path(tmp)
        sqlite_url = f"sqlite:///{root / 'flows.db'}"
        _loads("sqlite", rows, lambda: write_sql(frames, sqlite_url))
        _loads("parquet", rows, lambda: write_parquet(frames, root / "parquet"))
        with postgres_url() as server_url:
            with fresh_database(server_url, prefix="bench") as pg_url:
                _loads("postgresql", rows, lambda: write_sql(frames, pg_url))
            if not args.skip_pandas:
                _pandas_baselines(frames, rows, f"sqlite:///{root / 'pandas.db'}", server_url)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {peak_mib:,.0f} MiB")


if __name__ == "__main__":
    main()
