"""Split Get Flow Instance records into rows for each declared table.

Pure: no pandas, no I/O, no clock. :func:`flatten_instance` is the reference: it takes
one record at a time, puts every field through a coercion that accepts each shape seen
(see the README's "API quirks") and emits row tuples in :mod:`extractor.schema`'s column
order. A problem with the instance as a whole rejects it with a
:class:`~extractor.errors.RecordError`; a problem with one task, dependency, relation or
parameter quarantines that element with its raw value and keeps the rest.

:func:`flatten_records` flattens a batch several times faster: records of a known shape
take the fast path (:mod:`extractor._fastpath`, typed decoding straight into Arrow
columns), and every other record, including any the fast path finds wrong only once the
batch is parsed, takes the reference path. Both yield the same rows for a record, in
record order; :mod:`extractor.frames` merges them into typed tables.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

from extractor import _elements as elements
from extractor._coerce import (
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
from extractor._elements import edge_of
from extractor._fastpath import FastTables, flatten_fast
from extractor._wallclock import shift_for
from extractor.errors import RecordError
from extractor.schedule import parse_cron
from extractor.schema import (
    ALERT_MODE_NAMES,
    CYCLE_NAMES,
    DATA_TABLES,
    STATUS_NAMES,
    TERMINAL_STATUSES,
)

__all__ = [
    "Reject",
    "Row",
    "Rows",
    "canonical_json",
    "edge_of",
    "flatten_instance",
    "flatten_records",
    "unwrap",
]

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Reject:
    """A record that could not be flattened, with the reason and its place in the batch."""

    instance_id: str
    reason: str
    raw: Any
    position: int


@dataclass(slots=True)
class Rows:
    """Rows for each table, plus what could not be flattened.

    The lists hold the reference path's row tuples. After :func:`flatten_records`,
    ``fast`` holds the fast path's share as Arrow tables, and ``positions`` the record
    position of each row in the lists, so that the two can be merged in record order.
    """

    instances: list[Row] = field(default_factory=list)
    tasks: list[Row] = field(default_factory=list)
    dependencies: list[Row] = field(default_factory=list)
    relations: list[Row] = field(default_factory=list)
    parameters: list[Row] = field(default_factory=list)
    quarantine: list[Row] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    unknown_fields: Counter[str] = field(default_factory=Counter)
    fast: FastTables | None = None
    positions: dict[str, list[int]] = field(default_factory=dict)

    def row_lists(self) -> dict[str, list[Row]]:
        """The row-tuple lists by table name."""
        lists = (
            self.instances,
            self.tasks,
            self.dependencies,
            self.relations,
            self.parameters,
            self.quarantine,
        )
        return {t.name: rows for t, rows in zip(DATA_TABLES, lists, strict=True)}

    @property
    def instance_count(self) -> int:
        """Instances flattened, by either path."""
        fast = self.fast.tables.get(DATA_TABLES[0].name) if self.fast is not None else None
        return len(self.instances) + (fast.num_rows if fast is not None else 0)

    def add(self, part: Rows, position: int | None = None) -> None:
        """Append another instance's rows (from record ``position``, when merging)."""
        for name, rows in self.row_lists().items():
            added = part.row_lists()[name]
            rows.extend(added)
            if position is not None:
                self.positions.setdefault(name, []).extend([position] * len(added))
        self.unknown_fields.update(part.unknown_fields)


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
    fast: bool = True,
) -> Rows:
    """Flatten a batch; each bad record becomes a :class:`Reject` and the rest go on.

    Records may be Get Flow Instance ``data`` objects or whole envelopes.
    ``extracted_at`` and ``expected_ids`` (see :func:`flatten_instance`) may be given
    per record. ``fast=False`` sends every record the reference way; the tables are the
    same, only slower.

    >>> from datetime import UTC
    >>> rows = flatten_records([{"instanceId": "1-2"}, {"graph": "{"}], source_tz=UTC,
    ...                        extracted_at=datetime(2026, 1, 1, tzinfo=UTC))
    >>> rows.instance_count, [(r.instance_id, r.reason) for r in rows.rejects]
    (1, [('#record-1', 'missing instanceId')])
    """
    batch = records if isinstance(records, Sequence) else list(records)
    shift = shift_for(source_tz) if fast else None
    taken = flatten_fast(batch, shift=shift, extracted_at=extracted_at, expected_ids=expected_ids)
    rows = Rows(fast=taken)
    for position in taken.refused:
        raw = batch[position]
        try:
            part = flatten_instance(
                raw,
                source_tz=source_tz,
                extracted_at=(
                    extracted_at if isinstance(extracted_at, datetime) else extracted_at[position]
                ),
                expected_id=expected_ids[position] if expected_ids is not None else None,
            )
        except RecordError as exc:
            reject_id = exc.instance_id or _guess_id(raw, position)
            rows.rejects.append(Reject(reject_id, exc.message, raw, position))
        else:
            rows.add(part, position)
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
    """Split one Get Flow Instance record into rows for each table.

    Nothing is added to ``into`` unless the whole instance flattens.

    Raises:
        RecordError: the instance as a whole is unusable (no ID, undecodable graph,
            impossible timestamp, a value of the wrong type).

    >>> import json
    >>> from datetime import UTC
    >>> graph = {"tasks": [{"taskInstId": "104452-201907261239", "taskId": 104452}]}
    >>> raw = {"instanceId": "2438-201907261239", "graph": json.dumps(graph)}
    >>> rows = flatten_instance(raw, source_tz=UTC, extracted_at=datetime(2026, 1, 1, tzinfo=UTC))
    >>> [t[0] for t in rows.tasks]
    ['104452-201907261239']
    """
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
    try:
        part = _flatten(record, instance_id, source_tz, extracted_at)
    except (ValueError, TypeError, OverflowError) as exc:
        raise RecordError(str(exc), instance_id=instance_id) from exc
    if into is None:
        return part
    into.add(part)
    return into


def _flatten(
    record: Mapping[str, Any], instance_id: str, tz: tzinfo, extracted_at: datetime
) -> Rows:
    rows = Rows()
    extra: dict[str, Any] = {k: v for k, v in record.items() if k not in INSTANCE_KEYS}
    graph = decode_json(record.get("graph"), "graph", dict)
    if graph is None:
        graph = {}
        has_graph = False
    else:
        has_graph = True
        for k, v in graph.items():
            if k not in GRAPH_KEYS:
                extra[f"graph.{k}"] = v
    for k in extra:
        rows.unknown_fields[k] = 1

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
    record_time = to_utc(as_local_time(record.get("timestamp"), "timestamp"), tz)

    schedule = parse_cron(freq) if freq else None
    cron = schedule.fields if schedule is not None else None
    next_trigger = None
    if schedule is not None and schedule.is_valid and trigger_local is not None:
        # Quartz fires on the server's wall clock, so search in it.
        if trigger_local.tzinfo is not None:
            trigger_local = trigger_local.astimezone(tz).replace(tzinfo=None)
        next_trigger = to_utc(schedule.next_fire(trigger_local), tz)

    task_count: int | None = None
    failed = 0
    if has_graph:
        task_count, failed = elements.tasks(graph.get("tasks"), instance_id, rows)
        elements.dependencies(graph.get("flows"), instance_id, rows)
        elements.relations(graph.get("relations"), instance_id, rows)
    if params is not None:
        elements.parameters(params, instance_id, rows)

    rows.instances.append(
        (
            instance_id,
            as_int(_first(record, graph, "flowId", "id"), "flowId"),
            as_text(_first(record, graph, "flowName", "name")),
            freq,
            cycle,
            CYCLE_NAMES.get(cycle) if cycle is not None else None,
            as_text(_first(record, graph, "doAs", "doAs", "do_as")),
            status,
            as_text(record.get("statusDesc")),
            STATUS_NAMES.get(status) if status is not None else None,
            (status in TERMINAL_STATUSES) if status in STATUS_NAMES else None,
            trigger,
            start,
            end,
            record_time,
            (end - start).total_seconds() if end is not None and start is not None else None,
            (start - trigger).total_seconds() if start is not None and trigger else None,
            as_bool(record.get("virtual"), "virtual"),
            as_text(record.get("owner")),
            alert_mode,
            ALERT_MODE_NAMES.get(alert_mode) if alert_mode is not None else None,
            as_date(record.get("calDt"), "calDt"),
            as_bool(record.get("hasEditPri"), "hasEditPri"),
            as_bool(record.get("hasReadPri"), "hasReadPri"),
            as_bool(record.get("isCancelled"), "isCancelled"),
            as_text(graph.get("creator")),
            as_text(graph.get("owners")),
            as_text(graph.get("alertTo")),
            as_text(graph.get("app_id")),
            as_id(graph.get("instId")),
            task_count,
            failed if task_count is not None else None,
            cron.second if cron else None,
            cron.minute if cron else None,
            cron.hour if cron else None,
            cron.day_of_month if cron else None,
            cron.month if cron else None,
            cron.day_of_week if cron else None,
            cron.year if cron else None,
            schedule.is_valid if schedule is not None else None,
            schedule.description if schedule is not None else None,
            schedule.interval_s if schedule is not None else None,
            next_trigger,
            canonical_json(params) if params is not None else None,
            canonical_json(extra) if extra else None,
            extracted_at,
        )
    )
    return rows


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
