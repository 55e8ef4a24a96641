"""Run state in a database: runs begun, resumed and finished, checkpoints, watermarks,
each set of prefixed (or schema-qualified) tables with its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from extractor.errors import ConfigError, LoadError
from extractor.load._ddl import as_utc
from extractor.load._state import StateStore

WHEN = datetime(2026, 1, 31, 16, 30, 15, 250000, tzinfo=UTC)


@pytest.fixture
def store(sqlite_engine: sa.Engine) -> StateStore:
    return StateStore(sqlite_engine)


@pytest.fixture
def any_store(database_engine: sa.Engine) -> StateStore:
    """A store on SQLite, then on PostgreSQL."""
    return StateStore(database_engine)


def test_creates_its_tables(sqlite_engine: sa.Engine) -> None:
    StateStore(sqlite_engine, table_prefix="enos_")
    names = set(sa.inspect(sqlite_engine).get_table_names())
    assert {"enos_extractor_checkpoints", "enos_extractor_runs", "enos_extractor_watermarks"} <= (
        names
    )


def test_a_new_run_is_not_resumed_an_unfinished_one_is(store: StateStore) -> None:
    assert store.begin_run("k1", "ids:a,b>db") is False
    assert store.begin_run("k1", "ids:a,b>db") is True
    assert store.begin_run("k2", "ids:c>db") is False


def test_a_finished_run_begins_afresh_without_its_checkpoints(any_store: StateStore) -> None:
    store = any_store
    store.begin_run("k1", "ids:a,b>db")
    store.record("k1", [("a", "loaded")])
    store.finish_run("k1")
    assert store.done("k1", ["a"]) == set()
    assert store.begin_run("k1", "ids:a,b>db") is False
    assert store.begin_run("k1", "ids:a,b>db") is True


def test_finish_run_stamps_the_run(store: StateStore, sqlite_engine: sa.Engine) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    store.begin_run("k1", "ids:a>db")
    runs = sa.Table("extractor_runs", sa.MetaData(), autoload_with=sqlite_engine)
    with sqlite_engine.connect() as conn:
        assert conn.execute(sa.select(runs.c.finished_at)).scalar_one() is None
    store.finish_run("k1")
    with sqlite_engine.connect() as conn:
        row = conn.execute(sa.select(runs.c.description, runs.c.finished_at)).one()
    assert row.description == "ids:a>db"
    finished = as_utc(row.finished_at)
    assert finished is not None and finished >= before


def test_done_says_which_ids_this_run_has_checkpointed(any_store: StateStore) -> None:
    store = any_store
    store.begin_run("k1", "one")
    store.begin_run("k2", "two")
    store.record("k1", [("a", "loaded"), ("b", "failed")])
    store.record("k2", [("c", "loaded")])
    assert store.done("k1", ["a", "b", "c", "d"]) == {"a", "b"}
    assert store.done("k2", ["a", "b", "c", "d"]) == {"c"}
    assert store.done("k1", []) == set()


def test_record_again_replaces_the_outcome(store: StateStore, sqlite_engine: sa.Engine) -> None:
    store.begin_run("k1", "one")
    store.record("k1", [("a", "failed"), ("b", "loaded")])
    store.record("k1", [("a", "loaded"), ("a", "failed"), ("a", "loaded")])
    store.record("k1", [])
    checkpoints = sa.Table("extractor_checkpoints", sa.MetaData(), autoload_with=sqlite_engine)
    with sqlite_engine.connect() as conn:
        rows = conn.execute(
            sa.select(checkpoints.c.instance_id, checkpoints.c.outcome).order_by("instance_id")
        ).all()
    assert [tuple(r) for r in rows] == [("a", "loaded"), ("b", "loaded")]


def test_record_and_done_take_more_ids_than_one_query_holds(store: StateStore) -> None:
    ids = [f"id-{i:04d}" for i in range(1_234)]
    store.begin_run("k1", "many")
    store.record("k1", [(i, "loaded") for i in ids[:1_100]])
    store.record("k1", [(i, "loaded") for i in ids[1_000:]])  # overlaps a chunk boundary
    assert store.done("k1", ids) == set(ids)
    assert store.done("k1", [*ids[:3], "other"]) == set(ids[:3])


def test_a_watermark_is_none_until_set(store: StateStore) -> None:
    assert store.watermark("sync") is None


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(WHEN, id="utc"),
        pytest.param(WHEN.astimezone(timezone(timedelta(hours=8))), id="plus-8"),
        pytest.param(WHEN.astimezone(timezone(timedelta(hours=-5))), id="minus-5"),
    ],
)
def test_a_watermark_comes_back_as_the_same_instant_in_utc(
    any_store: StateStore, value: datetime
) -> None:
    store = any_store
    store.set_watermark("sync", value)
    back = store.watermark("sync")
    assert back == WHEN
    assert back is not None and back.utcoffset() == timedelta(0)


def test_watermarks_are_kept_per_name_and_overwritten(store: StateStore) -> None:
    store.set_watermark("sync", WHEN)
    store.set_watermark("sync:types=1", WHEN - timedelta(days=1))
    store.set_watermark("sync", WHEN + timedelta(hours=1))
    assert store.watermark("sync") == WHEN + timedelta(hours=1)
    assert store.watermark("sync:types=1") == WHEN - timedelta(days=1)
    assert store.watermark("sync:types=0") is None


def test_each_table_prefix_has_its_own_state(database_engine: sa.Engine) -> None:
    plain, enos = StateStore(database_engine), StateStore(database_engine, table_prefix="enos_")
    plain.begin_run("k1", "plain")
    plain.record("k1", [("a", "loaded")])
    plain.set_watermark("sync", WHEN)
    assert enos.begin_run("k1", "enos") is False
    assert enos.done("k1", ["a"]) == set()
    assert enos.watermark("sync") is None
    assert plain.done("k1", ["a"]) == {"a"}
    assert plain.watermark("sync") == WHEN


@pytest.mark.postgres
def test_each_schema_has_its_own_state(postgresql_engine: sa.Engine) -> None:
    with postgresql_engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA one"))
        conn.execute(sa.text("CREATE SCHEMA two"))
    one = StateStore(postgresql_engine, schema="one")
    two = StateStore(postgresql_engine, schema="two")
    one.set_watermark("sync", WHEN)
    one.begin_run("k1", "one")
    assert two.watermark("sync") is None
    assert two.begin_run("k1", "two") is False
    assert one.watermark("sync") == WHEN
    assert sa.inspect(postgresql_engine).get_table_names(schema="two") == sorted(
        ["extractor_checkpoints", "extractor_runs", "extractor_watermarks"]
    )
    assert sa.inspect(postgresql_engine).get_table_names(schema="public") == []


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param("enos-", id="dash"),
        pytest.param("x; drop table y; --", id="injection"),
        pytest.param("1abc", id="leading-digit"),
    ],
)
def test_refuses_a_prefix_that_is_not_an_identifier(
    sqlite_memory_engine: sa.Engine, prefix: str
) -> None:
    with pytest.raises(ConfigError, match="table_prefix"):
        StateStore(sqlite_memory_engine, table_prefix=prefix)
    assert sa.inspect(sqlite_memory_engine).get_table_names() == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(datetime(2026, 1, 31, 16), datetime(2026, 1, 31, 16, tzinfo=UTC), id="naive"),
        pytest.param(
            datetime(2026, 2, 1, tzinfo=timezone(timedelta(hours=8))),
            datetime(2026, 1, 31, 16, tzinfo=UTC),
            id="aware",
        ),
        pytest.param("2026-01-31", None, id="text"),
        pytest.param(None, None, id="none"),
    ],
)
def test_as_utc(value: object, expected: datetime | None) -> None:
    back = as_utc(value)
    assert back == expected
    if back is not None:
        assert back.tzinfo is UTC


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"], ids=["default", "named"])
def test_an_in_memory_database_is_refused_for_run_state(url: str) -> None:
    # Each thread of a run would open a database of its own, empty: refuse, and say why.
    with pytest.raises(LoadError, match=r"in-memory SQLite database cannot keep a run's state"):
        StateStore(sa.create_engine(url))


def test_a_state_read_that_fails_names_the_database(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    store = StateStore(engine, label="the state file")
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE extractor_checkpoints")
    with pytest.raises(LoadError, match="reading the run state in the state file"):
        store.done("run", ["1-2"])
