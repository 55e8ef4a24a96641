"""The notebooks: stored without outputs, and run top to bottom on the venv's own kernel.

Each notebook asserts its own facts in its cells (the missed runs it finds are the ones
the simulator planted, the graph's failed tasks are the run's count, ...), so running
it is the test. They run as ``make pictures`` runs them, charts saved, so that path is
tested too.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from extractor.run._demo import run_demo

ROOT = Path(__file__).parents[1]
_SPEC = importlib.util.spec_from_file_location("notebook_runner", ROOT / "notebooks" / "run.py")
assert _SPEC is not None and _SPEC.loader is not None
runner = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(runner)

PICTURES = {
    "flow_health": {
        "success_heatmap.png",
        "timeline.png",
        "delay_duration.png",
        "delay_duration_trend.png",
        "missed_runs.png",
        "most_failures.png",
    },
    "task_graph": {"task_graph.png"},
}


NOTEBOOK_TIMEOUT_S = 120
"""The budget is 60 s a notebook (they take 5-20 s); doubled, for a machine shared with
other test runs, before pytest-timeout fails the test."""


def _by_name(path: Path) -> str:
    return path.stem


def _stderr(notebook: Any) -> list[str]:
    """Return what the cells wrote to stderr: warnings, mostly."""
    return [
        output.text
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream" and output.name == "stderr"
    ]


def test_every_notebook_is_known() -> None:
    assert {p.stem for p in runner.NOTEBOOKS} == set(PICTURES)


@pytest.mark.parametrize("path", runner.NOTEBOOKS, ids=_by_name)
def test_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.outputs for cell in code] == [[] for _ in code]
    assert {cell.execution_count for cell in code} == {None}
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", ())]
    assert len(tagged) == 1, "one cell tagged parameters, for run.py to give values after"


@pytest.mark.timeout(NOTEBOOK_TIMEOUT_S)
@pytest.mark.parametrize("path", runner.NOTEBOOKS, ids=_by_name)
def test_runs_top_to_bottom_on_the_simulator(path: Path, tmp_path: Path) -> None:
    notebook = runner.execute(path, SOURCE="simulator", PICTURES=str(tmp_path))
    assert _stderr(notebook) == []
    assert {p.name for p in tmp_path.iterdir()} == PICTURES[path.stem]


@pytest.mark.timeout(NOTEBOOK_TIMEOUT_S)
@pytest.mark.parametrize("path", runner.NOTEBOOKS, ids=_by_name)
def test_runs_on_the_demo_warehouse(
    path: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = tmp_path_factory.getbasetemp() / "demo"
    if not (demo / "warehouse.sqlite").exists():
        assert run_demo(demo, instances=400) == 0
        capsys.readouterr()
    notebook = runner.execute(path, SOURCE="demo", WAREHOUSE=str(demo / "warehouse.sqlite"))
    assert _stderr(notebook) == []


def test_readme_shows_the_pictures_make_pictures_commits() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = set(re.findall(r"!\[[^\]]+\]\((docs/img/[^)]+\.png)\)", readme))
    named = {f"docs/img/{name}" for name in re.findall(r"`(\w+\.png)`", readme)}
    made = {f"docs/img/{name}" for names in PICTURES.values() for name in names}
    assert shown >= {
        "docs/img/success_heatmap.png",
        "docs/img/timeline.png",
        "docs/img/missed_runs.png",
        "docs/img/task_graph.png",
    }
    assert shown | named == made
    assert {str(p.relative_to(ROOT)) for p in (ROOT / "docs" / "img").glob("*.png")} == made


def test_kernel_is_this_interpreter(tmp_path: Path) -> None:
    probe = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import sys\nprint(sys.executable, end='')")]
    )
    nbformat.write(probe, tmp_path / "probe.ipynb")
    ran = runner.execute(tmp_path / "probe.ipynb")
    assert ran.cells[0].outputs[0].text == sys.executable
