"""Split Get Flow Instance records into rows for each declared table.

Pure: no pandas, no I/O, no clock. Each record goes through a coercion per field that
accepts every shape seen (see the README's "API quirks") and becomes rows named by
:mod:`extractor.tables._schema`'s columns; :mod:`extractor.tables._frames` types them into tables. A
problem with the instance as a whole rejects it with a
:class:`~extractor.errors.RecordError` (its partial rows are taken back); a problem with
one task, dependency, relation or parameter quarantines that element with its raw value
and keeps the rest.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from operator import itemgetter
from typing import Any

from extractor.errors import RecordError
from extractor.tables import _elements as elements
from extractor.tables._coerce import (
    GRAPH_KEYS,
    INSTANCE_KEYS,
    as_bool,
    as_date,
    as_id,
    as_int,
    as_local_time,
    as_text,
    canonical_json,
    decode_json,
    to_utc,
)
from extractor.tables._schedule import parse_cron
from extractor.tables._schema import (
    ALERT_MODE_NAMES,
    CYCLE_NAMES,
    DEPENDENCIES,
    INSTANCES,
    PARAMETERS,
    QUARANTINE,
    RELATIONS,
    STATUS_NAMES,
    TASKS,
    TERMINAL_STATUSES,
    Table,
)

__all__ = ["Columns", "Reject", "Row", "Rows", "flatten_instance", "flatten_records", "unwrap"]

_drain: Callable[[Iterable[Any]], None] = deque(maxlen=0).extend
"""Run an iterator for its effects, in C."""

Row = Mapping[str, Any]
"""One row of a declared table, keyed by its column names."""


class Columns:
    """One declared table's values, column by column, added a named row at a time.

    Kept by column rather than as a list of rows: a batch's rows are typed into Arrow a
    column at a time, and reading one key out of every row dict after the batch costs
    more than the whole flattening of a task.

    >>> from extractor.tables._schema import RELATIONS
    >>> columns = Columns(RELATIONS)
    >>> columns.add({"instance_id": "1-2", "from_node_id": "a", "to_node_id": "b"})
    >>> list(columns), len(columns)
    ([{'instance_id': '1-2', 'from_node_id': 'a', 'to_node_id': 'b'}], 1)
    """

    __slots__ = ("_get", "_lists", "table", "values")

    def __init__(self, table: Table) -> None:
        self.table = table
        self.values: dict[str, list[Any]] = {name: [] for name in table.column_names}
        self._lists = tuple(self.values.values())
        self._get = itemgetter(*table.column_names)

    def add(self, row: Row) -> None:
        """Append a row; it must name every column (a missing one is a bug: KeyError)."""
        _drain(map(list.append, self._lists, self._get(row)))

    def __len__(self) -> int:
        return len(self._lists[0])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The rows, as dicts (for tests and small batches; typing reads ``values``)."""
        names, columns = self.table.column_names, self.values.values()
        return (dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True))

    def _truncate(self, length: int) -> None:
        for values in self.values.values():
            del values[length:]


@dataclass(frozen=True, slots=True)
class Reject:
    """A record that could not be flattened, with the reason and its place in the batch."""

    instance_id: str
    reason: str
    raw: Any
    position: int


@dataclass(slots=True)
class Rows:
    """Rows for each table, plus what could not be flattened."""

    instances: Columns = field(default_factory=lambda: Columns(INSTANCES))
    tasks: Columns = field(default_factory=lambda: Columns(TASKS))
    dependencies: Columns = field(default_factory=lambda: Columns(DEPENDENCIES))
    relations: Columns = field(default_factory=lambda: Columns(RELATIONS))
    parameters: Columns = field(default_factory=lambda: Columns(PARAMETERS))
    quarantine: Columns = field(default_factory=lambda: Columns(QUARANTINE))
    rejects: list[Reject] = field(default_factory=list)
    unknown_fields: Counter[str] = field(default_factory=Counter)
    unknown_pending: list[str] = field(default_factory=list, repr=False)
    _tables: tuple[Columns, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._tables = (
            self.instances,
            self.tasks,
            self.dependencies,
            self.relations,
            self.parameters,
            self.quarantine,
        )

    def by_table(self) -> dict[str, Columns]:
        """Each table's columns by table name."""
        return {columns.table.name: columns for columns in self._tables}

    @property
    def instance_count(self) -> int:
        return len(self.instances)

    def _mark(self) -> tuple[int, ...]:
        return tuple(map(len, self._tables))

    def _take_back(self, mark: tuple[int, ...]) -> None:
        """Drop the rows added since ``mark``: the instance they came from is rejected."""
        for columns, length in zip(self._tables, mark, strict=True):
            columns._truncate(length)
        self.unknown_pending.clear()

    def _keep(self) -> None:
        # Counted once per instance, however many of its elements carry the field.
        self.unknown_fields.update(set(self.unknown_pending))
        self.unknown_pending.clear()


def unwrap(raw: Any) -> Mapping[str, Any] | None:
    """Return the FlowInstance object of an envelope, a list of one, or the object itself.

    ``None`` means the API answered "no such instance" (null or an empty list).

    >>> unwrap({"code": 0, "msg": "OK", "data": [{"instanceId": "1-2"}]})
    {'instanceId': '1-2'}
    >>> unwrap({"code": 0, "data": []}) is None
    True
    """
    if isinstance(raw, Mapping) and "data" in raw and "instanceId" not in raw:
        raw = raw["data"]
    if raw is None:
        return None
    if isinstance(raw, list):
        if not raw:
            return None
        if len(raw) > 1:
            raise RecordError(f"expected one flow instance, got a list of {len(raw)}")
        raw = raw[0]
    if not isinstance(raw, Mapping):
        raise RecordError(f"expected a JSON object, got {type(raw).__name__}")
    return raw


def flatten_records(
    records: Iterable[Any],
    *,
    source_tz: tzinfo,
    extracted_at: datetime | Sequence[datetime],
    expected_ids: Sequence[str | None] | None = None,
) -> Rows:
    """Flatten a batch; each bad record becomes a :class:`Reject` and the rest go on.

    Records may be Get or List Flow Instances ``data`` objects or whole envelopes.
    ``extracted_at`` and ``expected_ids`` (see :func:`flatten_instance`) may be given
    per record.

    >>> from datetime import UTC
    >>> rows = flatten_records([{"instanceId": "1-2"}, {"graph": "{"}], source_tz=UTC,
    ...                        extracted_at=datetime(2026, 1, 1, tzinfo=UTC))
    >>> rows.instance_count, [(r.instance_id, r.reason) for r in rows.rejects]
    (1, [('#record-1', 'missing instanceId')])
    """
    rows = Rows()
    for position, raw in enumerate(records):
        try:
            flatten_instance(
                raw,
                source_tz=source_tz,
                extracted_at=(
                    extracted_at if isinstance(extracted_at, datetime) else extracted_at[position]
                ),
                expected_id=expected_ids[position] if expected_ids is not None else None,
                into=rows,
            )
        except RecordError as exc:
            reject_id = exc.instance_id or _guess_id(raw, position)
            rows.rejects.append(Reject(reject_id, exc.message, raw, position))
    return rows


def _guess_id(raw: Any, position: int) -> str:
    try:
        record = unwrap(raw)
    except RecordError:
        record = None
    if record is not None and isinstance(record.get("instanceId"), str | int):
        return str(record["instanceId"])
    return f"#record-{position}"


def flatten_instance(
    raw: Any,
    *,
    source_tz: tzinfo,
    extracted_at: datetime,
    expected_id: str | None = None,
    into: Rows | None = None,
) -> Rows:
    """Split one Get or List Flow Instances record into rows for each table.

    The rows are added to ``into`` (a new :class:`Rows` by default), and only if the
    whole instance flattens.

    Raises:
        RecordError: the instance as a whole is unusable (no ID, undecodable graph,
            impossible timestamp, a value of the wrong type).

    >>> import json
    >>> from datetime import UTC
    >>> graph = {"tasks": [{"taskInstId": "104452-201907261239", "taskId": 104452}]}
    >>> raw = {"instanceId": "2438-201907261239", "graph": json.dumps(graph)}
    >>> rows = flatten_instance(raw, source_tz=UTC, extracted_at=datetime(2026, 1, 1, tzinfo=UTC))
    >>> [t["task_inst_id"] for t in rows.tasks]
    ['104452-201907261239']
    """
    rows = Rows() if into is None else into
    record = unwrap(raw)
    if record is None:
        raise RecordError("the API returned no instance", instance_id=expected_id)
    try:
        instance_id = as_id(record.get("instanceId"))
    except TypeError as exc:  # a list or an object where the ID should be
        raise RecordError(f"instanceId: {exc}", instance_id=expected_id) from exc
    if instance_id is None:
        raise RecordError("missing instanceId", instance_id=expected_id)
    if expected_id is not None and instance_id != expected_id:
        raise RecordError(
            f"asked for {expected_id} but the API answered with {instance_id}",
            instance_id=expected_id,
        )
    mark = rows._mark()
    try:
        _flatten(record, instance_id, source_tz, extracted_at, rows)
    except (ValueError, TypeError, OverflowError) as exc:
        rows._take_back(mark)
        raise RecordError(str(exc), instance_id=instance_id) from exc
    rows._keep()
    return rows


def _flatten(
    record: Mapping[str, Any], instance_id: str, tz: tzinfo, extracted_at: datetime, rows: Rows
) -> None:
    extra: dict[str, Any] = {k: v for k, v in record.items() if k not in INSTANCE_KEYS}
    graph = decode_json(record.get("graph"), "graph", dict)
    has_graph = graph is not None
    if graph is None:
        graph = {}
    elif not graph.keys() <= GRAPH_KEYS:
        extra.update((f"graph.{k}", v) for k, v in graph.items() if k not in GRAPH_KEYS)
    rows.unknown_pending.extend(extra)

    params_raw = record["parameters"] if "parameters" in record else graph.get("parameters")
    params = decode_json(params_raw, "parameters", list)
    freq = as_text(_first(record, graph, "freq", "freq"))
    cycle = as_text(_first(record, graph, "cycle", "cycle"))
    status = as_int(record.get("status"), "status")
    alert_mode = as_int(_first(record, graph, "alertMode", "alertMode"), "alertMode")

    trigger_local = as_local_time(record.get("triggerTime"), "triggerTime")
    trigger = to_utc(trigger_local, tz)
    start = to_utc(as_local_time(record.get("startTime"), "startTime"), tz)
    end = to_utc(as_local_time(record.get("endTime"), "endTime"), tz)

    schedule = parse_cron(freq) if freq else None
    cron = schedule.fields if schedule is not None else None
    next_trigger = None
    if schedule is not None and schedule.is_valid and trigger_local is not None:
        # Quartz fires on the server's wall clock, so search in it.
        if trigger_local.tzinfo is not None:
            trigger_local = trigger_local.astimezone(tz).replace(tzinfo=None)
        next_trigger = to_utc(schedule.next_fire(trigger_local), tz)

    task_count: int | None = None
    failed = None
    if has_graph:
        task_count, failed = elements.tasks(graph.get("tasks"), instance_id, rows)
        elements.dependencies(graph.get("flows"), instance_id, rows)
        elements.relations(graph.get("relations"), instance_id, rows)
    if params is not None:
        elements.parameters(params, instance_id, rows)

    rows.instances.add(
        {
            "instance_id": instance_id,
            "flow_id": as_int(_first(record, graph, "flowId", "id"), "flowId"),
            "flow_name": as_text(_first(record, graph, "flowName", "name")),
            "freq": freq,
            "cycle": cycle,
            "cycle_name": CYCLE_NAMES.get(cycle) if cycle is not None else None,
            "do_as": as_text(_first(record, graph, "doAs", "doAs", "do_as")),
            "status": status,
            "status_desc": as_text(record.get("statusDesc")),
            "status_name": STATUS_NAMES.get(status) if status is not None else None,
            "is_terminal": (status in TERMINAL_STATUSES) if status in STATUS_NAMES else None,
            "trigger_time": trigger,
            "start_time": start,
            "end_time": end,
            "record_time": to_utc(as_local_time(record.get("timestamp"), "timestamp"), tz),
            "duration_s": (end - start).total_seconds() if end and start else None,
            "start_delay_s": (start - trigger).total_seconds() if start and trigger else None,
            "is_virtual": as_bool(record.get("virtual"), "virtual"),
            "owner": as_text(record.get("owner")),
            "alert_mode": alert_mode,
            "alert_mode_name": ALERT_MODE_NAMES.get(alert_mode) if alert_mode is not None else None,
            "cal_dt": as_date(record.get("calDt"), "calDt"),
            "has_edit_pri": as_bool(record.get("hasEditPri"), "hasEditPri"),
            "has_read_pri": as_bool(record.get("hasReadPri"), "hasReadPri"),
            "is_cancelled": as_bool(record.get("isCancelled"), "isCancelled"),
            "creator": as_text(graph.get("creator")),
            "owners": as_text(graph.get("owners")),
            "alert_to": as_text(graph.get("alertTo")),
            "app_id": as_text(graph.get("app_id")),
            "graph_instance_id": as_id(graph.get("instId")),
            "task_count": task_count,
            "failed_task_count": failed,
            "cron_second": cron.second if cron else None,
            "cron_minute": cron.minute if cron else None,
            "cron_hour": cron.hour if cron else None,
            "cron_day_of_month": cron.day_of_month if cron else None,
            "cron_month": cron.month if cron else None,
            "cron_day_of_week": cron.day_of_week if cron else None,
            "cron_year": cron.year if cron else None,
            "cron_is_valid": schedule.is_valid if schedule is not None else None,
            "cron_description": schedule.description if schedule is not None else None,
            "cron_interval_s": schedule.interval_s if schedule is not None else None,
            "next_trigger_time": next_trigger,
            "parameters_json": canonical_json(params) if params is not None else None,
            "extra_json": canonical_json(extra) if extra else None,
            "extracted_at": extracted_at,
        }
    )


def _first(record: Mapping[str, Any], graph: Mapping[str, Any], key: str, *graph_keys: str) -> Any:
    """Return the instance's field, falling back to the graph's spelling when absent."""
    value = record.get(key)
    if value is not None:
        return value
    for g in graph_keys:
        value = graph.get(g)
        if value is not None:
            return value
    return None
