"""Small, hand-made batches of flow frames for the loader tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from extractor.tables._frames import FlowFrames, arrow_schema, rows_to_arrow
from extractor.tables._schema import (
    DEPENDENCIES,
    FAILURES,
    INSTANCES,
    PARAMETERS,
    QUARANTINE,
    RELATIONS,
    TABLES,
    TASKS,
    Table,
)

T0 = datetime(2026, 1, 31, 16, 0, 0, 123456, tzinfo=UTC)
DAY = date(2026, 1, 31)
NEXT_DAY = date(2026, 2, 1)

Row = dict[str, Any]


def row(table: Table, **values: Any) -> dict[str, Any]:
    """Return a row of ``table``; unnamed columns are null."""
    unknown = set(values) - set(table.column_names)
    if unknown:
        raise KeyError(f"{table.name} has no columns {sorted(unknown)}")
    return {name: values.get(name) for name in table.column_names}


def instance(instance_id: str, *, cal_dt: date | None = DAY, **values: Any) -> dict[str, Any]:
    defaults: Row = {
        "instance_id": instance_id,
        "flow_id": 104452,
        "flow_name": "Daily KPI 日报 ✓",
        "freq": "0 30 1 * * ? *",
        "cycle": "D",
        "cycle_name": "day",
        "status": 1,
        "status_name": "SUCCESS",
        "is_terminal": True,
        "trigger_time": T0,
        "start_time": T0 + timedelta(seconds=2.5),
        "end_time": T0 + timedelta(minutes=3, microseconds=7),
        "duration_s": 177.500007,
        "is_virtual": False,
        "owner": "zoë",
        "alert_mode": 0,
        "cal_dt": cal_dt,
        "task_count": 2,
        "cron_interval_s": 86_400,
        "parameters_json": '[{"key": "bizdate", "value": "${yyyymmdd}"}]',
        "extracted_at": datetime(2026, 2, 1, 0, 0, tzinfo=UTC),
    }
    return row(INSTANCES, **(defaults | values))


def task(task_inst_id: str, instance_id: str, **values: Any) -> dict[str, Any]:
    defaults: Row = {
        "task_inst_id": task_inst_id,
        "instance_id": instance_id,
        "task_id": 7,
        "task_name": f"task {task_inst_id}",
        "node_id": f"n-{task_inst_id}",
        "status": "SUCCESS",
        "x": 120.5,
        "y": -3.25,
    }
    return row(TASKS, **(defaults | values))


def dependency(instance_id: str, node_id: str, **values: Any) -> dict[str, Any]:
    defaults: Row = {"instance_id": instance_id, "node_id": node_id, "flow_id": 9, "x": 1.0}
    return row(DEPENDENCIES, **(defaults | values))


def relation(instance_id: str, source: str, target: str) -> dict[str, Any]:
    return row(RELATIONS, instance_id=instance_id, from_node_id=source, to_node_id=target)


def parameter(instance_id: str, key: str, value: str | None, position: int) -> dict[str, Any]:
    return row(PARAMETERS, instance_id=instance_id, key=key, value=value, position=position)


def quarantined(instance_id: str, field: str, position: int) -> dict[str, Any]:
    return row(
        QUARANTINE,
        instance_id=instance_id,
        field=field,
        position=position,
        reason="not an edge",
        raw_json='{"odd": true}',
    )


def failure(instance_id: str, *, message: str = "timed out", attempts: int = 3) -> dict[str, Any]:
    return row(
        FAILURES,
        instance_id=instance_id,
        stage="fetch",
        error_class="TransientApiError",
        http_status=504,
        message=message,
        attempts=attempts,
        failed_at=T0,
    )


def make_frames(rows: Mapping[Table, Sequence[dict[str, Any]]]) -> FlowFrames:
    """Build frames from rows per table; tables not given are empty."""
    return FlowFrames(tables={t.name: rows_to_arrow(t, list(rows.get(t, ()))) for t in TABLES})


def graph(instance_id: str, task_ids: Iterable[str], **instance_values: Any) -> FlowFrames:
    """One instance with the given tasks, chained by relations, and one parameter."""
    ids = list(task_ids)
    return make_frames(
        {
            INSTANCES: [instance(instance_id, task_count=len(ids), **instance_values)],
            TASKS: [task(t, instance_id) for t in ids],
            RELATIONS: [
                relation(instance_id, f"n-{a}", f"n-{b}") for a, b in itertools.pairwise(ids)
            ],
            PARAMETERS: [parameter(instance_id, "bizdate", "20260131", 0)],
        }
    )


def sample_frames() -> FlowFrames:
    """Two instances that use every table, odd values included, and one failure."""
    return make_frames(
        {
            INSTANCES: [
                instance("inst-1"),
                instance(
                    "inst-2",
                    cal_dt=NEXT_DAY,
                    flow_id=2**62,
                    flow_name="quotes \" and ' commas, tabs\tand\nnewlines",
                    status=-1,
                    is_terminal=False,
                    trigger_time=datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
                    start_time=None,
                    end_time=None,
                    duration_s=-0.5,
                    owner="",
                    extra_json='{"néw": "値"}',
                ),
            ],
            TASKS: [
                task("t-1a", "inst-1"),
                task("t-1b", "inst-1", status=None, x=None, task_name="ünïcode 任务"),
                task("t-2a", "inst-2", task_id=None),
            ],
            DEPENDENCIES: [dependency("inst-1", "d-1", is_virtual=True, status="SUCCESS")],
            RELATIONS: [
                relation("inst-1", "n-t-1a", "n-t-1b"),
                relation("inst-2", "n-t-2a", "n-t-2a"),
            ],
            PARAMETERS: [
                parameter("inst-1", "bizdate", "20260131", 0),
                parameter("inst-1", "empty", "", 1),
                parameter("inst-1", "null", None, 2),
            ],
            QUARANTINE: [quarantined("inst-2", "graph.relations", 0)],
            FAILURES: [failure("inst-9")],
        }
    )


def by_key(table: Table, rows: Iterable[Row]) -> list[Row]:
    """Return ``rows`` sorted by ``table``'s primary key."""
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in table.primary_key))


def expected_rows(frames: FlowFrames, table: Table) -> list[Row]:
    """Return a table of ``frames`` as dicts sorted by primary key."""
    return by_key(table, frames.tables[table.name].to_pylist())


def frames_with_a_null_day() -> FlowFrames:
    """:func:`sample_frames` and an instance with no ``cal_dt``."""
    return FlowFrames.concat(
        [sample_frames(), make_frames({INSTANCES: [instance("no-day", cal_dt=None)]})]
    )


def assert_reads_back(back: FlowFrames, frames: FlowFrames) -> None:
    """Every table of ``back`` has the declared schema and the rows of ``frames``."""
    for t in TABLES:
        assert back.tables[t.name].schema == arrow_schema(t), t.name
        assert by_key(t, back.tables[t.name].to_pylist()) == expected_rows(frames, t), t.name
