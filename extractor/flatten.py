"""Split Get Flow Instance records into row tuples for each declared table.

Pure: no pandas, no I/O, no clock. Rows are tuples in :mod:`extractor.schema`'s column
order, which :mod:`extractor.frames` turns into typed Arrow columns.

The API's documented types and real values disagree (see the README's "API quirks"), so
every field goes through a coercion that accepts each shape seen and raises
:class:`~extractor.errors.RecordError` on anything else. A problem with the instance as a
whole rejects that instance; a problem with one task, dependency, relation or parameter
quarantines that element with its raw value and keeps the rest.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any

import orjson

from extractor.errors import RecordError
from extractor.schedule import parse_cron
from extractor.schema import (
    ALERT_MODE_NAMES,
    CYCLE_NAMES,
    FAILED_TASK_STATUSES,
    STATUS_NAMES,
    TERMINAL_STATUSES,
)

Row = tuple[Any, ...]

_INSTANCE_KEYS = frozenset(
    {
        "instanceId",
        "flowId",
        "flowName",
        "freq",
        "cycle",
        "parameters",
        "doAs",
        "graph",
        "status",
        "statusDesc",
        "triggerTime",
        "startTime",
        "endTime",
        "timestamp",
        "virtual",
        "owner",
        "alertMode",
        "calDt",
        "hasEditPri",
        "hasReadPri",
    }
)
_GRAPH_KEYS = frozenset(
    {
        "creator",
        "freq",
        "alertMode",
        "owners",
        "cycle",
        "do_as",
        "doAs",
        "flows",
        "alertTo",
        "name",
        "instId",
        "id",
        "relations",
        "parameters",
        "app_id",
        "tasks",
    }
)
_TASK_KEYS = frozenset({"taskName", "taskInstId", "x", "y", "taskId", "nodeId", "status"})
_FLOW_KEYS = frozenset(
    {"flowId", "flowName", "nodeId", "isVirtual", "x", "y", "flowInstId", "status"}
)
# No public example shows a non-empty relation; these are the spellings graph editors use.
_EDGE_SPELLINGS = (
    ("source", "target"),
    ("from", "to"),
    ("preNodeId", "nodeId"),
    ("fromNodeId", "toNodeId"),
    ("sourceNodeId", "targetNodeId"),
)
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


@dataclass(frozen=True, slots=True)
class Reject:
    """A record that could not be flattened, with the reason."""

    instance_id: str
    reason: str
    raw: Any


@dataclass(slots=True)
class Rows:
    """Row tuples for each table, plus what could not be flattened."""

    instances: list[Row] = field(default_factory=list)
    tasks: list[Row] = field(default_factory=list)
    dependencies: list[Row] = field(default_factory=list)
    relations: list[Row] = field(default_factory=list)
    parameters: list[Row] = field(default_factory=list)
    quarantine: list[Row] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    unknown_fields: Counter[str] = field(default_factory=Counter)


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


def flatten_records(records: Iterable[Any], *, source_tz: tzinfo, extracted_at: datetime) -> Rows:
    """Flatten many records; each bad one becomes a :class:`Reject` and the rest go on.

    Records may be Get Flow Instance ``data`` objects or whole envelopes.
    """
    rows = Rows()
    for position, raw in enumerate(records):
        try:
            flatten_instance(raw, source_tz=source_tz, extracted_at=extracted_at, into=rows)
        except RecordError as exc:
            rows.rejects.append(
                Reject(exc.instance_id or _guess_id(raw, position), exc.message, raw)
            )
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
    >>> graph = {"tasks": [{"taskInstId": "104452-201907261239", "taskId": 104452}]}
    >>> raw = {"instanceId": "2438-201907261239", "graph": json.dumps(graph)}
    >>> rows = flatten_instance(raw, source_tz=UTC, extracted_at=datetime(2026, 1, 1, tzinfo=UTC))
    >>> [t[0] for t in rows.tasks]
    ['104452-201907261239']
    """
    record = unwrap(raw)
    if record is None:
        raise RecordError("the API returned no instance", instance_id=expected_id)
    instance_id = _id(record.get("instanceId"))
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
    into.instances.extend(part.instances)
    into.tasks.extend(part.tasks)
    into.dependencies.extend(part.dependencies)
    into.relations.extend(part.relations)
    into.parameters.extend(part.parameters)
    into.quarantine.extend(part.quarantine)
    into.unknown_fields.update(part.unknown_fields)
    return into


def _flatten(
    record: Mapping[str, Any], instance_id: str, tz: tzinfo, extracted_at: datetime
) -> Rows:
    rows = Rows()
    extra: dict[str, Any] = {k: v for k, v in record.items() if k not in _INSTANCE_KEYS}
    graph = _decode(record.get("graph"), "graph", dict)
    if graph is None:
        graph = {}
        has_graph = False
    else:
        has_graph = True
        for k, v in graph.items():
            if k not in _GRAPH_KEYS:
                extra[f"graph.{k}"] = v
    for k in extra:
        rows.unknown_fields[k] = 1

    params_raw = record["parameters"] if "parameters" in record else graph.get("parameters")
    params = _decode(params_raw, "parameters", list)
    freq = _text(_first(record, graph, "freq", "freq"))
    cycle = _text(_first(record, graph, "cycle", "cycle"))
    status = _int(record.get("status"), "status")
    alert_mode = _int(_first(record, graph, "alertMode", "alertMode"), "alertMode")

    trigger_local = _local_time(record.get("triggerTime"), "triggerTime")
    trigger = _to_utc(trigger_local, tz)
    start = _to_utc(_local_time(record.get("startTime"), "startTime"), tz)
    end = _to_utc(_local_time(record.get("endTime"), "endTime"), tz)
    record_time = _to_utc(_local_time(record.get("timestamp"), "timestamp"), tz)

    schedule = parse_cron(freq) if freq else None
    cron = schedule.fields if schedule is not None else None
    next_trigger = None
    if schedule is not None and schedule.is_valid and trigger_local is not None:
        # Quartz fires on the server's wall clock, so search in it.
        if trigger_local.tzinfo is not None:
            trigger_local = trigger_local.astimezone(tz).replace(tzinfo=None)
        next_trigger = _to_utc(schedule.next_fire(trigger_local), tz)

    task_count: int | None = None
    failed = 0
    if has_graph:
        task_count, failed = _tasks(graph.get("tasks"), instance_id, rows)
        _dependencies(graph.get("flows"), instance_id, rows)
        _relations(graph.get("relations"), instance_id, rows)
    if params is not None:
        _parameters(params, instance_id, rows)

    rows.instances.append(
        (
            instance_id,
            _int(_first(record, graph, "flowId", "id"), "flowId"),
            _text(_first(record, graph, "flowName", "name")),
            freq,
            cycle,
            CYCLE_NAMES.get(cycle) if cycle is not None else None,
            _text(_first(record, graph, "doAs", "doAs", "do_as")),
            status,
            _text(record.get("statusDesc")),
            STATUS_NAMES.get(status) if status is not None else None,
            (status in TERMINAL_STATUSES) if status in STATUS_NAMES else None,
            trigger,
            start,
            end,
            record_time,
            (end - start).total_seconds() if end is not None and start is not None else None,
            (start - trigger).total_seconds() if start is not None and trigger else None,
            _bool(record.get("virtual"), "virtual"),
            _text(record.get("owner")),
            alert_mode,
            ALERT_MODE_NAMES.get(alert_mode) if alert_mode is not None else None,
            _date(record.get("calDt"), "calDt"),
            _bool(record.get("hasEditPri"), "hasEditPri"),
            _bool(record.get("hasReadPri"), "hasReadPri"),
            _text(graph.get("creator")),
            _text(graph.get("owners")),
            _text(graph.get("alertTo")),
            _text(graph.get("app_id")),
            _id(graph.get("instId")),
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


def _tasks(tasks: Any, instance_id: str, rows: Rows) -> tuple[int, int]:
    if tasks is None:
        return 0, 0
    if not isinstance(tasks, list):
        raise TypeError(f"graph.tasks must be a list, got {type(tasks).__name__}")
    seen: set[str] = set()
    failed = 0
    for position, task in enumerate(tasks):
        try:
            if not isinstance(task, Mapping):
                raise TypeError(f"a task must be an object, got {type(task).__name__}")
            task_inst_id = _id(task.get("taskInstId"))
            if task_inst_id is None:
                raise ValueError("task without taskInstId")
            if task_inst_id in seen:
                raise ValueError(f"duplicate taskInstId {task_inst_id}")
            task_status = _text(task.get("status"))
            row = (
                task_inst_id,
                instance_id,
                _int(task.get("taskId"), "taskId"),
                _text(task.get("taskName")),
                _id(task.get("nodeId")),
                task_status,
                _float(task.get("x"), "x"),
                _float(task.get("y"), "y"),
                _extra(task, _TASK_KEYS, "graph.tasks[]", rows),
            )
        except (ValueError, TypeError) as exc:
            _quarantine(rows, instance_id, "graph.tasks", position, str(exc), task)
            continue
        seen.add(task_inst_id)
        rows.tasks.append(row)
        if task_status in FAILED_TASK_STATUSES:
            failed += 1
    return len(seen), failed


def _dependencies(flows: Any, instance_id: str, rows: Rows) -> None:
    if flows is None:
        return
    if isinstance(flows, Mapping):  # documented as JSONObject, shown as a list
        flows = [flows]
    if not isinstance(flows, list):
        raise TypeError(f"graph.flows must be a list, got {type(flows).__name__}")
    seen: set[str] = set()
    for position, flow in enumerate(flows):
        try:
            if not isinstance(flow, Mapping):
                raise TypeError(f"a flow must be an object, got {type(flow).__name__}")
            node_id = _id(flow.get("nodeId"))
            if node_id is None:
                raise ValueError("dependent flow without nodeId")
            if node_id in seen:
                raise ValueError(f"duplicate nodeId {node_id}")
            row = (
                instance_id,
                node_id,
                _int(flow.get("flowId"), "flowId"),
                _text(flow.get("flowName")),
                _id(flow.get("flowInstId")),
                _bool(flow.get("isVirtual"), "isVirtual"),
                _text(flow.get("status")),
                _float(flow.get("x"), "x"),
                _float(flow.get("y"), "y"),
                _extra(flow, _FLOW_KEYS, "graph.flows[]", rows),
            )
        except (ValueError, TypeError) as exc:
            _quarantine(rows, instance_id, "graph.flows", position, str(exc), flow)
            continue
        seen.add(node_id)
        rows.dependencies.append(row)


def _relations(relations: Any, instance_id: str, rows: Rows) -> None:
    if relations is None:
        return
    if not isinstance(relations, list):
        raise TypeError(f"graph.relations must be a list, got {type(relations).__name__}")
    seen: set[tuple[str, str]] = set()
    for position, relation in enumerate(relations):
        edge = edge_of(relation)
        if edge is None:
            _quarantine(
                rows, instance_id, "graph.relations", position, "unknown relation shape", relation
            )
        elif edge not in seen:  # the same edge twice is one fact
            seen.add(edge)
            rows.relations.append((instance_id, *edge))


def edge_of(relation: Any) -> tuple[str, str] | None:
    """Return ``(from_node_id, to_node_id)`` for the relation spellings known, else None.

    >>> edge_of({"source": "t_1", "target": "t_2"})
    ('t_1', 't_2')
    >>> edge_of(["t_1", "t_2"])
    ('t_1', 't_2')
    >>> edge_of({"a": 1}) is None
    True
    """
    pair: tuple[Any, Any] | None = None
    if isinstance(relation, Mapping):
        for a, b in _EDGE_SPELLINGS:
            if a in relation and b in relation:
                pair = relation[a], relation[b]
                break
    elif isinstance(relation, list | tuple) and len(relation) == 2:
        pair = relation[0], relation[1]
    if pair is None:
        return None
    ends = _id_or_none(pair[0]), _id_or_none(pair[1])
    if ends[0] is None or ends[1] is None:
        return None
    return ends[0], ends[1]


def _parameters(params: list[Any], instance_id: str, rows: Rows) -> None:
    seen: set[str] = set()
    for position, param in enumerate(params):
        key = _id_or_none(param.get("key")) if isinstance(param, Mapping) else None
        if key is None or key in seen:
            reason = "duplicate key" if key is not None else "parameter without key"
            _quarantine(rows, instance_id, "parameters", position, reason, param)
            continue
        seen.add(key)
        assert isinstance(param, Mapping)
        value = param.get("value")
        text = value if isinstance(value, str) or value is None else canonical_json(value)
        rows.parameters.append((instance_id, key, text, position))


def _quarantine(
    rows: Rows, instance_id: str, where: str, position: int, reason: str, raw: Any
) -> None:
    rows.quarantine.append((instance_id, where, position, reason, canonical_json(raw)))


def _extra(obj: Mapping[str, Any], known: frozenset[str], where: str, rows: Rows) -> str | None:
    if obj.keys() <= known:
        return None
    extra = {k: v for k, v in obj.items() if k not in known}
    for k in extra:
        rows.unknown_fields[f"{where}.{k}"] = 1
    return canonical_json(extra)


def canonical_json(value: Any) -> str:
    """Encode JSON canonically: sorted keys, no spaces, UTF-8 text kept as is.

    >>> canonical_json({"b": 1, "a": "风机"})
    '{"a":"风机","b":1}'
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # e.g. integers beyond 64 bits, which the stdlib encodes exactly
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _decode(value: Any, name: str, kind: type) -> Any:
    """Decode a JSON-in-JSON field; accept the already-decoded form too."""
    if value is None or value == "":
        return None
    if isinstance(value, str | bytes):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"{name} is not valid JSON: {exc}") from exc
    if kind is dict and isinstance(value, list) and len(value) == 1:
        value = value[0]  # graph is documented as List<JSONObject>
    if value is None:
        return None
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be a JSON {kind.__name__}, got {type(value).__name__}")
    return value


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


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    raise TypeError(f"expected text, got {type(value).__name__}")


def _id(value: Any) -> str | None:
    """IDs arrive as strings or integers; store them as strings."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected an ID, got {type(value).__name__} {value!r}")


def _id_or_none(value: Any) -> str | None:
    try:
        return _id(value)
    except TypeError:
        return None


def _int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{name} must be an integer, got {value!r}")


def _float(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f"{name} must be a number, got {value!r}")


def _bool(value: Any, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    raise ValueError(f"{name} must be a boolean, got {value!r}")


def _local_time(value: Any, name: str) -> datetime | None:
    """Parse a server timestamp: naive ``YYYY-MM-DD HH:MM:SS[.f]``, ISO with offset, or
    epoch milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{name} is not a valid timestamp: {value!r}") from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"{name} is out of range: {value!r}") from None
    raise TypeError(f"{name} must be a timestamp string, got {type(value).__name__}")


def _to_utc(local: datetime | None, tz: tzinfo) -> datetime | None:
    if local is None:
        return None
    if local.tzinfo is None:
        local = local.replace(tzinfo=tz)
    return local.astimezone(UTC)


def _date(value: Any, name: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise ValueError(f"{name} is not a valid date: {value!r}") from None
    raise TypeError(f"{name} must be a date string, got {type(value).__name__}")
