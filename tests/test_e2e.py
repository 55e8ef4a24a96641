"""End to end over real HTTP: the simulator, the CLI and the Python API into SQLite/Parquet."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest
from parquet_checks import gateway_env

from extractor import GatewayConfig, extract
from extractor.cli import main
from extractor.schema import DATA_TABLES, FAILURES
from extractor.simulator import Faults, Population, SimCredentials, Simulator, SimulatorProcess

CREDS = SimCredentials()
START, END = datetime(2026, 1, 1), datetime(2026, 1, 3)


def population() -> Population:
    return Population(seed=11, flows=30, start=START, end=END)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(population(), credentials=CREDS) as server:
        yield server


@pytest.fixture
def env(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "ENOS_GATEWAY": sim.url,
        "ENOS_APP_KEY": CREDS.app_key,
        "ENOS_APP_SECRET": CREDS.app_secret,
        "ENOS_ORG_ID": CREDS.org_id,
        "ENOS_USER_ID": CREDS.user_id,
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


def ids_file(tmp_path: Path, ids: list[str], name: str = "ids.txt") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(ids) + "\n")
    return path


def some_ids(n: int) -> list[str]:
    return list(population().ids(limit=n))


def table_rows(db: Path, table: str) -> list[tuple[Any, ...]]:
    """Every row but the extraction time, sorted: what two equivalent runs share."""
    with sqlite3.connect(db) as conn:
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        keep = [c for c in cols if c not in ("extracted_at", "failed_at", "attempts")]
        return sorted(conn.execute(f"SELECT {', '.join(keep)} FROM {table}").fetchall(), key=repr)


def snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {t.name: table_rows(db, t.name) for t in DATA_TABLES}


def test_cli_extract_into_sqlite_and_parquet(
    tmp_path: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    ids = some_ids(150)
    db, pq = tmp_path / "w.sqlite", tmp_path / "pq"
    code = main(
        [
            "extract",
            "--ids-file",
            str(ids_file(tmp_path, ids)),
            "--sqlite",
            str(db),
            "--parquet",
            str(pq),
            "--quiet",
            "--workers",
            "4",
            "--batch-size",
            "40",
        ]
    )
    assert code == 0, capsys.readouterr().err
    pop = population()
    expected_tasks = sum(len(_graph(pop.instance(i))["tasks"]) for i in ids)
    rows = snapshot(db)
    assert sorted(r[0] for r in rows["flow_instances"]) == sorted(ids)
    assert len(rows["task_instances"]) == expected_tasks
    parquet_instances = ds.dataset(pq / "flow_instances", partitioning="hive").to_table()
    assert sorted(parquet_instances.column("instance_id").to_pylist()) == sorted(ids)
    parquet_tasks = ds.dataset(pq / "task_instances", partitioning="hive").count_rows()
    assert parquet_tasks == expected_tasks


def _graph(record: dict[str, Any] | None) -> dict[str, Any]:
    import json

    assert record is not None
    graph = record["graph"]
    return json.loads(graph) if isinstance(graph, str) else graph


def test_views_over_an_extract(
    tmp_path: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "w.sqlite"
    assert main(["extract", "--ids", *some_ids(40), "--sqlite", str(db), "--quiet"]) == 0
    assert main(["views", "--sqlite", str(db)]) == 0
    assert "v_flow_daily_success" in capsys.readouterr().out
    with sqlite3.connect(db) as conn:
        runs = conn.execute("SELECT SUM(runs) FROM v_flow_daily_success").fetchone()[0]
    assert runs == 40


def test_views_over_prefixed_tables(
    tmp_path: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "w.sqlite"
    load = ["extract", "--ids", *some_ids(30), "--sqlite", str(db), "--quiet"]
    assert main([*load, "--table-prefix", "enos_"]) == 0
    assert main(["views", "--sqlite", str(db), "--table-prefix", "enos_"]) == 0
    assert "enos_v_flow_daily_success" in capsys.readouterr().out
    with sqlite3.connect(db) as conn:
        runs = conn.execute("SELECT SUM(runs) FROM enos_v_flow_daily_success").fetchone()[0]
    assert runs == 30
    assert main(["views", "--sqlite", str(db), "--schema", "bi"]) == 2
    assert "SQLite has no schemas" in capsys.readouterr().err


def test_rerun_replaces_rows_without_duplicates(tmp_path: Path, env: dict[str, str]) -> None:
    path = ids_file(tmp_path, some_ids(80))
    db = tmp_path / "w.sqlite"
    args = ["extract", "--ids-file", str(path), "--sqlite", str(db), "--quiet"]
    assert main(args) == 0
    first = snapshot(db)
    assert main([*args, "--no-resume"]) == 0
    assert snapshot(db) == first


def test_missing_ids_are_recorded_and_the_rest_load(
    tmp_path: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    good = some_ids(30)
    bad = ["999-20260101000000", "not-an-id"]
    db = tmp_path / "w.sqlite"
    report = tmp_path / "report.json"
    code = main(
        ["extract", "--ids", *good, *bad, "--sqlite", str(db), "--quiet", "--report", str(report)]
    )
    assert code == 3
    assert len(table_rows(db, "flow_instances")) == 30
    with sqlite3.connect(db) as conn:
        failed = dict(conn.execute("SELECT instance_id, error_class FROM failed_instances"))
    assert failed == {i: "NotFoundError" for i in bad}
    err = capsys.readouterr().err
    assert "NotFoundError" in err and "--retry-failed" in err
    assert '"failed_fetch": 2' in report.read_text()


def test_bad_credentials_are_fatal_and_secret_free(
    tmp_path: Path,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ENOS_APP_SECRET", "wrong-secret-123")
    code = main(["extract", "--ids", *some_ids(5), "--sqlite", str(tmp_path / "w.sqlite")])
    err = capsys.readouterr().err
    assert code == 1
    assert "refused the credentials" in err
    assert "wrong-secret-123" not in err


def test_unreachable_gateway_is_a_clear_fatal_error(
    tmp_path: Path,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ENOS_GATEWAY", "http://127.0.0.1:9")
    code = main(
        [
            "extract",
            "--ids",
            "x",
            "--sqlite",
            str(tmp_path / "w.sqlite"),
            "--max-attempts",
            "2",
            "--quiet",
        ]
    )
    assert code == 1
    assert "cannot connect to the gateway" in capsys.readouterr().err


def test_unwritable_destination_is_a_clear_error(
    tmp_path: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main(["extract", "--ids", "x", "--parquet", str(blocker / "sub"), "--quiet"])
    assert code in (1, 2)
    assert "cannot" in capsys.readouterr().err


def test_discovery_by_trigger_window(tmp_path: Path, env: dict[str, str]) -> None:
    db = tmp_path / "w.sqlite"
    code = main(
        [
            "extract",
            "--from",
            "2026-01-01T00:00:00+08:00",
            "--to",
            "2026-01-01T03:00:00+08:00",
            "--sqlite",
            str(db),
            "--quiet",
        ]
    )
    assert code == 0
    pop = population()
    window = pop.search_ids(
        pop.to_epoch_ms(datetime(2026, 1, 1)), pop.to_epoch_ms(datetime(2026, 1, 1, 3))
    )
    assert sorted(r[0] for r in table_rows(db, "flow_instances")) == sorted(window)
    assert window


def test_python_api_returns_frames(sim: Simulator) -> None:
    gateway = GatewayConfig(
        base_url=sim.url,
        app_key=CREDS.app_key,
        app_secret=CREDS.app_secret,
        org_id=CREDS.org_id,
        user_id=CREDS.user_id,
    )
    ids = some_ids(20)
    frames = extract([*ids, "404-20260101000000"], gateway=gateway)
    assert sorted(frames.instances["instance_id"]) == sorted(ids)
    assert frames.failures["instance_id"].tolist() == ["404-20260101000000"]
    assert str(frames.instances["trigger_time"].dtype) == "datetime64[us, UTC]"


FAULTS = [
    pytest.param(Faults(throttle=0.05, retry_after="seconds", retry_after_s=0.05), id="429-s"),
    pytest.param(Faults(throttle=0.05, retry_after="http-date"), id="429-date"),
    pytest.param(Faults(throttle=0.05, retry_after="zero"), id="429-zero"),
    pytest.param(Faults(throttle=0.05, retry_after="negative"), id="429-negative"),
    pytest.param(Faults(throttle=0.05, retry_after="absurd"), id="429-absurd"),
    pytest.param(Faults(throttle=0.05, retry_after="none"), id="429-none"),
    pytest.param(Faults(server_error=0.2, error_burst=3), id="5xx-burst"),
    pytest.param(Faults(timeout=0.05, hang_s=1.0), id="timeout"),
    pytest.param(Faults(drop=0.2), id="drop"),
    pytest.param(Faults(malformed=0.2), id="malformed"),
    pytest.param(Faults(code_error=0.2), id="code-62109"),
    pytest.param(Faults(expire_token_every=7), id="token-expiry"),
    pytest.param(Faults(rate_limit_rps=40), id="server-rate-limit"),
    pytest.param(Faults(latency_ms=5, latency_jitter_ms=20), id="latency"),
]


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], dict[str, Any]]:
    ids = some_ids(120)
    tmp = tmp_path_factory.mktemp("clean")
    db = tmp / "w.sqlite"
    with Simulator(population(), credentials=CREDS) as server:
        _run_cli(server.url, tmp, ids, db)
    return ids, snapshot(db)


def _run_cli(url: str, tmp: Path, ids: list[str], db: Path, *extra: str) -> int:
    env = gateway_env(url, CREDS)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return main(
            [
                "extract",
                "--ids-file",
                str(ids_file(tmp, ids)),
                "--sqlite",
                str(db),
                "--quiet",
                "--workers",
                "8",
                "--timeout",
                "0.5",
                "--max-attempts",
                "8",
                "--max-wait",
                "0.5",
                "--batch-size",
                "50",
                *extra,
            ]
        )
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.mark.parametrize("faults", FAULTS)
def test_every_fault_class_loads_the_same_tables_as_a_clean_run(
    faults: Faults, clean_run: tuple[list[str], dict[str, Any]], tmp_path: Path
) -> None:
    ids, expected = clean_run
    db = tmp_path / "w.sqlite"
    with Simulator(population(), credentials=CREDS, faults=faults) as server:
        code = _run_cli(server.url, tmp_path, ids, db)
        injected = server.stats.faults_injected + server.stats.throttled
    assert code == 0
    assert snapshot(db) == expected
    assert table_rows(db, FAILURES.name) == []
    if faults.latency_ms == 0:
        assert injected > 0


def test_unrecoverable_ids_are_in_failed_instances_with_their_reason(
    clean_run: tuple[list[str], dict[str, Any]], tmp_path: Path
) -> None:
    ids, expected = clean_run
    permanent = {ids[0]: "not_found", ids[1]: "no_privilege"}
    faults = Faults(permanent=permanent, server_error=0.1)
    db = tmp_path / "w.sqlite"
    with Simulator(population(), credentials=CREDS, faults=faults) as server:
        assert _run_cli(server.url, tmp_path, ids, db) == 3
    with sqlite3.connect(db) as conn:
        failed = conn.execute(
            "SELECT instance_id, stage, error_class, api_code, attempts FROM failed_instances"
            " ORDER BY instance_id"
        ).fetchall()
    assert sorted(failed) == sorted(
        [
            (ids[0], "fetch", "NotFoundError", None, 1),
            (ids[1], "fetch", "PermanentApiError", 62103, 1),
        ]
    )
    loaded = {r[0] for r in table_rows(db, "flow_instances")}
    assert loaded == set(ids) - set(permanent)

    # The gateway recovers: --retry-failed fetches only those two, and the tables converge.
    with Simulator(population(), credentials=CREDS) as server:
        env_url = server.url
        code = _run_cli_retry(env_url, db)
        assert server.stats.requests.get("get", 0) == 2
    assert code == 0
    assert snapshot(db) == expected
    assert table_rows(db, FAILURES.name) == []


def _run_cli_retry(url: str, db: Path) -> int:
    os.environ.update(
        {
            "ENOS_GATEWAY": url,
            "ENOS_APP_KEY": CREDS.app_key,
            "ENOS_APP_SECRET": CREDS.app_secret,
            "ENOS_ORG_ID": CREDS.org_id,
            "ENOS_USER_ID": CREDS.user_id,
        }
    )
    try:
        return main(["extract", "--retry-failed", "--sqlite", str(db), "--quiet"])
    finally:
        for k in ("ENOS_GATEWAY", "ENOS_APP_KEY", "ENOS_APP_SECRET", "ENOS_ORG_ID", "ENOS_USER_ID"):
            os.environ.pop(k, None)


def test_kill_9_mid_run_then_resume_leaves_no_duplicates_and_no_gaps(
    clean_run: tuple[list[str], dict[str, Any]], tmp_path: Path
) -> None:
    ids, expected = clean_run
    db, pq = tmp_path / "w.sqlite", tmp_path / "pq"
    path = ids_file(tmp_path, ids)
    with SimulatorProcess(
        seed=11, flows=30, start=START, end=END, faults=Faults(latency_ms=40)
    ) as server:
        env = {
            **os.environ,
            "ENOS_GATEWAY": server.url,
            "ENOS_APP_KEY": CREDS.app_key,
            "ENOS_APP_SECRET": CREDS.app_secret,
            "ENOS_ORG_ID": CREDS.org_id,
            "ENOS_USER_ID": CREDS.user_id,
        }
        cmd = [
            sys.executable,
            "-m",
            "extractor",
            "extract",
            "--ids-file",
            str(path),
            "--sqlite",
            str(db),
            "--parquet",
            str(pq),
            "--quiet",
            "--workers",
            "2",
            "--batch-size",
            "10",
        ]
        child = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _loaded(db) < 30:
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        partial = _loaded(db)
        assert 0 < partial < len(ids), "the kill must land mid-run"
        server.reset_stats()
        server.set_faults(Faults())
        resumed = subprocess.run(
            cmd, check=False, env=env, capture_output=True, text=True, timeout=120
        )
        assert resumed.returncode == 0, resumed.stderr
        fetched_again = server.stats().requests.get("get", 0)
    assert snapshot(db) == expected
    assert fetched_again <= len(ids) - partial + 10  # at most one batch fetched twice
    parquet = ds.dataset(pq / "flow_instances", partitioning="hive").to_table()
    assert sorted(parquet.column("instance_id").to_pylist()) == sorted(ids)


def _loaded(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=0.1) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM flow_instances").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_sync_converges_as_running_instances_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pop = Population(seed=11, flows=30, start=START, end=END, now=datetime(2026, 1, 1, 6))
    db = tmp_path / "w.sqlite"
    with Simulator(pop, credentials=CREDS) as server:
        for key, value in {
            "ENOS_GATEWAY": server.url,
            "ENOS_APP_KEY": CREDS.app_key,
            "ENOS_APP_SECRET": CREDS.app_secret,
            "ENOS_ORG_ID": CREDS.org_id,
            "ENOS_USER_ID": CREDS.user_id,
        }.items():
            monkeypatch.setenv(key, value)
        sync = ["sync", "--sqlite", str(db), "--quiet", "--type", "1"]
        first = [
            *sync,
            "--since",
            "2026-01-01T00:00:00+08:00",
            "--until",
            "2026-01-01T06:00:00+08:00",
        ]
        assert main(first) == 0
        moving_before = _moving(db)
        assert moving_before, "the simulator should have runs still going at 06:00"

        pop.advance(timedelta(hours=3))
        assert main([*sync, "--until", "2026-01-01T09:00:00+08:00"]) == 0
        rows_after = snapshot(db)
        assert main([*sync, "--until", "2026-01-01T09:00:00+08:00"]) == 0  # repeated run
        assert snapshot(db) == rows_after

    expected = set(
        pop.search_ids(
            pop.to_epoch_ms(datetime(2026, 1, 1)), pop.to_epoch_ms(datetime(2026, 1, 1, 9))
        )
    )
    with sqlite3.connect(db) as conn:
        loaded = dict(conn.execute("SELECT instance_id, status FROM flow_instances"))
    assert set(loaded) == expected
    assert all(loaded[i] == pop.status(i) for i in loaded)
    finished = [i for i in moving_before if loaded[i] != pop.status(i)]
    assert finished == []
    assert any(pop.status(i) in (-1, 1, 4, 7, 8, 10) for i in moving_before)


def test_sync_only_upserts(tmp_path: Path, env: dict[str, str]) -> None:
    db = str(tmp_path / "w.sqlite")
    assert main(["sync", "--sqlite", db, "--mode", "replace", "--since", "2026-01-01"]) == 2


def test_first_sync_needs_a_start(
    tmp_path: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync", "--sqlite", str(tmp_path / "w.sqlite"), "--quiet"]) == 2
    assert "give --since for the first sync" in capsys.readouterr().err


def test_each_table_prefix_and_set_of_types_keeps_its_own_watermark(
    tmp_path: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "w.sqlite")
    window = ["--since", "2026-01-01T00:00:00+08:00", "--until", "2026-01-01T01:00:00+08:00"]
    synced_a = ["sync", "--sqlite", db, "--quiet", "--table-prefix", "a_"]
    assert main([*synced_a, *window]) == 0
    # Another prefix in the same database, or another set of types, has synced nothing
    # yet: borrowing a_'s watermark would skip what it never loaded.
    assert main(["sync", "--sqlite", db, "--quiet", "--table-prefix", "b_"]) == 2
    assert main([*synced_a, "--type", "1"]) == 2
    assert "give --since for the first sync" in capsys.readouterr().err
    assert main([*synced_a, "--until", "2026-01-01T02:00:00+08:00"]) == 0
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"a_extractor_watermarks", "a_extractor_runs", "a_flow_instances"} <= tables
    assert not any(t.startswith("extractor_") for t in tables)


def _moving(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [
            r[0]
            for r in conn.execute("SELECT instance_id FROM flow_instances WHERE NOT is_terminal")
        ]
