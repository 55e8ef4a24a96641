"""The elements of a graph: tasks, dependencies, relations and parameters, as rows.

Each element goes through the coercions on its own. One that has no known shape is
quarantined (kept raw in ``quarantined_values`` with the reason) and the others are kept,
so that one odd task does not cost the whole instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from extractor.tables._coerce import (
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
from extractor.tables._schema import FAILED_TASK_STATUSES

if TYPE_CHECKING:
    from extractor.tables._flattener import Rows


def tasks(tasks: Any, instance_id: str, rows: Rows) -> tuple[int, int]:
    """Add a row per task; return how many tasks there are and how many failed."""
    if tasks is None:
        return 0, 0
    if not isinstance(tasks, list):
        raise TypeError(f"graph.tasks must be a list, got {type(tasks).__name__}")
    seen: set[str] = set()
    failed = 0
    for position, task in enumerate(tasks):
        try:
            task_inst_id = _element_id(task, "task", "taskInstId", seen)
            status = as_text(task.get("status"))
            task_id = task.get("taskId")
            name = task.get("taskName")
            row = {
                "task_inst_id": task_inst_id,
                "instance_id": instance_id,
                "task_id": as_int(task.get("task_id") if task_id is None else task_id, "taskId"),
                "task_name": as_text(task.get("task_name") if name is None else name),
                "node_id": as_id(task.get("nodeId")),
                "status": status,
                "x": as_float(task.get("x"), "x"),
                "y": as_float(task.get("y"), "y"),
                "extra_json": None if task.keys() <= TASK_KEYS else _extra(task, TASK_KEYS, rows),
            }
        except (ValueError, TypeError) as exc:
            _quarantine(rows, instance_id, "graph.tasks", position, str(exc), task)
            continue
        seen.add(task_inst_id)
        rows.tasks.add(row)
        if status in FAILED_TASK_STATUSES:
            failed += 1
    return len(seen), failed


def dependencies(flows: Any, instance_id: str, rows: Rows) -> None:
    """Add a row per flow instance this one depends on."""
    if flows is None:
        return
    if isinstance(flows, Mapping):  # documented as JSONObject, shown as a list
        flows = [flows]
    if not isinstance(flows, list):
        raise TypeError(f"graph.flows must be a list, got {type(flows).__name__}")
    seen: set[str] = set()
    for position, flow in enumerate(flows):
        try:
            node_id = _element_id(flow, "flow", "nodeId", seen, missing="dependent flow")
            row = {
                "instance_id": instance_id,
                "node_id": node_id,
                "flow_id": as_int(flow.get("flowId"), "flowId"),
                "flow_name": as_text(flow.get("flowName")),
                "flow_inst_id": as_id(flow.get("flowInstId")),
                "is_virtual": as_bool(flow.get("isVirtual"), "isVirtual"),
                "status": as_text(flow.get("status")),
                "x": as_float(flow.get("x"), "x"),
                "y": as_float(flow.get("y"), "y"),
                "extra_json": _extra(flow, FLOW_KEYS, rows),
            }
        except (ValueError, TypeError) as exc:
            _quarantine(rows, instance_id, "graph.flows", position, str(exc), flow)
            continue
        seen.add(node_id)
        rows.dependencies.add(row)


def _element_id(element: Any, noun: str, key: str, seen: set[str], *, missing: str = "") -> str:
    """Return the ID of a task or flow; raise for one that is no object, lacks it or repeats it."""
    if not isinstance(element, (dict, Mapping)):
        raise TypeError(f"a {noun} must be an object, got {type(element).__name__}")
    element_id = as_id(element.get(key))
    if element_id is None:
        raise ValueError(f"{missing or noun} without {key}")
    if element_id in seen:
        raise ValueError(f"duplicate {key} {element_id}")
    return element_id


def relations(relations: Any, instance_id: str, rows: Rows) -> None:
    """Add a row per task-to-task edge; the same edge twice is one fact."""
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
        elif edge not in seen:
            seen.add(edge)
            rows.relations.add(
                {"instance_id": instance_id, "from_node_id": edge[0], "to_node_id": edge[1]}
            )


def edge_of(relation: Any) -> tuple[str, str] | None:
    """Return ``(from_node_id, to_node_id)`` for the relation spellings known, else None.

    >>> edge_of({"source": "t_1", "target": "t_2"})
    ('t_1', 't_2')
    >>> edge_of(["t_1", "t_2"])
    ('t_1', 't_2')
    >>> edge_of({"a": 1}) is None
    True
    """
    if type(relation) is dict:  # the spelling seen most, checked first: one per task
        source, target = relation.get("source"), relation.get("target")
        if type(source) is str and type(target) is str and source and target:
            return source, target
    pair: tuple[Any, Any] | None = None
    if isinstance(relation, (dict, Mapping)):
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
    """Add a row per parameter, its value as text (JSON for anything but text)."""
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
        rows.parameters.add(
            {"instance_id": instance_id, "key": key, "value": text, "position": position}
        )


def _quarantine(
    rows: Rows, instance_id: str, where: str, position: int, reason: str, raw: Any
) -> None:
    rows.quarantine.add(
        {
            "instance_id": instance_id,
            "field": where,
            "position": position,
            "reason": reason,
            "raw_json": canonical_json(raw),
        }
    )


_WHERE = {TASK_KEYS: "graph.tasks[]", FLOW_KEYS: "graph.flows[]"}


def _extra(element: Mapping[str, Any], known: frozenset[str], rows: Rows) -> str | None:
    """The fields of an element that are not ``known``, as JSON; noted as unknown."""
    if element.keys() <= known:
        return None
    extra = {k: v for k, v in element.items() if k not in known}
    rows.unknown_pending.extend(f"{_WHERE[known]}.{k}" for k in extra)
    return canonical_json(extra)
