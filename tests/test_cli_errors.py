"""A new user's mistakes, through the command line as a subprocess: each ends in one
clear line that names what is wrong (a destination with its password hidden, the
driver's reason), with the documented exit code and no traceback."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from simulated import CREDS, gateway_env

from extractor import ConfigError, GatewayConfig
from extractor.simulator import Faults, Population, Simulator

SCRIPT = str(Path(sys.executable).parent / "enos-flows")


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    population = Population(seed=3, flows=20, start=datetime(2026, 1, 1), end=datetime(2026, 1, 5))
    with Simulator(population, credentials=CREDS) as server:
        yield server


@pytest.fixture
def env(sim: Simulator) -> dict[str, str]:
    return {**os.environ, **gateway_env(sim.url)}


def run(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def one_clear_line(done: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """The run ended with ``code`` and one ``enos-flows:`` line holding every needle."""
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("enos-flows:")]
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def some_ids(sim: Simulator, n: int) -> list[str]:
    return list(sim.population.ids(limit=n))


def test_a_non_utf8_ids_file_names_the_line(tmp_path: Path, env: dict[str, str]) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_bytes(b"1000-20260101000000\n# fine\n1001-2026\xe9\n")
    done = run("extract", "--ids-file", str(ids), "--sqlite", str(tmp_path / "w.db"), env=env)
    one_clear_line(done, 2, "ids.txt, line 3: not UTF-8", "0xe9")
    assert not (tmp_path / "w.db").exists()


def test_inline_comments_and_repeats_in_an_ids_file(
    tmp_path: Path, env: dict[str, str], sim: Simulator
) -> None:
    first, second = some_ids(sim, 2)
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{first}  # the first\n\n# a note\n{second}\n{first}\n")
    report = tmp_path / "r.json"
    sim.reset_stats()
    done = run(
        "extract",
        "--ids-file",
        str(ids),
        "--sqlite",
        str(tmp_path / "w.db"),
        "--report",
        str(report),
        env=env,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(report.read_text())
    assert figures["ids"]["seen"] == 3 and figures["ids"]["duplicates"] == 1
    assert sim.stats.requests["get"] == 2, "each ID is fetched once"


def test_a_read_only_sqlite_database(tmp_path: Path, env: dict[str, str]) -> None:
    db = tmp_path / "ro.db"
    sqlite3.connect(db).close()
    url = f"sqlite:///file:{db}?mode=ro&uri=true"
    done = run("extract", "--ids", "x", "--db", url, env=env)
    one_clear_line(done, 1, str(db), "readonly database")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        pytest.param("missing-dir/w.db", "unable to open database file", id="missing-directory"),
        pytest.param("junk.db", "file is not a database", id="not-a-database"),
    ],
)
def test_an_unusable_sqlite_file(
    tmp_path: Path, env: dict[str, str], name: str, reason: str
) -> None:
    path = tmp_path / name
    if name == "junk.db":
        path.write_text("not a database\n" * 100)
    done = run("extract", "--ids", "x", "--sqlite", str(path), env=env)
    one_clear_line(done, 1, str(path), reason)


def test_an_unreachable_database_host_hides_the_password(
    tmp_path: Path, env: dict[str, str]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://etl:hunter2-secret@127.0.0.1:{port}/analytics"
    done = run("extract", "--ids", "x", "--db", url, env=env)
    line = one_clear_line(done, 1, f"127.0.0.1:{port}/analytics", "refused")
    assert "hunter2-secret" not in done.stderr + done.stdout and "***" in line


@pytest.mark.postgres
def test_a_missing_postgresql_schema_is_created(
    tmp_path: Path, env: dict[str, str], sim: Simulator, postgresql_url: str
) -> None:
    done = run(
        "extract",
        "--ids",
        *some_ids(sim, 3),
        "--db",
        postgresql_url,
        "--schema",
        "enos_new",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    import sqlalchemy as sa

    engine = sa.create_engine(postgresql_url)
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT COUNT(*) FROM enos_new.flow_instances")).scalar()
        state = sa.inspect(conn).has_table("extractor_runs", schema="enos_new")
    engine.dispose()
    assert count == 3 and state


@pytest.mark.parametrize("command", ["extract", "sync", "views"])
def test_a_schema_is_validated_everywhere(
    tmp_path: Path, env: dict[str, str], command: str
) -> None:
    args = [command, "--db", f"sqlite:///{tmp_path / 'w.db'}", "--schema", "x; drop table y"]
    if command == "extract":
        args += ["--ids", "x"]
    if command == "sync":
        args += ["--since", "2026-01-01T00:00:00+08:00"]
    done = run(*args, env=env)
    one_clear_line(done, 2, "x; drop table y")


@pytest.mark.parametrize("command", ["extract", "sync"])
def test_a_schema_on_sqlite_is_refused(tmp_path: Path, env: dict[str, str], command: str) -> None:
    args = [command, "--sqlite", str(tmp_path / "w.db"), "--schema", "enos"]
    args += ["--ids", "x"] if command == "extract" else ["--since", "2026-01-01T00:00:00+08:00"]
    done = run(*args, env=env)
    one_clear_line(done, 2, "--schema", "SQLite has none")
    assert not (tmp_path / "w.db").exists()


def test_an_unwritable_report_is_found_before_any_work(tmp_path: Path, env: dict[str, str]) -> None:
    done = run(
        "extract",
        "--ids",
        "x",
        "--sqlite",
        str(tmp_path / "w.db"),
        "--report",
        str(tmp_path / "no-such-dir" / "r.json"),
        env=env,
    )
    one_clear_line(done, 2, "cannot write the report", "No such file or directory")
    assert not (tmp_path / "w.db").exists()


def test_the_file_settings_are_not_hidden_by_flag_defaults(tmp_path: Path) -> None:
    population = Population(seed=3, flows=5, start=datetime(2026, 1, 1), end=datetime(2026, 1, 2))
    with Simulator(population, credentials=CREDS, faults=Faults(latency_ms=1500)) as slow:
        config = tmp_path / "enos.toml"
        config.write_text(
            f'[gateway]\nurl = "{slow.url}"\napp_key = "{CREDS.app_key}"\n'
            f'app_secret = "{CREDS.app_secret}"\norg_id = "{CREDS.org_id}"\n'
            f'user_id = "{CREDS.user_id}"\ntimezone = "GMT+8"\ntimeout_s = 0.3\n'
        )
        plain = {k: v for k, v in os.environ.items() if not k.startswith("ENOS_")}
        done = run(
            "extract",
            "--ids",
            "x",
            "--config",
            str(config),
            "--sqlite",
            str(tmp_path / "w.db"),
            "--max-attempts",
            "1",
            env=plain,
        )
    # The file's 0.3 s timeout, not the flag's 30 s default: the ID fails, the run goes on.
    assert done.returncode == 3, done.stderr
    assert "x: TransientApiError: the gateway did not answer within 0.3 s" in done.stderr


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        pytest.param(
            {"timeout_s": "abc"},
            "timeout_s must be a positive number of seconds, got 'abc'",
            id="timeout",
        ),
        pytest.param({"verify_tls": "no"}, "verify_tls must be true or false", id="verify-tls"),
    ],
)
def test_the_python_api_names_a_bad_setting(setting: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GatewayConfig(
            base_url="https://g", app_key="k", app_secret="s", org_id="o", user_id="u", **setting
        )  # type: ignore[arg-type]


_SIGINT_DEFAULT_THEN_EXEC = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_writes_the_report_and_says_how_to_resume(tmp_path: Path, signum: int) -> None:
    population = Population(seed=3, flows=20, start=datetime(2026, 1, 1), end=datetime(2026, 1, 5))
    with Simulator(population, credentials=CREDS, faults=Faults(latency_ms=30)) as slow:
        settings = {**os.environ, **gateway_env(slow.url)}
        ids = tmp_path / "ids.txt"
        ids.write_text("\n".join(population.ids(limit=600)) + "\n")
        report, db = tmp_path / "r.json", tmp_path / "w.db"
        command = [
            SCRIPT,
            "extract",
            "--ids-file",
            str(ids),
            "--sqlite",
            str(db),
            "--workers",
            "4",
            "--batch-size",
            "50",
            "--report",
            str(report),
        ]
        # As from a terminal: a suite started in the background inherits SIGINT ignored,
        # and an ignored signal stays ignored across exec unless set back first.
        as_from_a_terminal = [sys.executable, "-c", _SIGINT_DEFAULT_THEN_EXEC, *command]
        proc = subprocess.Popen(as_from_a_terminal, env=settings, stderr=subprocess.PIPE, text=True)
        while slow.stats.requests.get("get", 0) < 120:
            time.sleep(0.05)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signum, err
        name = "SIGTERM" if signum == signal.SIGTERM else "SIGINT"
        assert f"interrupted by {name}; run the same command again to resume" in err
        figures = json.loads(report.read_text())
        assert figures["exit_code"] == 1 and figures["fatal_error"]
        assert figures["ids"]["fetched"] >= 50
        rerun = subprocess.run(
            command, env=settings, capture_output=True, text=True, timeout=120, check=False
        )
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(report.read_text())["resumed"] is True
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM flow_instances").fetchone() == (600,)
