"""What runs and syncs ask of a destination, SQL or Parquet: the failed, settled and
moving instances, a ``replace`` run, state made only when a run needs it, ``finish``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sample_frames import (
    FAILURES,
    INSTANCES,
    TASKS,
    failure,
    graph,
    instance,
    make_frames,
    sample_frames,
)

from extractor.load import ParquetDestination, SqlDestination, read_parquet
from extractor.load._loader import WriteMode
from extractor.load._state import Moving

Kind = str
KINDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    pytest.param("parquet", id="parquet"),
]
EXTRACTED = datetime(2026, 2, 1, tzinfo=UTC)


class Opener:
    """Opens destinations of one kind on one place (a database or a directory)."""

    def __init__(self, kind: Kind, where: str) -> None:
        self.kind, self.where = kind, where
        self.opened: list[SqlDestination] = []

    def __call__(self, mode: WriteMode = "upsert") -> SqlDestination | ParquetDestination:
        if self.kind == "parquet":
            return ParquetDestination(self.where, mode=mode)
        destination = SqlDestination(self.where, mode=mode)
        self.opened.append(destination)
        return destination


@pytest.fixture(params=KINDS)
def open_destination(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    kind = request.param
    where = str(tmp_path / "out") if kind == "parquet" else request.getfixturevalue(f"{kind}_url")
    opener = Opener(kind, where)
    yield opener
    for destination in opener.opened:
        destination.close()


def written(destination: SqlDestination | ParquetDestination, *frames: object) -> None:
    for batch in frames:
        destination.write(batch)  # type: ignore[arg-type]
    destination.finish()


def instance_ids(destination: SqlDestination | ParquetDestination) -> list[str]:
    back = (
        read_parquet(destination.path)
        if isinstance(destination, ParquetDestination)
        else destination.read()
    )
    return sorted(back.tables[INSTANCES.name].column("instance_id").to_pylist())


def task_ids(destination: SqlDestination | ParquetDestination) -> list[str]:
    back = (
        read_parquet(destination.path)
        if isinstance(destination, ParquetDestination)
        else destination.read()
    )
    return sorted(back.tables[TASKS.name].column("task_inst_id").to_pylist())


def test_a_fresh_destination_holds_nothing(open_destination: Opener) -> None:
    destination = open_destination()
    assert destination.failed_ids() == []
    assert destination.terminal_ids(["inst-1"]) == set()
    assert destination.moving() == {}


def test_failed_ids(open_destination: Opener) -> None:
    destination = open_destination()
    written(destination, sample_frames(), make_frames({FAILURES: [failure("inst-7")]}))
    assert sorted(destination.failed_ids()) == ["inst-7", "inst-9"]


def test_an_instance_loaded_later_is_no_longer_failed(open_destination: Opener) -> None:
    destination = open_destination()
    written(destination, make_frames({FAILURES: [failure("a"), failure("b")]}), graph("a", ["t"]))
    assert destination.failed_ids() == ["b"]


def test_terminal_ids_are_those_loaded_in_a_final_status(open_destination: Opener) -> None:
    destination = open_destination()
    written(destination, sample_frames())  # inst-1 SUCCESS, inst-2 not terminal, inst-9 failed
    assert destination.terminal_ids(["inst-1", "inst-2", "inst-9", "unknown"]) == {"inst-1"}
    assert destination.terminal_ids(["inst-2"]) == set()
    assert destination.terminal_ids([]) == set()


def test_moving_instances_come_back_with_utc_times(open_destination: Opener) -> None:
    destination = open_destination()
    running = instance(
        "running",
        status=2,
        is_terminal=False,
        trigger_time=datetime(2026, 1, 31, 23, 30, tzinfo=UTC),
        extracted_at=EXTRACTED,
    )
    unknown = instance(
        "unknown-status", status=99, is_terminal=None, trigger_time=None, extracted_at=EXTRACTED
    )
    written(destination, make_frames({INSTANCES: [instance("done"), running, unknown]}))
    moving = destination.moving()
    assert moving == {
        "running": Moving(datetime(2026, 1, 31, 23, 30, tzinfo=UTC), EXTRACTED),
        "unknown-status": Moving(None, EXTRACTED),
    }
    times = [t for m in moving.values() for t in m if t is not None]
    assert len(times) == 3
    assert all(t.utcoffset() == timedelta(0) for t in times)


def test_replace_empties_once_then_upserts(open_destination: Opener) -> None:
    written(open_destination(), graph("old-1", ["t1"]), graph("old-2", ["t2"]))
    destination = open_destination(mode="replace")
    written(destination, graph("new-1", ["t3"]), graph("new-2", ["t4"]), graph("new-1", ["t5"]))
    assert destination.mode == "upsert"
    assert instance_ids(destination) == ["new-1", "new-2"]
    assert task_ids(destination) == ["t4", "t5"]


def test_an_explicit_mode_leaves_the_destination_mode(open_destination: Opener) -> None:
    destination = open_destination(mode="replace")
    destination.write(graph("a", ["t1"]), mode="upsert")
    assert destination.mode == "replace"
    written(destination, graph("b", ["t2"]))
    assert instance_ids(destination) == ["b"]


def test_state_is_made_only_when_asked_for(open_destination: Opener, tmp_path: Path) -> None:
    destination = open_destination()
    written(destination, sample_frames())
    if isinstance(destination, ParquetDestination):
        destination.failed_ids()
        state_file = destination.path / "_extractor_state.sqlite"
        assert not state_file.exists()
        read_parquet(destination.path)
        assert not state_file.exists()
        store = destination.state
        assert state_file.exists()
    else:
        destination.read()
        destination.moving()
        assert not [t for t in sa.inspect(destination.engine).get_table_names() if "extractor" in t]
        store = destination.state
        assert {"extractor_runs", "extractor_checkpoints", "extractor_watermarks"} <= set(
            sa.inspect(destination.engine).get_table_names()
        )
    assert destination.state is store
    assert store.begin_run("k", "d") is False


def test_state_is_kept_beside_the_data(open_destination: Opener) -> None:
    first = open_destination()
    first.state.set_watermark("sync", EXTRACTED)
    assert open_destination().state.watermark("sync") == EXTRACTED


def test_sql_state_takes_the_prefix_of_the_data(sqlite_url: str) -> None:
    with SqlDestination(sqlite_url, table_prefix="enos_") as destination:
        destination.state.set_watermark("sync", EXTRACTED)
        names = set(sa.inspect(destination.engine).get_table_names())
    assert {"enos_flow_instances", "enos_extractor_watermarks"} <= names
    assert "extractor_watermarks" not in names
    with SqlDestination(sqlite_url) as plain:
        assert plain.state.watermark("sync") is None


def test_parquet_batches_are_visible_after_finish(tmp_path: Path) -> None:
    destination = ParquetDestination(tmp_path / "out")
    destination.write(sample_frames())
    destination.write(graph("inst-3", ["t3"]))
    assert read_parquet(destination.path).tables[INSTANCES.name].num_rows == 0
    assert destination.failed_ids() == []
    assert destination.terminal_ids(["inst-1"]) == set()
    destination.finish()
    assert instance_ids(destination) == ["inst-1", "inst-2", "inst-3"]
    assert destination.failed_ids() == ["inst-9"]
    assert destination.terminal_ids(["inst-1", "inst-3"]) == {"inst-1", "inst-3"}


def test_sql_batches_are_visible_at_once(sqlite_url: str) -> None:
    with SqlDestination(sqlite_url) as destination:
        destination.write(sample_frames())
        assert instance_ids(destination) == ["inst-1", "inst-2"]
        destination.finish()
        assert instance_ids(destination) == ["inst-1", "inst-2"]
