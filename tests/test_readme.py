"""The README stays true: its column reference and its option tables match the code."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import extractor
from extractor._lazy import _homes
from extractor.cli._arguments import parser
from extractor.simulator import build_simulator
from extractor.tables import markdown_reference

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
PACKAGES = ("gateway", "tables", "load", "run")


def test_column_reference_is_generated_from_the_schema() -> None:
    block = re.search(
        r"<!-- BEGIN GENERATED: extractor.tables.markdown_reference\(\) -->\n(.*)"
        r"<!-- END GENERATED -->",
        README,
        re.DOTALL,
    )
    assert block is not None
    assert block.group(1) == markdown_reference(), (
        "regenerate the README block with extractor.tables.markdown_reference()"
    )


@pytest.mark.parametrize(
    "command", ["extract", "sync", "simulate", "schema", "views", "compact", "demo"]
)
def test_every_option_is_documented(command: str) -> None:
    sub = parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    options = {
        opt
        for action in sub._actions
        for opt in action.option_strings
        if opt.startswith("--") and opt != "--help"
    }
    missing = sorted(o for o in options if not re.search(rf"(?<![\w-]){o}(?![\w-])", README))
    assert missing == []


def test_quick_start_is_the_two_make_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("```", 2)[1]
    assert [line.split("#")[0].strip() for line in quick.strip("sh\n").splitlines()] == [
        "make demo",
        "make test",
    ]


@pytest.mark.parametrize("name", ["extractor", *(f"extractor.{p}" for p in PACKAGES)])
def test_public_api_is_exactly_all(name: str) -> None:
    package = importlib.import_module(name)
    public = {n for n in dir(package) if not n.startswith("_")}
    modules = {n for n in public if isinstance(getattr(package, n), ModuleType)}
    assert public - modules == set(package.__all__)
    assert len(set(package.__all__)) == len(package.__all__)
    for exported in package.__all__:
        assert getattr(package, exported) is not None
    assert not hasattr(package, "no_such_name")
    if "__getattr__" in vars(package):  # lazy: its TYPE_CHECKING imports say where names live
        assert set(_homes(inspect.getsource(package))) == set(package.__all__)


def test_modules_inside_the_packages_are_private() -> None:
    root = Path(extractor.__file__).parent
    for package in PACKAGES:
        modules = [m.name for m in (root / package).glob("*.py") if m.name != "__init__.py"]
        assert modules and all(m.startswith("_") for m in modules), package


def test_the_simulator_example_runs_as_written(tmp_path: Path) -> None:
    """The quick start's simulator block, run by bash on a free port, loads its window."""
    block = README.split("Against the bundled simulator", 1)[1].split("```sh\n", 1)[1]
    script = block.split("```", 1)[0]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = script.replace("8089", str(port)).replace(
        ".venv/bin/", f"{Path(sys.executable).parent}/"
    )
    shell = subprocess.Popen(
        ["bash", "-e", "-c", script],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, err = shell.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGTERM)  # the simulator too, should the script fail
    assert shell.returncode == 0, err
    with sqlite3.connect(tmp_path / "flows.sqlite") as conn:
        count, tasks_with_status = conn.execute(
            "SELECT (SELECT COUNT(*) FROM flow_instances), "
            "(SELECT COUNT(status) FROM task_instances)"
        ).fetchone()
    assert count > 1000 and tasks_with_status == 0  # --detail list: no task status


def test_help_starts_without_the_heavy_libraries() -> None:
    """`enos-flows --help` and `import extractor` load neither pandas, pyarrow nor
    SQLAlchemy; the commands that need them import them."""
    probe = (
        "import sys, extractor, extractor.cli; "
        "print(sorted(m for m in ('pandas', 'pyarrow', 'sqlalchemy', 'requests') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
    assert extractor.flatten.__module__ == "extractor.run._pipeline", "a function, not a module"


PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)


def _quick_start_env(url: str) -> dict[str, str]:
    """The ``ENOS_*`` variables of the quick start's simulator block, pointed at ``url``."""
    block = README.split("Against the bundled simulator", 1)[1].split("```sh\n", 1)[1]
    variables = dict(re.findall(r"(ENOS_\w+)=(\S+)", block.split("```", 1)[0]))
    return variables | {"ENOS_GATEWAY": url}


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_blocks_run_as_written(index: int, tmp_path: Path) -> None:
    """Each Python block of the README, as a script, against what `simulate` serves."""
    assert len(PYTHON_BLOCKS) == 2, "a new block needs its checks here"
    with build_simulator() as sim:  # the defaults of `enos-flows simulate`
        env = {**os.environ, **_quick_start_env(sim.url)}
        result = subprocess.run(
            [sys.executable, "-c", PYTHON_BLOCKS[index]],
            check=False,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert result.returncode == 0, result.stderr
    if index == 0:
        assert "exit code 0" in result.stdout
        assert "2019-08-06 09:32:00" in result.stdout and "2019-08-07 09:32:00" in result.stdout
        with contextlib.closing(sqlite3.connect(tmp_path / "warehouse.sqlite")) as db:
            loaded = db.execute("SELECT count(*) FROM flow_instances").fetchone()[0]
            views = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'view'")
            assert loaded > 3 and views.fetchone()[0] > 0
        assert any((tmp_path / "lake" / "flow_instances").glob("cal_dt=*/part-0.parquet"))
    else:
        assert result.stdout.strip() == "2 calls"  # ENOS_TIMEZONE spares the zone call
