"""The declared tables: names, columns, types, keys. The one source of truth.

DDL (``sql/``), Parquet schemas, SQLAlchemy tables and the README's column reference are
all derived from :data:`TABLES`. Column order here is the order of the tuples that
:mod:`extractor.tables._flattener` emits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

LogicalType = Literal["string", "int64", "float64", "bool", "timestamp", "date"]
"""Column types. ``timestamp`` is always UTC-aware, microsecond precision."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a declared table."""

    name: str
    type: LogicalType
    description: str
    source: str = ""
    nullable: bool = True


@dataclass(frozen=True, slots=True)
class Table:
    """One declared table with its natural primary key."""

    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


STATUS_NAMES: Mapping[int, str] = MappingProxyType(
    {
        -1: "FAIL",
        0: "INIT",
        1: "SUCCESS",
        2: "RUNNING",
        3: "SUSPEND",
        4: "INTERNAL_ERROR",
        5: "WAIT",
        6: "READY",
        7: "TIMEOUT",
        8: "CANCEL",
        9: "RERUN",
        10: "SKIP",
    }
)
"""Flow-instance status codes (List Flow Instances' FlowInstanceStatus table)."""

TERMINAL_STATUSES: frozenset[int] = frozenset({-1, 1, 4, 7, 8, 10})
"""Statuses that will not change again unless the instance is rerun."""

FAILED_TASK_STATUSES: frozenset[str] = frozenset({"FAIL", "FAILED", "INTERNAL_ERROR", "TIMEOUT"})
"""Task ``status`` strings counted in ``failed_task_count``."""

ALERT_MODE_NAMES: Mapping[int, str] = MappingProxyType(
    {0: "none", 1: "email", 2: "sms", 3: "email_and_sms"}
)

CYCLE_NAMES: Mapping[str, str] = MappingProxyType(
    {"M": "month", "W": "week", "D": "day", "H": "hour", "mi": "minute"}
)

_C = Column

INSTANCES = Table(
    name="flow_instances",
    description="One row per flow instance (one run of a flow).",
    primary_key=("instance_id",),
    indexes=(("flow_id", "trigger_time"), ("status",), ("cal_dt",)),
    columns=(
        _C("instance_id", "string", "Flow instance ID.", "instanceId", nullable=False),
        _C("flow_id", "int64", "Flow ID.", "flowId"),
        _C("flow_name", "string", "Flow name.", "flowName"),
        _C("freq", "string", "Schedule as written: a 7-field Quartz cron.", "freq"),
        _C("cycle", "string", "Schedule cycle code (M, W, D, H, mi).", "cycle"),
        _C("cycle_name", "string", "Cycle in words: month, week, day, hour, minute.", "cycle"),
        _C("do_as", "string", "Big-data account the flow runs as.", "doAs"),
        _C("status", "int64", "Instance status code.", "status"),
        _C("status_desc", "string", "Status as the API describes it.", "statusDesc"),
        _C("status_name", "string", "Status name from the documented status table.", "status"),
        _C("is_terminal", "bool", "True when the status will not change again.", "status"),
        _C("trigger_time", "timestamp", "Scheduled trigger time (UTC).", "triggerTime"),
        _C("start_time", "timestamp", "Start of the run (UTC).", "startTime"),
        _C("end_time", "timestamp", "End of the run (UTC); null while running.", "endTime"),
        _C("record_time", "timestamp", "The record's own timestamp (UTC).", "timestamp"),
        _C("duration_s", "float64", "end_time - start_time in seconds.", "endTime, startTime"),
        _C(
            "start_delay_s",
            "float64",
            "start_time - trigger_time in seconds.",
            "startTime, triggerTime",
        ),
        _C("is_virtual", "bool", "Whether this is a virtual flow instance.", "virtual"),
        _C("owner", "string", "User name of the instance's owner.", "owner"),
        _C("alert_mode", "int64", "Alert mode code (0-3).", "alertMode"),
        _C("alert_mode_name", "string", "none, email, sms or email_and_sms.", "alertMode"),
        _C("cal_dt", "date", "Business date.", "calDt"),
        _C("has_edit_pri", "bool", "Whether the caller may edit the flow.", "hasEditPri"),
        _C("has_read_pri", "bool", "Whether the caller may read the flow.", "hasReadPri"),
        _C(
            "is_cancelled",
            "bool",
            "Whether the run was cancelled; only List Flow Instances sends it.",
            "isCancelled",
        ),
        _C("creator", "string", "User name of the flow's creator.", "graph.creator"),
        _C("owners", "string", "Owners' user names, separated by ';'.", "graph.owners"),
        _C("alert_to", "string", "Alert recipients as configured.", "graph.alertTo"),
        _C("app_id", "string", "Application ID of the flow.", "graph.app_id"),
        _C(
            "graph_instance_id",
            "string",
            "The instance the graph describes; differs from instance_id when the API "
            "returns another instance's graph.",
            "graph.instId",
        ),
        _C("task_count", "int64", "Number of task instances in the graph.", "graph.tasks"),
        _C(
            "failed_task_count",
            "int64",
            "Task instances whose status is FAIL, FAILED, INTERNAL_ERROR or TIMEOUT.",
            "graph.tasks[].status",
        ),
        _C("cron_second", "string", "Quartz seconds field.", "freq"),
        _C("cron_minute", "string", "Quartz minutes field.", "freq"),
        _C("cron_hour", "string", "Quartz hours field.", "freq"),
        _C("cron_day_of_month", "string", "Quartz day-of-month field.", "freq"),
        _C("cron_month", "string", "Quartz month field.", "freq"),
        _C("cron_day_of_week", "string", "Quartz day-of-week field (1=SUN..7=SAT).", "freq"),
        _C("cron_year", "string", "Quartz year field (optional in Quartz).", "freq"),
        _C("cron_is_valid", "bool", "Whether freq is a valid Quartz cron.", "freq"),
        _C("cron_description", "string", "The schedule in plain English.", "freq"),
        _C(
            "cron_interval_s",
            "int64",
            "Seconds between fires when the schedule is regular, else null.",
            "freq",
        ),
        _C(
            "next_trigger_time",
            "timestamp",
            "First fire of freq strictly after trigger_time, in the server's zone (UTC).",
            "freq, triggerTime",
        ),
        _C(
            "parameters_json",
            "string",
            "The decoded parameters list, re-encoded as canonical JSON.",
            "parameters",
        ),
        _C(
            "extra_json",
            "string",
            "Fields this version does not know, as JSON; null when none.",
            "(unknown fields)",
        ),
        _C("extracted_at", "timestamp", "When the extractor fetched the record (UTC).", ""),
    ),
)

TASKS = Table(
    name="task_instances",
    description="One row per task instance in a flow instance's graph.",
    primary_key=("task_inst_id",),
    indexes=(("instance_id",), ("task_id",)),
    columns=(
        _C("task_inst_id", "string", "Task instance ID.", "graph.tasks[].taskInstId", False),
        _C("instance_id", "string", "Owning flow instance.", "instanceId", nullable=False),
        _C("task_id", "int64", "Task ID (int or numeric string in the API).", "taskId"),
        _C("task_name", "string", "Task name.", "graph.tasks[].taskName"),
        _C("node_id", "string", "Node ID in the flow's graph.", "graph.tasks[].nodeId"),
        _C("status", "string", "Task instance status.", "graph.tasks[].status"),
        _C("x", "float64", "Node x position on the canvas.", "graph.tasks[].x"),
        _C("y", "float64", "Node y position on the canvas.", "graph.tasks[].y"),
        _C("extra_json", "string", "Unknown fields as JSON; null when none.", "(unknown)"),
    ),
)

DEPENDENCIES = Table(
    name="flow_dependencies",
    description="Other flow instances a flow instance depends on (graph.flows).",
    primary_key=("instance_id", "node_id"),
    indexes=(("flow_inst_id",),),
    columns=(
        _C("instance_id", "string", "Owning flow instance.", "instanceId", nullable=False),
        _C("node_id", "string", "Node ID in the flow's graph.", "graph.flows[].nodeId", False),
        _C("flow_id", "int64", "ID of the flow depended on.", "graph.flows[].flowId"),
        _C("flow_name", "string", "Name of the flow depended on.", "graph.flows[].flowName"),
        _C("flow_inst_id", "string", "Instance depended on.", "graph.flows[].flowInstId"),
        _C("is_virtual", "bool", "Whether it is a virtual flow.", "graph.flows[].isVirtual"),
        _C("status", "string", "Status of the instance depended on.", "graph.flows[].status"),
        _C("x", "float64", "Node x position on the canvas.", "graph.flows[].x"),
        _C("y", "float64", "Node y position on the canvas.", "graph.flows[].y"),
        _C("extra_json", "string", "Unknown fields as JSON; null when none.", "(unknown)"),
    ),
)

RELATIONS = Table(
    name="task_relations",
    description="Edges between nodes of a flow instance's graph (graph.relations).",
    primary_key=("instance_id", "from_node_id", "to_node_id"),
    columns=(
        _C("instance_id", "string", "Owning flow instance.", "instanceId", nullable=False),
        _C("from_node_id", "string", "Upstream node ID.", "graph.relations[]", False),
        _C("to_node_id", "string", "Downstream node ID.", "graph.relations[]", False),
    ),
)

PARAMETERS = Table(
    name="flow_parameters",
    description="Scheduling parameters of a flow instance, one row per key.",
    primary_key=("instance_id", "key"),
    columns=(
        _C("instance_id", "string", "Owning flow instance.", "instanceId", nullable=False),
        _C("key", "string", "Parameter name.", "parameters[].key", nullable=False),
        _C(
            "value",
            "string",
            "Parameter value; non-string values as canonical JSON.",
            "parameters[].value",
        ),
        _C("position", "int64", "0-based position in the parameters list.", "parameters"),
    ),
)

QUARANTINE = Table(
    name="quarantined_values",
    description="Parts of an otherwise loaded instance that had no known shape, kept raw.",
    primary_key=("instance_id", "field", "position"),
    columns=(
        _C("instance_id", "string", "Owning flow instance.", "instanceId", nullable=False),
        _C("field", "string", "Where the value was, e.g. graph.relations.", "", nullable=False),
        _C("position", "int64", "0-based position within that field.", "", nullable=False),
        _C("reason", "string", "Why it was not flattened.", ""),
        _C("raw_json", "string", "The value as received, as JSON.", ""),
    ),
)

FAILURES = Table(
    name="failed_instances",
    description="IDs that could not be fetched or flattened, with the reason; retried "
    "by --retry-failed and removed once they load.",
    primary_key=("instance_id",),
    columns=(
        _C("instance_id", "string", "Flow instance ID.", "", nullable=False),
        _C("stage", "string", "fetch or flatten.", ""),
        _C("error_class", "string", "Exception class, e.g. NotFoundError.", ""),
        _C("http_status", "int64", "HTTP status of the last attempt, if any.", ""),
        _C("api_code", "int64", "Body code of the last attempt, if any.", ""),
        _C("message", "string", "What went wrong (never contains secrets).", ""),
        _C("attempts", "int64", "Attempts made.", ""),
        _C("failed_at", "timestamp", "When it last failed (UTC).", ""),
        _C("raw_json", "string", "The record as received, for flatten failures.", ""),
    ),
)

CHILD_TABLES: tuple[Table, ...] = (TASKS, DEPENDENCIES, RELATIONS, PARAMETERS, QUARANTINE)
"""Tables whose rows belong to one instance (they all carry ``instance_id``)."""

DATA_TABLES: tuple[Table, ...] = (INSTANCES, *CHILD_TABLES)
"""Tables whose rows are replaced together when an instance is re-loaded."""

TABLES: tuple[Table, ...] = (*DATA_TABLES, FAILURES)
"""Every table the extractor writes."""

TABLES_BY_NAME: Mapping[str, Table] = MappingProxyType({t.name: t for t in TABLES})


def markdown_reference(tables: tuple[Table, ...] = TABLES) -> str:
    """Render the column reference that the README carries (a test keeps them equal)."""
    out: list[str] = []
    for t in tables:
        out.append(f"### `{t.name}`\n")
        out.append(f"{t.description} Primary key: `{', '.join(t.primary_key)}`.\n")
        out.append("| column | type | null | meaning | API source |")
        out.append("|---|---|---|---|---|")
        for c in t.columns:
            null = "yes" if c.nullable else "no"
            source = f"`{c.source}`" if c.source else ""
            out.append(f"| `{c.name}` | {c.type} | {null} | {c.description} | {source} |")
        out.append("")
    return "\n".join(out)
