"""Several ``enos-flows extract`` processes, started together, loading overlapping windows
into one PostgreSQL database and one Parquet directory: the same rows as one sequential
load, each once, and every writer exits 0.

So that the writers really collide rather than by luck of timing, the test holds them at
one point of creating the tables and lets them go together: it creates one table without
its index and locks it, so each writer waits there (having created the tables before it
in its own transaction) until all of them do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pgserver import fresh_database
from simulated import CREDS, gateway_env
from sqlalchemy.schema import CreateTable

from extractor import read_parquet, read_sql
from extractor.load._ddl import build_tables
from extractor.simulator import Population, Simulator
from extractor.tables._frames import FlowFrames
from extractor.tables._schema import DEPENDENCIES, TABLES

SCRIPT = str(Path(sys.executable).parent / "enos-flows")
ZONE = "Asia/Shanghai"
# Overlapping windows, so that the writers upsert many of the same instances at once.
WINDOWS = [
    ("2026-01-01T00:00", "2026-01-01T03:00"),
    ("2026-01-01T01:00", "2026-01-01T04:00"),
    ("2026-01-01T00:30", "2026-01-01T04:00"),
    ("2026-01-01T02:00", "2026-01-01T05:00"),
]
UNION = ("2026-01-01T00:00", "2026-01-01T05:00")
# Times that differ between two loads of the same instance.
_VOLATILE = {"extracted_at", "failed_at", "attempts"}


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    population = Population(seed=5, flows=6, start=datetime(2026, 1, 1), end=datetime(2026, 1, 4))
    with Simulator(population, credentials=CREDS) as server:
        yield server


def extract(sim: Simulator, window: tuple[str, str], *destination: str) -> subprocess.Popen[str]:
    """Start one extract run; small batches, so the writers' transactions interleave."""
    command = [SCRIPT, "extract", "--from", window[0], "--to", window[1], *destination]
    command += ["--batch-size", "25", "--workers", "4", "--quiet"]
    env = {**os.environ, **gateway_env(sim.url), "ENOS_TIMEZONE": ZONE}
    return subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)


@contextmanager
def gate(url: str, writers: int) -> Iterator[None]:
    """Hold the writers at the index of ``flow_dependencies`` until ``writers`` of them wait."""
    engine = sa.create_engine(url)
    waiting = sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
    try:
        with engine.begin() as conn:
            conn.execute(CreateTable(build_tables()[DEPENDENCIES.name]))
        with engine.begin() as conn:
            conn.execute(sa.text(f"LOCK TABLE {DEPENDENCIES.name} IN ACCESS EXCLUSIVE MODE"))
            yield
            deadline = time.monotonic() + 120
            # Another connection: pg_stat_activity stays as first read within a transaction.
            with engine.connect() as watcher:
                while watcher.execute(waiting).scalar_one() < writers:
                    assert time.monotonic() < deadline, "the writers never reached the gate"
                    watcher.rollback()
                    time.sleep(0.1)
    finally:
        engine.dispose()


def content(frames: FlowFrames) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted, without the columns two loads differ in."""
    tables = frames.to_arrow()
    found = {}
    for declared in TABLES:
        data = tables[declared.name]
        keep = [c for c in data.column_names if c not in _VOLATILE]
        rows = [tuple(r[c] for c in keep) for r in data.select(keep).to_pylist()]
        found[declared.name] = sorted(rows, key=repr)
    return found


def keys(frames: FlowFrames) -> dict[str, list[tuple[Any, ...]]]:
    tables = frames.to_arrow()
    return {
        t.name: [tuple(r.values()) for r in tables[t.name].select(list(t.primary_key)).to_pylist()]
        for t in TABLES
    }


@pytest.mark.postgres
def test_concurrent_extracts_load_each_row_once(
    sim: Simulator, postgresql_server_url: str, tmp_path: Path
) -> None:
    with (
        fresh_database(postgresql_server_url) as shared_db,
        fresh_database(postgresql_server_url) as sequential_db,
    ):
        shared_pq, sequential_pq = tmp_path / "shared", tmp_path / "sequential"
        with gate(shared_db, len(WINDOWS)):
            runs = [
                extract(sim, window, "--db", shared_db, "--parquet", str(shared_pq))
                for window in WINDOWS
            ]
        errors = [run.communicate()[1] for run in runs]
        assert [run.returncode for run in runs] == [0] * len(runs), errors
        one = extract(sim, UNION, "--db", sequential_db, "--parquet", str(sequential_pq))
        error = one.communicate()[1]
        assert one.returncode == 0, error

        expected = read_sql(sequential_db)
        assert expected.to_arrow()["flow_instances"].num_rows > 250
        for loaded in (read_sql(shared_db), read_parquet(shared_pq)):
            for table, found in keys(loaded).items():
                assert len(found) == len(set(found)), f"duplicate keys in {table}"
            assert content(loaded) == content(expected)
        assert content(read_parquet(sequential_pq)) == content(expected)
