"""The reference flattening of a graph's elements: tasks, dependencies, relations and
parameters.

Each element goes through the coercions on its own. One that has no known shape is
quarantined (kept raw in ``quarantined_values`` with the reason) and the others are kept,
so that one odd task does not cost the whole instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from extractor._coerce import (
    EDGE_SPELLINGS,
    FLOW_KEYS,
    TASK_KEYS,
    as_bool,
    as_float,
    as_id,
    as_id_or_none,
    as_int,
    as_text,
    canonical_json,
)
from extractor.schema import FAILED_TASK_STATUSES

if TYPE_CHECKING:
    from extractor.flattener import Rows


def tasks(tasks: Any, instance_id: str, rows: Rows) -> tuple[int, int]:
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
            task_inst_id = as_id(task.get("taskInstId"))
            if task_inst_id is None:
                raise ValueError("task without taskInstId")
            if task_inst_id in seen:
                raise ValueError(f"duplicate taskInstId {task_inst_id}")
            task_status = as_text(task.get("status"))
            row = (
                task_inst_id,
                instance_id,
                as_int(_either(task, "taskId", "task_id"), "taskId"),
                as_text(_either(task, "taskName", "task_name")),
                as_id(task.get("nodeId")),
                task_status,
                as_float(task.get("x"), "x"),
                as_float(task.get("y"), "y"),
                _extra(task, TASK_KEYS, "graph.tasks[]", rows),
            )
        except (ValueError, TypeError) as exc:
            _quarantine(rows, instance_id, "graph.tasks", position, str(exc), task)
            continue
        seen.add(task_inst_id)
        rows.tasks.append(row)
        if task_status in FAILED_TASK_STATUSES:
            failed += 1
    return len(seen), failed


def _either(element: Mapping[str, Any], key: str, other: str) -> Any:
    """An element's field in one spelling, else the other."""
    value = element.get(key)
    return element.get(other) if value is None else value


def dependencies(flows: Any, instance_id: str, rows: Rows) -> None:
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
            node_id = as_id(flow.get("nodeId"))
            if node_id is None:
                raise ValueError("dependent flow without nodeId")
            if node_id in seen:
                raise ValueError(f"duplicate nodeId {node_id}")
            row = (
                instance_id,
                node_id,
                as_int(flow.get("flowId"), "flowId"),
                as_text(flow.get("flowName")),
                as_id(flow.get("flowInstId")),
                as_bool(flow.get("isVirtual"), "isVirtual"),
                as_text(flow.get("status")),
                as_float(flow.get("x"), "x"),
                as_float(flow.get("y"), "y"),
                _extra(flow, FLOW_KEYS, "graph.flows[]", rows),
            )
        except (ValueError, TypeError) as exc:
            _quarantine(rows, instance_id, "graph.flows", position, str(exc), flow)
            continue
        seen.add(node_id)
        rows.dependencies.append(row)


def relations(relations: Any, instance_id: str, rows: Rows) -> None:
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
        for a, b in EDGE_SPELLINGS:
            if a in relation and b in relation:
                pair = relation[a], relation[b]
                break
    elif isinstance(relation, list | tuple) and len(relation) == 2:
        pair = relation[0], relation[1]
    if pair is None:
        return None
    ends = as_id_or_none(pair[0]), as_id_or_none(pair[1])
    if ends[0] is None or ends[1] is None:
        return None
    return ends[0], ends[1]


def parameters(params: list[Any], instance_id: str, rows: Rows) -> None:
    seen: set[str] = set()
    for position, param in enumerate(params):
        key = as_id_or_none(param.get("key")) if isinstance(param, Mapping) else None
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
