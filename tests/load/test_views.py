"""The BI views on SQLite and on a real PostgreSQL server, against hand-computed answers."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from extractor.errors import ConfigError, LoadError
from extractor.load import write_sql
from extractor.load._views import VIEW_DIALECTS, _split_statements, create_views, view_sql
from extractor.tables._frames import FlowFrames, rows_to_arrow
from extractor.tables._schema import DEPENDENCIES, INSTANCES, STATUS_NAMES, TABLES, TASKS, Table

VIEWS = [
    "v_flow_daily_success",
    "v_flow_timing",
    "v_task_failures",
    "v_slowest_flow_runs",
    "v_flow_run_status",
    "v_flow_dependency_edges",
]

# One clock for the whole dataset, so overdue times are known relative to the query.
NOW = datetime.now(UTC).replace(microsecond=250_000)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

D10, D11, D12 = date(2026, 1, 10), date(2026, 1, 11), date(2026, 1, 12)

# Trigger times: flow 100 ran six times three and two days ago; flow 200 is running now;
# flow 300 ran long ago; flow 400's latest run was a day ago.
TRIGGERS = {
    "a1": NOW - 3 * DAY,
    "a2": NOW - 3 * DAY + HOUR,
    "a3": NOW - 3 * DAY + 2 * HOUR,
    "a4": NOW - 3 * DAY + 3 * HOUR,
    "a5": NOW - 2 * DAY - HOUR,
    "a6": NOW - 2 * DAY,
    "b3": NOW - 3 * HOUR,
    "b1": NOW - 2 * HOUR,
    "b2": NOW - HOUR,
    "c1": NOW - 10 * DAY,
    "c2": NOW - 9 * DAY,
    "d9-old": NOW - 2 * DAY,
    "d1": NOW - DAY,
}


def row(table: Table, **values: Any) -> dict[str, Any]:
    """Return a row of ``table``; unnamed columns are null."""
    unknown = set(values) - set(table.column_names)
    assert not unknown, f"{table.name} has no columns {sorted(unknown)}"
    return {name: values.get(name) for name in table.column_names}


def instance(
    instance_id: str,
    flow_id: int | None,
    flow_name: str | None,
    status: int | None,
    cal_dt: date | None,
    *,
    delay_s: float | None = None,
    duration_s: float | None = None,
    next_after: timedelta | None = DAY,
    task_count: int = 0,
) -> dict[str, Any]:
    """One flow instance; times follow from its trigger time, delay and duration."""
    trigger = TRIGGERS.get(instance_id)
    start = trigger + timedelta(seconds=delay_s) if trigger and delay_s is not None else None
    end = start + timedelta(seconds=duration_s) if start and duration_s is not None else None
    return row(
        INSTANCES,
        instance_id=instance_id,
        flow_id=flow_id,
        flow_name=flow_name,
        status=status,
        status_name=STATUS_NAMES.get(status) if status is not None else None,
        cal_dt=cal_dt,
        trigger_time=trigger,
        start_time=start,
        end_time=end,
        start_delay_s=delay_s,
        duration_s=duration_s,
        next_trigger_time=trigger + next_after if trigger and next_after is not None else None,
        task_count=task_count,
    )


def task(
    task_inst_id: str, instance_id: str, task_id: int | None, name: str, status: str | None
) -> dict[str, Any]:
    return row(
        TASKS,
        task_inst_id=task_inst_id,
        instance_id=instance_id,
        task_id=task_id,
        task_name=name,
        status=status,
    )


def dependency(
    instance_id: str, node_id: str, flow_id: int | None, name: str | None
) -> dict[str, Any]:
    return row(
        DEPENDENCIES, instance_id=instance_id, node_id=node_id, flow_id=flow_id, flow_name=name
    )


def make_frames(rows: Mapping[Table, Sequence[dict[str, Any]]]) -> FlowFrames:
    return FlowFrames(tables={t.name: rows_to_arrow(t, list(rows.get(t, ()))) for t in TABLES})


def flows() -> FlowFrames:
    """Four flows, renamed flows, odd statuses, missing values and one flow-less instance."""
    old, kpi = "Daily KPI (old)", "Daily KPI"
    return make_frames(
        {
            INSTANCES: [
                instance("a1", 100, old, 1, D10, delay_s=1, duration_s=10),
                instance("a2", 100, old, -1, D10, delay_s=2, duration_s=20),
                instance("a3", 100, old, 8, D10, delay_s=3, duration_s=30),
                instance("a4", 100, kpi, 2, D10, delay_s=4),
                instance("a5", 100, kpi, 1, D11, delay_s=5, duration_s=40),
                instance("a6", 100, kpi, 4, D11, delay_s=10, duration_s=100, task_count=3),
                instance("b3", 200, "Hourly load (old)", 42, D10),
                instance("b1", 200, "Hourly load", 0, D10),
                instance("b2", 200, None, 2, D10, next_after=2 * HOUR),
                instance("c1", 300, "Weekly report", 1, D12, delay_s=0, duration_s=7),
                instance(
                    "c2", 300, "Weekly report", 10, D12, delay_s=1, duration_s=40, next_after=None
                ),
                instance("d9-old", 400, "Feed check", 1, D12),
                instance(
                    "d1",
                    400,
                    "Feed check",
                    1,
                    D12,
                    delay_s=0.25,
                    duration_s=5,
                    next_after=timedelta(hours=23, minutes=30),
                ),
                instance("d-null", 400, "Feed check", 1, None),
                instance("orphan", None, "No flow", 1, D10, duration_s=1000),
            ],
            TASKS: [
                task("a1-7", "a1", 7, "extract (old)", "SUCCESS"),
                task("a2-7", "a2", 7, "extract (old)", "FAIL"),
                task("a5-7", "a5", 7, "extract", "FAILED"),
                task("a6-7", "a6", 7, "extract", "TIMEOUT"),
                task("a1-8", "a1", 8, "load", "SUCCESS"),
                task("a2-8", "a2", 8, "load", "INTERNAL_ERROR"),
                task("a5-8", "a5", 8, "load", "SUCCESS"),
                task("a1-9", "a1", 9, "report", "SUCCESS"),
                task("a5-9", "a5", 9, "report", None),
                task("a1-x", "a1", None, "no id", "FAIL"),
                task("b1-20", "b1", 20, "hourly", "RUNNING"),
                task("orphan-1", "orphan", 1, "orphan task", "FAIL"),
            ],
            DEPENDENCIES: [
                dependency("a5", "n1", 200, "Hourly load (as named upstream)"),
                dependency("a5", "n2", 100, "Daily KPI"),
                dependency("a6", "n1", 200, "Hourly load (as named upstream)"),
                dependency("a6", "n3", 200, None),
                dependency("a6", "n4", None, "no flow id"),
                dependency("d9-old", "n1", 999, "External feed v1"),
                dependency("d1", "n1", 999, "External feed"),
            ],
        }
    )


def query(engine: sa.Engine, sql: str) -> list[dict[str, Any]]:
    """Run ``sql``; return rows as dicts, SQLite's timestamp text and 0/1 read as on PostgreSQL."""
    with engine.connect() as conn:
        result = conn.exec_driver_sql(sql)
        return [{k: _typed(k, v) for k, v in r._mapping.items()} for r in result]


def _typed(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column.endswith("_time") and isinstance(value, str):
        return datetime.fromisoformat(value)
    if column == "cal_dt" and isinstance(value, str):
        return date.fromisoformat(value)
    if column.startswith("is_"):
        return bool(value)
    return value


def pick(rows: list[dict[str, Any]], *columns: str) -> list[tuple[Any, ...]]:
    return [tuple(r[c] for c in columns) for r in rows]


@pytest.fixture
def loaded(database_engine: sa.Engine) -> sa.Engine:
    """The database with :func:`flows` loaded and the views created."""
    write_sql(flows(), database_engine)
    assert create_views(database_engine) == VIEWS
    return database_engine


def test_daily_success_counts_outcomes_and_rates_terminal_runs(loaded: sa.Engine):
    rows = query(
        loaded, "SELECT * FROM v_flow_daily_success ORDER BY flow_id, cal_dt IS NULL, cal_dt"
    )

    assert list(rows[0]) == [
        "flow_id",
        "flow_name",
        "cal_dt",
        "runs",
        "succeeded",
        "failed",
        "other_terminal",
        "still_running",
        "success_rate",
    ]
    assert [tuple(r.values()) for r in rows] == [
        # SUCCESS, FAIL, CANCEL, RUNNING: the running one is left out of the rate.
        (100, "Daily KPI", D10, 4, 1, 1, 1, 1, 1 / 3),
        (100, "Daily KPI", D11, 2, 1, 1, 0, 0, 0.5),
        # INIT, RUNNING and an unknown code: nothing finished, so no rate.
        (200, "Hourly load", D10, 3, 0, 0, 0, 3, None),
        (300, "Weekly report", D12, 2, 1, 0, 1, 0, 0.5),
        (400, "Feed check", D12, 2, 2, 0, 0, 0, 1.0),
        (400, "Feed check", None, 1, 1, 0, 0, 0, 1.0),
    ]


def test_flow_timing_interpolates_percentiles_like_percentile_cont(loaded: sa.Engine):
    rows = query(loaded, "SELECT * FROM v_flow_timing ORDER BY flow_id")

    assert list(rows[0]) == [
        "flow_id",
        "flow_name",
        "runs",
        "start_delay_p50_s",
        "start_delay_p90_s",
        "start_delay_p99_s",
        "duration_p50_s",
        "duration_p90_s",
        "duration_p99_s",
        "max_duration_s",
    ]
    assert [tuple(r.values()) for r in rows] == [
        # Delays 1 2 3 4 5 10: p50 at rank 2.5 -> 3.5, p90 at 4.5 -> 7.5, p99 at 4.95 -> 9.75.
        # Durations 10 20 30 40 100: p50 at rank 2 -> 30, p90 at 3.6 -> 40 + 0.6 * 60 = 76,
        # p99 at 3.96 -> 40 + 0.96 * 60 = 97.6. The running a4 has no duration.
        pytest.approx((100, "Daily KPI", 6, 3.5, 7.5, 9.75, 30.0, 76.0, 97.6, 100.0)),
        # No run started: no percentiles.
        (200, "Hourly load", 3, None, None, None, None, None, None, None),
        # Two values interpolate along the line between them.
        pytest.approx((300, "Weekly report", 2, 0.5, 0.9, 0.99, 23.5, 36.7, 39.67, 40.0)),
        # One value is every percentile.
        (400, "Feed check", 3, 0.25, 0.25, 0.25, 5.0, 5.0, 5.0, 5.0),
    ]
    # Exact where no interpolation weight is involved.
    assert rows[0]["duration_p50_s"] == 30.0
    assert rows[0]["start_delay_p50_s"] == 3.5


def test_task_failures_are_ordered_by_failures(loaded: sa.Engine):
    rows = query(loaded, "SELECT * FROM v_task_failures")

    assert list(rows[0]) == [
        "flow_id",
        "flow_name",
        "task_id",
        "task_name",
        "runs",
        "failures",
        "failure_rate",
        "last_failure_time",
    ]
    assert [tuple(r.values()) for r in rows] == [
        # FAIL, FAILED and TIMEOUT count; the latest failure's instance is a6.
        (100, "Daily KPI", 7, "extract", 4, 3, 0.75, TRIGGERS["a6"]),
        (100, "Daily KPI", 8, "load", 3, 1, 1 / 3, TRIGGERS["a2"]),
        # A task without a status is a run, not a failure.
        (100, "Daily KPI", 9, "report", 2, 0, 0.0, None),
        (200, "Hourly load", 20, "hourly", 1, 0, 0.0, None),
    ]


def test_slowest_flow_runs_rank_finished_runs_by_duration(loaded: sa.Engine):
    rows = query(loaded, "SELECT * FROM v_slowest_flow_runs")

    assert list(rows[0]) == [
        "duration_rank",
        "flow_duration_rank",
        "instance_id",
        "flow_id",
        "flow_name",
        "cal_dt",
        "status",
        "status_name",
        "trigger_time",
        "start_time",
        "end_time",
        "duration_s",
        "task_count",
        "failed_task_count",
    ]
    columns = ("duration_rank", "flow_duration_rank", "instance_id", "flow_name", "duration_s")
    assert pick(rows, *columns) == [
        (1, 1, "a6", "Daily KPI", 100.0),
        (2, 2, "a5", "Daily KPI", 40.0),
        (2, 1, "c2", "Weekly report", 40.0),
        (4, 3, "a3", "Daily KPI", 30.0),
        (5, 4, "a2", "Daily KPI", 20.0),
        (6, 5, "a1", "Daily KPI", 10.0),
        (7, 2, "c1", "Weekly report", 7.0),
        (8, 1, "d1", "Feed check", 5.0),
    ]
    assert pick(rows[:1], "status_name", "task_count", "trigger_time", "end_time") == [
        ("INTERNAL_ERROR", 3, TRIGGERS["a6"], TRIGGERS["a6"] + timedelta(seconds=110))
    ]


def test_run_status_flags_running_and_overdue_flows(loaded: sa.Engine):
    before = datetime.now(UTC)
    rows = query(loaded, "SELECT * FROM v_flow_run_status ORDER BY flow_id")
    after = datetime.now(UTC)

    assert list(rows[0]) == [
        "flow_id",
        "flow_name",
        "instance_id",
        "status",
        "status_name",
        "trigger_time",
        "start_time",
        "next_trigger_time",
        "is_running",
        "is_overdue",
        "seconds_overdue",
    ]
    columns = ("flow_id", "instance_id", "status_name", "is_running", "is_overdue")
    assert pick(rows, *columns) == [
        # Its next run was due a day ago and has not appeared.
        (100, "a6", "INTERNAL_ERROR", False, True),
        # Running now, next run due in an hour.
        (200, "b2", "RUNNING", True, False),
        # No known schedule: never overdue.
        (300, "c2", "SKIP", False, False),
        # The latest by trigger time, not by ID; an instance without one is ignored.
        (400, "d1", "SUCCESS", False, True),
    ]
    assert pick(rows, "trigger_time", "next_trigger_time") == [
        (TRIGGERS["a6"], NOW - DAY),
        (TRIGGERS["b2"], NOW + HOUR),
        (TRIGGERS["c2"], None),
        (TRIGGERS["d1"], NOW - timedelta(minutes=30)),
    ]
    for r in rows:
        due = r["next_trigger_time"]
        if not r["is_overdue"]:
            assert r["seconds_overdue"] is None
            continue
        # SQLite's clock and julianday() keep milliseconds.
        low = (before - due).total_seconds() - 0.002
        high = (after - due).total_seconds() + 0.002
        assert low <= r["seconds_overdue"] <= high, r


def test_dependency_edges_join_flows_once_per_pair(loaded: sa.Engine):
    rows = query(
        loaded,
        "SELECT * FROM v_flow_dependency_edges ORDER BY upstream_flow_id, downstream_flow_id",
    )

    assert list(rows[0]) == [
        "upstream_flow_id",
        "upstream_flow_name",
        "downstream_flow_id",
        "downstream_flow_name",
        "instance_count",
        "last_seen_trigger_time",
    ]
    assert [tuple(r.values()) for r in rows] == [
        # A flow that waits for its own earlier run.
        (100, "Daily KPI", 100, "Daily KPI", 1, TRIGGERS["a5"]),
        # Named as the extracted flow is; a6 names flow 200 twice and counts once.
        (200, "Hourly load", 100, "Daily KPI", 2, TRIGGERS["a6"]),
        # Not extracted itself: the latest name the dependency entries give.
        (999, "External feed", 400, "Feed check", 2, TRIGGERS["d1"]),
    ]


def test_views_are_empty_over_empty_tables(database_engine: sa.Engine):
    write_sql(make_frames({}), database_engine)

    assert create_views(database_engine) == VIEWS
    for view in VIEWS:
        assert query(database_engine, f"SELECT * FROM {view}") == [], view


def test_creating_the_views_again_replaces_them(loaded: sa.Engine):
    before = {v: query(loaded, f"SELECT * FROM {v}") for v in VIEWS if v != "v_flow_run_status"}

    assert create_views(loaded) == VIEWS

    assert {v: query(loaded, f"SELECT * FROM {v}") for v in before} == before


def test_creating_views_without_the_tables_fails(database_engine: sa.Engine):
    with pytest.raises(LoadError, match="missing tables flow_instances, task_instances"):
        create_views(database_engine)


def test_views_over_prefixed_tables_read_those_tables(database_engine: sa.Engine):
    # Default-named tables hold nothing, so any name the rewrite missed would show up as
    # an empty or different view.
    write_sql(make_frames({}), database_engine)
    write_sql(flows(), database_engine, table_prefix="enos_")
    create_views(database_engine)

    assert create_views(database_engine, table_prefix="enos_") == [f"enos_{v}" for v in VIEWS]

    reference = sa.create_engine("sqlite://")
    write_sql(flows(), reference)
    create_views(reference)
    for view, order in ORDERED.items():
        got = query(database_engine, f"SELECT * FROM enos_{view} ORDER BY {order}")
        assert got, view
        if view != "v_flow_run_status":  # seconds_overdue follows each database's clock
            assert got == query(reference, f"SELECT * FROM {view} ORDER BY {order}"), view
        assert query(database_engine, f"SELECT * FROM {view}") == [], view


@pytest.mark.postgres
def test_views_live_in_the_schema_of_their_tables(postgresql_engine: sa.Engine):
    write_sql(flows(), postgresql_engine, schema="Warehouse", table_prefix="enos_")

    names = create_views(postgresql_engine, schema="Warehouse", table_prefix="enos_")

    assert names == [f"enos_{v}" for v in VIEWS]
    assert set(sa.inspect(postgresql_engine).get_view_names(schema="Warehouse")) == set(names)
    rows = query(postgresql_engine, 'SELECT * FROM "Warehouse".enos_v_flow_timing ORDER BY 1')
    assert [r["flow_id"] for r in rows] == [100, 200, 300, 400]


def test_views_need_their_own_prefixed_tables(database_engine: sa.Engine):
    write_sql(flows(), database_engine)

    with pytest.raises(LoadError, match="missing tables enos_flow_instances, enos_task"):
        create_views(database_engine, table_prefix="enos_")


@pytest.mark.parametrize(
    ("schema", "prefix", "error"),
    [
        ("bi", "", "SQLite has no schemas"),
        (None, "enos-", "table_prefix must match"),
    ],
)
def test_view_options_are_checked(
    sqlite_engine: sa.Engine, schema: str | None, prefix: str, error: str
):
    with pytest.raises(ConfigError, match=error):
        create_views(sqlite_engine, schema=schema, table_prefix=prefix)


def random_flows(seed: int) -> FlowFrames:
    """Many runs with arbitrary doubles, ties and gaps, for comparing the dialects."""
    rng = random.Random(seed)
    rows = []
    for flow_id in range(1000, 1012):
        for n in range(rng.randint(1, 60)):
            trigger = NOW - timedelta(minutes=n * 7 + flow_id)
            delay = rng.choice([None, 0.0, rng.random() * 120, float(rng.randint(0, 3))])
            duration = rng.choice([None, rng.expovariate(1 / 600), 42.0])
            start = trigger + timedelta(seconds=delay) if delay is not None else None
            rows.append(
                row(
                    INSTANCES,
                    instance_id=f"r-{flow_id}-{n}",
                    flow_id=flow_id,
                    flow_name=f"flow {flow_id}",
                    status=rng.choice(list(STATUS_NAMES)),
                    trigger_time=trigger,
                    start_time=start,
                    start_delay_s=delay,
                    duration_s=duration if start is not None else None,
                )
            )
    return make_frames({INSTANCES: rows})


ORDERED = {
    "v_flow_daily_success": "flow_id, cal_dt IS NULL, cal_dt",
    "v_flow_timing": "flow_id",
    "v_task_failures": "failures DESC, failure_rate DESC, flow_id, task_id",
    "v_slowest_flow_runs": "duration_rank, instance_id",
    "v_flow_run_status": "flow_id",
    "v_flow_dependency_edges": "upstream_flow_id, downstream_flow_id",
}


@pytest.mark.postgres
def test_sqlite_and_postgresql_give_the_same_numbers(
    sqlite_engine: sa.Engine, postgresql_engine: sa.Engine
):
    frames = FlowFrames.concat([flows(), random_flows(seed=20260131)])
    for engine in (sqlite_engine, postgresql_engine):
        write_sql(frames, engine)
        create_views(engine)

    for view, order in ORDERED.items():
        sql = f"SELECT * FROM {view} ORDER BY {order}"
        on_sqlite, on_postgresql = query(sqlite_engine, sql), query(postgresql_engine, sql)
        if view == "v_flow_run_status":  # each database reads its own clock
            for r in on_sqlite + on_postgresql:
                r["seconds_overdue"] = r["seconds_overdue"] is not None
        assert len(on_sqlite) > 1, view
        # Exact equality, floats included: the same definition in the same arithmetic.
        assert on_sqlite == on_postgresql, view


@pytest.mark.parametrize("dialect", VIEW_DIALECTS)
def test_views_files_are_idempotent_statements_under_a_header(dialect: str):
    text = view_sql(dialect)
    statements = _split_statements(text)
    after_last = text[text.rindex(";") + 1 :]

    assert text.startswith("-- BI views over the extractor's tables")
    assert not after_last.strip()
    creates = [s for s in statements if "CREATE" in s and " VIEW " in s]
    assert len(creates) == len(VIEWS)
    if dialect == "postgresql":
        assert len(statements) == len(VIEWS)
        assert all("CREATE OR REPLACE VIEW" in s for s in statements)
    else:
        drops = [s.splitlines()[-1] for s in statements if "DROP VIEW" in s]
        assert drops == [f"DROP VIEW IF EXISTS {v}" for v in VIEWS]


def test_view_sql_rejects_an_unknown_dialect():
    with pytest.raises(ConfigError, match="no views for SQL dialect 'mysql'"):
        view_sql("mysql")
