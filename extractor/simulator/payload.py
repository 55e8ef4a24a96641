"""Build the Get Flow Instance ``data`` object, with the documented inconsistencies.

Field order and spellings follow the official doc page's examples: ``graph`` and
``parameters`` as JSON strings inside the JSON, ``flowId`` a string in ``graph.flows``,
``do_as`` or ``doAs``, ``alertTo``/``app_id`` only sometimes. Fields whose value is not
known yet (``startTime`` before the start, ``endTime`` while running) are left out
rather than sent as null, as fastjson-based Java services do.

List Flow Instances carries the same records in its own spelling (``listed=True``), as
its return sample shows: graph tasks with ``task_name``/``task_id`` and no ``status``,
``do_as`` in the graph, no ``alertTo``/``app_id``, an extra top-level ``isCancelled``,
and no ``alertMode``/``calDt``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson

from extractor.simulator.flows import FlowSpec
from extractor.simulator.lifecycle import Observation, Plan, task_statuses
from extractor.tables._schema import STATUS_NAMES

CANCEL = 8


Upstream = tuple[FlowSpec, str, str]
"""An instance of another flow that this instance waited for: the flow, the instance's
ID and its status name."""


def instance_id_of(flow_id: int, trigger: datetime) -> str:
    """Return the instance ID of ``flow_id``'s fire at ``trigger``.

    >>> instance_id_of(2809, datetime(2019, 8, 8, 9, 32))
    '2809-20190808093200'
    """
    return f"{flow_id}-{trigger:%Y%m%d%H%M%S}"


def _clock(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def _json_text(value: object) -> str:
    text: str = orjson.dumps(value).decode()
    return text


def _parameters(flow: FlowSpec, business_day: datetime) -> list[dict[str, str]]:
    return [
        {"key": key, "value": f"{business_day:%Y%m%d}" if value == "${yyyymmdd}" else value}
        for key, value in flow.parameters
    ]


def _relations(plan: Plan, nodes: list[tuple[str, str]]) -> list[Any]:
    quirks = plan.quirks
    if "relations-from-to" in quirks:
        return [{"from": a, "to": b} for a, b in nodes]
    if "relations-pre-node" in quirks:
        return [{"preNodeId": a, "nodeId": b} for a, b in nodes]
    if "relations-pairs" in quirks:
        return [[a, b] for a, b in nodes]
    return [{"source": a, "target": b} for a, b in nodes]


def _graph(
    plan: Plan,
    seen: Observation,
    upstream: list[Upstream],
    graph_instance: tuple[str, datetime],
    parameters_text: str,
    listed: bool,
) -> dict[str, Any]:
    flow, quirks = plan.flow, plan.quirks
    graph_id, graph_trigger = graph_instance
    suffix = f"{graph_trigger:%Y%m%d%H%M%S}"
    as_string = "task-id-string" in quirks
    pool = flow.tasks[: plan.task_count]
    name_key, id_key = ("task_name", "task_id") if listed else ("taskName", "taskId")
    tasks = [
        {
            name_key: task.name,
            "taskInstId": f"{task.task_id}-{suffix}",
            "x": task.x,
            "y": task.y,
            id_key: str(task.task_id) if as_string else task.task_id,
            "nodeId": f"t_{task.task_id}",
            **({} if listed else {"status": status}),
        }
        for task, status in zip(pool, task_statuses(plan, seen), strict=True)
    ]
    edges = [(f"t_{pool[p].task_id}", f"t_{t.task_id}") for t in pool for p in t.parents]
    flows = []
    for row, (up_flow, up_id, up_status) in enumerate(upstream):
        node = f"f_{up_flow.flow_id}"
        edges.insert(row, (node, f"t_{pool[0].task_id}"))
        flows.append(
            {
                "flowId": str(up_flow.flow_id),
                "flowName": up_flow.name,
                "nodeId": node,
                "isVirtual": up_flow.is_virtual,
                "x": 0.0005,
                "y": round(0.0015 + 0.003 * row, 4),
                "flowInstId": up_id,
                "status": up_status,
            }
        )
    graph: dict[str, Any] = {
        "creator": flow.creator,
        "freq": flow.schedule.freq,
        "alertMode": flow.alert_mode,
        "owners": ";".join(flow.owners),
        "cycle": flow.schedule.cycle,
        ("do_as" if listed or "graph-do-as" in quirks else "doAs"): flow.do_as,
        "flows": flows,
    }
    extra_keys = "graph-extra-keys" in quirks and not listed
    if extra_keys:
        graph["alertTo"] = flow.alert_to
    graph.update(
        name=flow.name,
        instId=graph_id,
        id=flow.flow_id,
        relations=_relations(plan, edges),
        parameters=parameters_text,
    )
    if extra_keys:
        graph["app_id"] = flow.app_id
    graph["tasks"] = tasks
    return graph


def build_instance(
    plan: Plan,
    seen: Observation,
    upstream: list[Upstream],
    graph_instance: tuple[str, datetime] | None = None,
    *,
    listed: bool = False,
) -> dict[str, Any]:
    """Return the ``data`` object of Get Flow Instance for one observed instance, or
    with ``listed`` its element of List Flow Instances' ``flowInsts``.

    Args:
        upstream: Instances of the flows this flow waits for (``graph.flows``).
        graph_instance: ID and trigger of the instance the graph describes, when it is
            not this one (the doc's example shows another instance's graph).
    """
    flow, quirks = plan.flow, plan.quirks
    business_day = plan.trigger - timedelta(days=1)
    parameters = _parameters(flow, business_day)
    parameters_text = _json_text(parameters)
    graph_instance = graph_instance or (plan.instance_id, plan.trigger)
    graph = _graph(plan, seen, upstream, graph_instance, parameters_text, listed)
    data: dict[str, Any] = {
        "instanceId": plan.instance_id,
        "flowId": flow.flow_id,
        "flowName": flow.name,
        "freq": flow.schedule.freq,
        "cycle": flow.schedule.cycle,
        "parameters": parameters if "parameters-decoded" in quirks else parameters_text,
        "doAs": flow.do_as,
        "graph": graph if "graph-decoded" in quirks else _json_text(graph),
        "status": seen.status,
        "statusDesc": STATUS_NAMES[seen.status],
        "triggerTime": _clock(plan.trigger),
    }
    if seen.start is not None:
        data["startTime"] = _clock(seen.start)
    if seen.end is not None:
        data["endTime"] = _clock(seen.end)
    data.update(timestamp=f"{seen.record_time:%Y-%m-%d %H:%M:%S}.0", virtual=flow.is_virtual)
    data["owner"] = flow.owner
    if not listed:
        data.update(alertMode=flow.alert_mode, calDt=f"{business_day:%Y-%m-%d}")
    data.update(hasEditPri=flow.has_edit_pri, hasReadPri=True)
    if listed:
        data["isCancelled"] = seen.status == CANCEL
    return data
