"""``kill -9`` at each step of a Parquet load, then a rerun: one clean run's rows, no duplicate.

The load runs in a child process (``python -m extractor``'s ``main``) that kills itself
with SIGKILL on reaching a named step, standing in for a crash at that point. Before the
killed run, the directory holds an earlier run whose instances the killed run re-loads,
so a step that showed new rows beside the rows they supersede would show duplicates.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from parquet_checks import duplicates
from simulated import gateway_env

from extractor.load import read_parquet
from extractor.simulator import Population, SimCredentials, Simulator
from extractor.tables._schema import FAILURES, TABLES

CREDS = SimCredentials()
START, END = datetime(2026, 1, 1), datetime(2026, 1, 9)
IDS = list(Population(seed=11, flows=6, start=START, end=END).ids(limit=90))
EARLIER, LATER = IDS[:50], IDS[20:]

_DRIVER = """
import importlib, os, signal, sys
module, name, nth = sys.argv[1], sys.argv[2], int(sys.argv[3])
owner, _, attribute = name.rpartition(".")
target = importlib.import_module(module)
target = getattr(target, owner) if owner else target
real = getattr(target, attribute)
calls = 0

def step(*args, **kwargs):
    global calls
    calls += 1
    if calls == nth:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)

setattr(target, attribute, step)
from extractor.cli import main
sys.exit(main(sys.argv[4:]))
"""

STEPS = [
    pytest.param("extractor.load._parquet_store", "Store.commit_batch", 2, id="mid-batch"),
    pytest.param("extractor.load._parquet", "compact", 1, id="before-compaction"),
    pytest.param(
        "extractor.load._parquet_store", "Store.commit_compaction", 1, id="mid-compaction"
    ),
    pytest.param("extractor.load._parquet_store", "_move", 3, id="applying-compaction"),
]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    population = Population(seed=11, flows=6, start=START, end=END)
    with Simulator(population, credentials=CREDS) as server:
        yield server


def command(
    url: str, tmp: Path, ids: list[str], out: Path, *kill: str
) -> tuple[list[str], dict[str, str]]:
    """An extract into ``out`` as a child process; with ``kill``, it dies at that step."""
    ids_file = tmp / f"ids-{len(ids)}-{ids[0]}.txt"
    ids_file.write_text("\n".join(ids) + "\n")
    args = ["extract", "--ids-file", str(ids_file), "--parquet", str(out), "--quiet"]
    args += ["--batch-size", "15", "--workers", "4"]
    env = {**os.environ, **gateway_env(url)}
    if kill:
        return [sys.executable, "-c", _DRIVER, *kill, *args], env
    return [sys.executable, "-m", "extractor", *args], env


def extract(url: str, tmp: Path, ids: list[str], out: Path, *kill: str) -> int:
    """Run an extract (see :func:`command`) and return its exit code."""
    args, env = command(url, tmp, ids, out, *kill)
    done = subprocess.run(args, check=False, env=env, capture_output=True, text=True, timeout=120)
    return done.returncode


def rows(root: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows but the extraction times, sorted: what equal runs share."""
    frames = read_parquet(root)
    found = {}
    for table in TABLES:
        data = frames.tables[table.name]
        keep = [c for c in data.column_names if c not in ("extracted_at", "failed_at")]
        found[table.name] = sorted(map(tuple, data.select(keep).to_pylist()), key=repr)
    return found


@pytest.fixture(scope="module")
def clean(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("clean")
    assert extract(sim.url, tmp, EARLIER, tmp / "pq") == 0
    assert extract(sim.url, tmp, LATER, tmp / "pq") == 0
    return rows(tmp / "pq")


@pytest.mark.parametrize(("module", "step", "nth"), STEPS)
def test_a_kill_at_each_step_then_a_rerun_leaves_one_clean_runs_rows(
    module: str, step: str, nth: int, sim: Simulator, clean: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "pq"
    assert extract(sim.url, tmp_path, EARLIER, out) == 0
    earlier = rows(out)

    code = extract(sim.url, tmp_path, LATER, out, module, step, str(nth))

    assert code == -signal.SIGKILL
    assert set(duplicates(out).values()) == {0}
    if step != "_move":  # the killed run showed nothing yet
        assert rows(out) == earlier
    assert extract(sim.url, tmp_path, LATER, out) == 0
    assert set(duplicates(out).values()) == {0}
    assert rows(out) == clean
    assert clean[FAILURES.name] == []
    assert not list((out / "_staging").iterdir())


def test_a_reader_polling_through_a_load_never_sees_a_duplicate(
    sim: Simulator, clean: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "pq"
    assert extract(sim.url, tmp_path, EARLIER, out) == 0
    args, env = command(sim.url, tmp_path, LATER, out)
    seen: list[int] = []
    failed_reads = 0
    with subprocess.Popen(args, env=env, stderr=subprocess.DEVNULL) as child:
        while child.poll() is None:
            try:
                seen.append(max(duplicates(out).values()))
            except duckdb.IOException:  # a file removed between listing and reading it
                failed_reads += 1
            except duckdb.Error as exc:
                # DuckDB opens a file more than once per query; a partition file replaced
                # between two opens fails the query (the README says: run it again). It
                # must never come back with rows.
                assert "corrupt" in str(exc).lower() or "invalid data" in str(exc).lower(), exc
                failed_reads += 1

    assert child.returncode == 0
    assert len(seen) > failed_reads, "most reads while loading succeed"
    assert set(seen) == {0}, f"duplicates seen while loading: {seen}"
    assert rows(out) == clean
