"""The SQL loader on SQLite and on a real PostgreSQL server, fast and portable paths alike."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sample_frames import (
    DAY,
    NEXT_DAY,
    T0,
    Row,
    assert_reads_back,
    by_key,
    expected_rows,
    failure,
    frames_with_a_null_day,
    graph,
    instance,
    make_frames,
    parameter,
    relation,
    sample_frames,
    task,
)

import extractor.load._sql as sql_module
from extractor.errors import ConfigError, LoadError
from extractor.load import SqlDestination, create_ddl, read_sql, write_sql
from extractor.load._ddl import build_tables
from extractor.load._portable import write_portable
from extractor.tables._frames import FlowFrames
from extractor.tables._schema import (
    FAILURES,
    INSTANCES,
    PARAMETERS,
    QUARANTINE,
    RELATIONS,
    TABLES,
    TASKS,
    Table,
)

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


@pytest.fixture(params=["fast", "portable"])
def write_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once on the dialect's fast path, once on the portable Core path."""
    if request.param == "portable":
        monkeypatch.setattr(sql_module, "_choose_writer", lambda dialect: write_portable)
    return str(request.param)


def read_rows(
    engine: sa.Engine, table: Table, *, schema: str | None = None, prefix: str = ""
) -> list[Row]:
    """Read a table back through SQLAlchemy with the declared types."""
    target = build_tables(schema=schema, table_prefix=prefix)[table.name]
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(target))]
    return by_key(table, rows)


def read_everything(engine: sa.Engine) -> dict[str, list[Row]]:
    return {t.name: read_rows(engine, t) for t in TABLES}


def ids(engine: sa.Engine, table: Table, column: str = "instance_id") -> list[Any]:
    return sorted(r[column] for r in read_rows(engine, table))


def test_load_reads_back_exactly(database_url: str, database_engine: sa.Engine, write_path: str):
    frames = sample_frames()

    result = write_sql(frames, database_url)

    for t in TABLES:
        assert read_rows(database_engine, t) == expected_rows(frames, t), t.name
    assert result.rows_written == {t.name: frames.tables[t.name].num_rows for t in TABLES}
    assert result.instances_replaced == 0
    assert result.seconds > 0


def test_timestamps_read_back_as_the_same_instants_with_pandas(
    database_url: str, database_engine: sa.Engine
):
    frames = sample_frames()
    write_sql(frames, database_engine)
    expected = frames.instances.set_index("instance_id")["trigger_time"]

    whole = pd.read_sql_table("flow_instances", database_engine).set_index("instance_id")
    query = pd.read_sql(
        "SELECT instance_id, trigger_time, cal_dt FROM flow_instances", database_engine
    ).set_index("instance_id")

    for loaded in (whole["trigger_time"], pd.to_datetime(query["trigger_time"], utc=True)):
        assert str(loaded.dt.tz) == "UTC"
        assert loaded.sort_index().tolist() == expected.sort_index().tolist()
    assert pd.to_datetime(whole.loc["inst-1", "cal_dt"]).date() == DAY


@pytest.mark.postgres
def test_postgresql_instants_do_not_depend_on_the_session_time_zone(
    postgresql_url: str, postgresql_engine: sa.Engine, write_path: str
):
    with postgresql_engine.connect() as conn:
        name = conn.exec_driver_sql("SELECT current_database()").scalar_one()
        conn.exec_driver_sql(f"ALTER DATABASE \"{name}\" SET timezone TO 'Asia/Shanghai'")
        conn.commit()
    postgresql_engine.dispose()  # new sessions take the new zone
    frames = sample_frames()

    write_sql(frames, postgresql_url)

    with postgresql_engine.connect() as conn:
        text = conn.exec_driver_sql(
            "SELECT trigger_time::text FROM flow_instances WHERE instance_id = 'inst-1'"
        ).scalar_one()
    assert text == "2026-02-01 00:00:00.123456+08"
    assert read_rows(postgresql_engine, INSTANCES) == expected_rows(frames, INSTANCES)


def test_sqlite_stores_iso_utc_text(sqlite_engine: sa.Engine, write_path: str):
    write_sql(sample_frames(), sqlite_engine)

    with sqlite_engine.connect() as conn:
        stored = conn.exec_driver_sql(
            "SELECT trigger_time, cal_dt FROM flow_instances WHERE instance_id = 'inst-1'"
        ).one()

    assert tuple(stored) == ("2026-01-31 16:00:00.123456+00:00", "2026-01-31")
    assert dt.datetime.fromisoformat(stored[0]) == T0


def test_reloading_the_same_frames_leaves_the_same_rows(
    database_url: str, database_engine: sa.Engine, write_path: str
):
    frames = sample_frames()
    write_sql(frames, database_url)
    first = read_everything(database_engine)

    result = write_sql(frames, database_url)

    assert read_everything(database_engine) == first
    assert result.instances_replaced == 2


def test_a_child_that_vanished_is_deleted_on_reload(
    database_url: str, database_engine: sa.Engine, write_path: str
):
    write_sql(graph("inst-1", ["a", "b", "c"]), database_url)
    write_sql(graph("inst-2", ["x"]), database_url)

    write_sql(graph("inst-1", ["a", "c"]), database_url)

    assert ids(database_engine, TASKS, "task_inst_id") == ["a", "c", "x"]
    relations = read_rows(database_engine, RELATIONS)
    assert [(r["from_node_id"], r["to_node_id"]) for r in relations] == [("n-a", "n-c")]
    assert ids(database_engine, INSTANCES) == ["inst-1", "inst-2"]


def test_a_task_claimed_by_another_instance_moves_to_it(
    database_url: str, database_engine: sa.Engine, write_path: str
):
    write_sql(graph("inst-1", ["a", "b"]), database_url)

    # The API returned inst-1's graph for inst-2: task "b" now belongs to inst-2.
    write_sql(graph("inst-2", ["b", "c"]), database_url)

    owners = {r["task_inst_id"]: r["instance_id"] for r in read_rows(database_engine, TASKS)}
    assert owners == {"a": "inst-1", "b": "inst-2", "c": "inst-2"}


def test_within_one_batch_the_last_row_for_a_key_wins(
    database_url: str, database_engine: sa.Engine, write_path: str
):
    frames = FlowFrames.concat([graph("inst-1", ["a"], status=2), graph("inst-1", ["a"])])

    result = write_sql(frames, database_url)

    assert [r["status"] for r in read_rows(database_engine, INSTANCES)] == [1]
    assert result.rows_written["flow_instances"] == 1


def test_append_clash_fails_naming_the_table_and_writes_nothing(
    database_url: str, database_engine: sa.Engine, write_path: str
):
    write_sql(graph("inst-1", ["a"]), database_url, mode="append")
    clash = make_frames(
        {
            INSTANCES: [instance("inst-2")],
            TASKS: [task("b", "inst-2"), task("a", "inst-2")],
        }
    )

    with pytest.raises(LoadError, match="task_instances"):
        write_sql(clash, database_url, mode="append")

    assert ids(database_engine, INSTANCES) == ["inst-1"]
    assert ids(database_engine, TASKS, "task_inst_id") == ["a"]


def test_a_failed_upsert_leaves_the_previous_rows_whole(
    database_url: str, database_engine: sa.Engine, write_path: str
):
    write_sql(graph("inst-1", ["a", "b"]), database_url)
    with database_engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE flow_parameters ADD COLUMN audited TEXT")
        conn.exec_driver_sql("UPDATE flow_parameters SET audited = 'yes'")
    before = read_everything(database_engine)
    with database_engine.begin() as conn:  # a column the loader cannot fill
        if database_engine.dialect.name == "sqlite":
            conn.exec_driver_sql("CREATE TRIGGER refuse BEFORE INSERT ON flow_parameters "
                                 "BEGIN SELECT RAISE(ABORT, 'audit required'); END")  # fmt: skip
        else:
            conn.exec_driver_sql("ALTER TABLE flow_parameters ALTER COLUMN audited SET NOT NULL")

    with pytest.raises(LoadError, match="flow_parameters"):
        write_sql(graph("inst-1", ["a", "c"], status=-1), database_url)

    assert read_everything(database_engine) == before


def test_append_adds_new_instances(database_url: str, database_engine: sa.Engine, write_path: str):
    write_sql(graph("inst-1", ["a"]), database_url, mode="append")

    result = write_sql(graph("inst-2", ["b"]), database_url, mode="append")

    assert ids(database_engine, INSTANCES) == ["inst-1", "inst-2"]
    assert result.instances_replaced == 0


def test_replace_empties_the_tables_first(
    database_url: str, database_engine: sa.Engine, write_path: str
):
    write_sql(sample_frames(), database_url)

    write_sql(graph("inst-3", ["z"]), database_url, mode="replace")

    assert ids(database_engine, INSTANCES) == ["inst-3"]
    assert ids(database_engine, TASKS, "task_inst_id") == ["z"]
    assert read_rows(database_engine, QUARANTINE) == []
    assert read_rows(database_engine, FAILURES) == []


def test_failures_are_upserted_and_resolved_by_a_successful_load(
    database_url: str, database_engine: sa.Engine, write_path: str
):
    write_sql(make_frames({FAILURES: [failure("inst-1"), failure("inst-2")]}), database_url)
    write_sql(make_frames({FAILURES: [failure("inst-2", attempts=6)]}), database_url)
    assert [r["attempts"] for r in read_rows(database_engine, FAILURES)] == [3, 6]

    write_sql(graph("inst-1", ["a"]), database_url, mode="append")

    assert ids(database_engine, FAILURES) == ["inst-2"]


def test_a_failure_of_an_instance_loaded_in_the_same_batch_is_dropped(
    database_url: str, database_engine: sa.Engine
):
    frames = make_frames({INSTANCES: [instance("inst-1")], FAILURES: [failure("inst-1")]})

    result = write_sql(frames, database_url)

    assert read_rows(database_engine, FAILURES) == []
    assert result.rows_written["failed_instances"] == 0


def test_a_missing_column_is_added_to_an_existing_table(
    database_url: str, database_engine: sa.Engine
):
    old = sa.Table(
        "flow_parameters",
        sa.MetaData(),
        sa.Column("instance_id", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text),
    )
    with database_engine.begin() as conn:
        old.create(conn)
        conn.execute(sa.insert(old), [{"instance_id": "old", "key": "k", "value": "v"}])
    frames = make_frames(
        {INSTANCES: [instance("inst-1")], PARAMETERS: [parameter("inst-1", "k", "v1", 4)]}
    )

    write_sql(frames, database_url)

    columns = {c["name"] for c in sa.inspect(database_engine).get_columns("flow_parameters")}
    assert "position" in columns
    rows = read_rows(database_engine, PARAMETERS)
    assert [(r["instance_id"], r["position"]) for r in rows] == [("inst-1", 4), ("old", None)]


def test_an_incompatible_existing_column_fails_naming_table_and_column(
    database_url: str, database_engine: sa.Engine
):
    with database_engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE task_instances (task_inst_id TEXT PRIMARY KEY, "
            "instance_id TEXT NOT NULL, task_id VARCHAR(3))"
        )

    with pytest.raises(LoadError, match=r"task_instances\.task_id .*declared int64"):
        write_sql(sample_frames(), database_url)


def test_a_table_without_its_primary_key_is_refused(database_url: str, database_engine: sa.Engine):
    with database_engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE task_relations (instance_id TEXT NOT NULL, "
                             "from_node_id TEXT NOT NULL, to_node_id TEXT NOT NULL)")  # fmt: skip

    with pytest.raises(LoadError, match="task_relations exists without primary key"):
        write_sql(sample_frames(), database_url)


def test_table_prefix_names_every_table(database_url: str, database_engine: sa.Engine):
    frames = sample_frames()

    write_sql(frames, database_url, table_prefix="enos_")
    write_sql(frames, database_url, table_prefix="enos_")

    names = set(sa.inspect(database_engine).get_table_names())
    assert names == {f"enos_{t.name}" for t in TABLES}
    for t in TABLES:
        assert read_rows(database_engine, t, prefix="enos_") == expected_rows(frames, t)


@pytest.mark.postgres
def test_postgresql_schema_is_created_and_used(postgresql_url: str, postgresql_engine: sa.Engine):
    frames = sample_frames()

    write_sql(frames, postgresql_url, schema="Flows", table_prefix="x_")
    write_sql(frames, postgresql_url, schema="Flows", table_prefix="x_")

    inspector = sa.inspect(postgresql_engine)
    assert set(inspector.get_table_names(schema="Flows")) == {f"x_{t.name}" for t in TABLES}
    assert inspector.get_table_names() == []
    for t in TABLES:
        assert read_rows(postgresql_engine, t, schema="Flows", prefix="x_") == expected_rows(
            frames, t
        )


def test_sqlite_has_no_schemas(sqlite_url: str):
    with pytest.raises(ConfigError, match="table_prefix"):
        write_sql(sample_frames(), sqlite_url, schema="flows")


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param('x"; DROP TABLE flow_instances; --', id="injection"),
        pytest.param("1abc", id="leading-digit"),
        pytest.param("a-b", id="hyphen"),
        pytest.param("a" * 64, id="too-long"),
        pytest.param("ä", id="non-ascii"),
        pytest.param("", id="empty-schema"),
    ],
)
@pytest.mark.parametrize("argument", ["schema", "table_prefix"])
def test_invalid_identifiers_are_rejected(sqlite_memory_engine: sa.Engine, argument: str, bad: str):
    if argument == "table_prefix" and bad == "":
        pytest.skip("an empty prefix means no prefix")

    with pytest.raises(ConfigError, match=argument):
        write_sql(sample_frames(), sqlite_memory_engine, **{argument: bad})

    assert sa.inspect(sqlite_memory_engine).get_table_names() == []


def test_a_prefix_that_makes_a_name_too_long_is_rejected():
    with pytest.raises(ConfigError, match="longer than 63"):
        build_tables(table_prefix="p" * 50)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("not a url at all", "not a database URL", id="garbage"),
        pytest.param("nosuchdb://u:s3cret@h/d", "no usable SQLAlchemy driver", id="dialect"),
        pytest.param("postgresql+nodriver://u:s3cret@h/d", "no usable", id="driver"),
        pytest.param("postgresql://u:s3cret@127.0.0.1:1/d", "cannot open", id="unreachable"),
    ],
)
def test_unusable_urls_fail_without_echoing_the_password(url: str, message: str):
    with pytest.raises(LoadError, match=message) as caught:
        write_sql(sample_frames(), url)

    assert "s3cret" not in str(caught.value)


def test_an_unwritable_sqlite_path_fails_clearly(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    with pytest.raises(LoadError, match=r"cannot open sqlite:///.*a-file/flows\.db"):
        write_sql(sample_frames(), f"sqlite:///{blocker}/flows.db")


def test_child_rows_without_their_parent_are_refused(sqlite_memory_engine: sa.Engine):
    frames = make_frames({TASKS: [task("a", "inst-404")]})

    with pytest.raises(LoadError, match=r"instances missing from flow_instances.*inst-404"):
        write_sql(frames, sqlite_memory_engine)


def test_an_unknown_mode_is_a_config_error(sqlite_memory_engine: sa.Engine):
    with pytest.raises(ConfigError, match="mode"):
        write_sql(sample_frames(), sqlite_memory_engine, mode="merge")  # type: ignore[arg-type]


def test_a_loader_writes_many_batches_on_one_engine(database_engine: sa.Engine, write_path: str):
    with SqlDestination(database_engine, chunk_size=2) as loader:
        loader.write(graph("inst-1", ["a", "b", "c", "d", "e"]))
        loader.write(graph("inst-2", ["f"], cal_dt=NEXT_DAY))

    assert ids(database_engine, TASKS, "task_inst_id") == ["a", "b", "c", "d", "e", "f"]
    with database_engine.connect() as conn:  # the caller's engine stays usable
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_sql_files_hold_the_generated_ddl(dialect: str):
    generated = create_ddl(dialect)

    assert (SQL_DIR / f"{dialect}.sql").read_text(encoding="utf-8") == generated, (
        f'regenerate: python -c "from extractor.load import create_ddl; '
        f"print(create_ddl('{dialect}'), end='')\" > sql/{dialect}.sql"
    )


def test_the_generated_ddl_runs_and_the_loader_accepts_its_tables(
    database_url: str, database_engine: sa.Engine
):
    dialect = database_engine.dialect.name
    script = create_ddl(dialect)
    with database_engine.begin() as conn:
        for statement in script.split(";\n"):
            lines = [ln for ln in statement.splitlines() if not ln.startswith("--")]
            if "".join(lines).strip():
                conn.exec_driver_sql("\n".join(lines))

    write_sql(sample_frames(), database_url)

    assert ids(database_engine, INSTANCES) == ["inst-1", "inst-2"]


def test_ddl_for_an_unknown_dialect_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown SQL dialect"):
        create_ddl("nosuchdb")


def test_relations_of_the_same_edge_in_two_instances_are_kept_apart(
    database_url: str, database_engine: sa.Engine
):
    frames = make_frames(
        {
            INSTANCES: [instance("inst-1"), instance("inst-2")],
            RELATIONS: [relation("inst-1", "a", "b"), relation("inst-2", "a", "b")],
        }
    )

    write_sql(frames, database_url)
    write_sql(frames, database_url)

    assert len(read_rows(database_engine, RELATIONS)) == 2


def test_read_sql_gives_back_every_table_typed_as_declared(database_engine: sa.Engine):
    frames = frames_with_a_null_day()
    write_sql(frames, database_engine)
    write_sql(frames, database_engine)  # an upsert over the same rows

    back = read_sql(database_engine)

    assert_reads_back(back, frames)
    assert str(back.instances["trigger_time"].dt.tz) == "UTC"


@pytest.mark.postgres
def test_read_sql_reads_the_tables_of_a_schema_and_prefix(postgresql_url: str):
    write_sql(sample_frames(), postgresql_url, schema="Enos", table_prefix="x_")

    back = read_sql(postgresql_url, schema="Enos", table_prefix="x_")

    assert back.tables[INSTANCES.name].num_rows == 2
    assert read_sql(postgresql_url).tables[INSTANCES.name].num_rows == 0


def test_read_sql_of_an_older_table_reads_missing_columns_as_nulls(sqlite_engine: sa.Engine):
    with sqlite_engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE failed_instances (instance_id TEXT PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO failed_instances VALUES ('gone-1')")

    back = read_sql(sqlite_engine).tables[FAILURES.name]

    assert back.column("instance_id").to_pylist() == ["gone-1"]
    assert back.column("message").to_pylist() == [None]
