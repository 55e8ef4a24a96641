"""The flattener's fast path: records of a known shape, straight into Arrow columns.

A record takes this path only when each part of it has one of the shapes the API is
known to send (the documented quirks included, see :mod:`extractor._shapes`): no
unknown field, nothing to quarantine, naive wall-clock timestamps. Any other record is
refused and takes the reference path in :mod:`extractor.flattener`, which defines the
output: for each record this path keeps, the rows are exactly the reference's
(``tests/test_flatten.py`` compares the two on thousands of simulator records).

What it saves, per instance: a dict per graph node (msgspec builds slotted structs and
checks their types as it decodes), a coercion call per task field (the struct types are
the column types), decoding the relations a flow repeats in every instance (once per
batch and text instead), row tuples per table, and Python datetimes (timestamps stay
text until Arrow parses and shifts a whole column; the next fire of a regular schedule
is one vectorised addition). :mod:`extractor._fastcolumns` does the typing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
from msgspec import UNSET, Raw
from msgspec.structs import astuple

from extractor._coerce import (
    as_bool,
    as_date,
    as_float,
    as_id,
    as_id_or_none,
    as_int,
    as_text,
    canonical_json,
    decode_json,
)
from extractor._fastcolumns import CHUNK, Batch, finish
from extractor._shapes import NO_GRAPH, Flow, ShapeError, edges_of, graph_of, record_of
from extractor._wallclock import Shift
from extractor.schedule import parse_cron

_REFUSALS = (ShapeError, ValueError, TypeError, OverflowError, msgspec.MsgspecError)

ParamRows = tuple[tuple[str, str | None, int], ...]


@dataclass(slots=True)
class FastTables:
    """Tables of the records the fast path kept, the record position of each of their
    rows, and the positions of the records it refused (ascending)."""

    tables: dict[str, pa.Table]
    positions: dict[str, np.ndarray]
    refused: list[int]


def flatten_fast(
    records: Sequence[Any],
    *,
    shift: Shift | None,
    extracted_at: datetime | Sequence[datetime],
    expected_ids: Sequence[str | None] | None = None,
) -> FastTables:
    """Flatten the records the fast path can take; list the positions of the others.

    ``shift`` reads wall-clock times as UTC (:func:`extractor._wallclock.shift_for`);
    without one, every record is refused.
    """
    if shift is None:
        return FastTables(tables={}, positions={}, refused=list(range(len(records))))
    adder = _Adder()
    refused = []
    for position, raw in enumerate(records):
        try:
            adder.add(raw, position, expected_ids[position] if expected_ids is not None else None)
        except _REFUSALS:
            refused.append(position)
    if not adder.batch.instances:
        return FastTables(tables={}, positions={}, refused=refused)
    tables, positions, late = finish(adder.batch, shift, extracted_at)
    return FastTables(tables, positions, sorted(refused + late))


class _Adder:
    """Adds records to a :class:`Batch`, remembering what repeats within the batch:
    parameter texts, business dates and relation texts."""

    def __init__(self) -> None:
        self.batch = Batch()
        self.params: dict[str | bytes, tuple[str | None, ParamRows]] = {}
        self.dates: dict[str, Any] = {}
        self.edges: dict[bytes, int | None] = {}

    def add(self, raw: Any, position: int, expected_id: str | None) -> None:
        """Add one record's rows, or raise having added nothing."""
        batch = self.batch
        r = record_of(raw)
        instance_id = r.instance_id
        if type(instance_id) is not str or not instance_id:
            raise ShapeError
        if expected_id is not None and instance_id != expected_id:
            raise ShapeError
        graph = graph_of(r.graph)
        g = NO_GRAPH if graph is None else graph

        v = g.parameters if r.parameters is UNSET else r.parameters
        key = v if type(v) is str else _decoded_key(v)
        found = self.params.get(key) if key is not None else None
        if found is None:
            found = _parameters(v)
            if key is not None:
                self.params[key] = found
        params_json, params = found
        v = r.cal_dt
        cal_dt = self.dates.get(v) if type(v) is str else None
        if cal_dt is None:
            cal_dt = as_date(v, "calDt")
            if type(v) is str:
                self.dates[v] = cal_dt

        # The reference's coercions, called only when the value is not already right.
        v = g.freq if r.freq is None else r.freq
        freq = v if v is None or type(v) is str else as_text(v)
        v = g.cycle if r.cycle is None else r.cycle
        cycle = v if v is None or type(v) is str else as_text(v)
        v = r.do_as
        if v is None:
            v = g.do_as if g.do_as is not None else g.do_as_snake
        do_as = v if v is None or type(v) is str else as_text(v)
        v = g.name if r.flow_name is None else r.flow_name
        flow_name = v if v is None or type(v) is str else as_text(v)
        v = g.id if r.flow_id is None else r.flow_id
        flow_id = v if type(v) is int else as_int(v, "flowId")
        v = g.alert_mode if r.alert_mode is None else r.alert_mode
        alert_mode = v if type(v) is int else as_int(v, "alertMode")
        v = r.status
        status = v if type(v) is int else as_int(v, "status")
        v = r.status_desc
        status_desc = v if v is None or type(v) is str else as_text(v)
        v = r.owner
        owner = v if v is None or type(v) is str else as_text(v)
        v = r.virtual
        virtual = v if v is None or type(v) is bool else as_bool(v, "virtual")
        v = r.has_edit_pri
        edit = v if v is None or type(v) is bool else as_bool(v, "hasEditPri")
        v = r.has_read_pri
        read = v if v is None or type(v) is bool else as_bool(v, "hasReadPri")
        v = r.is_cancelled
        cancelled = v if v is None or type(v) is bool else as_bool(v, "isCancelled")
        v = g.inst_id
        graph_instance = v if type(v) is str and v else as_id(v)
        v = g.creator
        creator = v if v is None or type(v) is str else as_text(v)
        v = g.owners
        owners = v if v is None or type(v) is str else as_text(v)
        v = g.alert_to
        alert_to = v if v is None or type(v) is str else as_text(v)
        v = g.app_id
        app_id = v if v is None or type(v) is str else as_text(v)
        v = r.trigger_time
        trigger = v if type(v) is str and v else _wall_text(v)
        v = r.start_time
        start = v if type(v) is str and v else _wall_text(v)
        v = r.end_time
        end = v if type(v) is str and v else _wall_text(v)
        v = r.timestamp
        stamp = v if type(v) is str and v else _wall_text(v)
        code = batch.schedule_codes.get(freq)
        if code is None:
            code = batch.schedule_code(freq, parse_cron(freq) if freq else None)

        task_count: int | None = None
        tasks: Any = ()
        edges: int | None = -1
        flows: list[tuple[Any, ...]] = []
        if graph is not None:
            tasks = graph.tasks or ()
            task_count = len(tasks)
            relations = graph.relations
            if type(relations) is Raw:
                text = bytes(relations)
                edges = self.edges.get(text, _UNSEEN)
                if edges is _UNSEEN:
                    edges = self.edges[text] = _edge_set(batch, relations)
                if edges is None:
                    raise ShapeError
            elif relations:
                froms, tos = edges_of(relations)
                edges = batch.edge_set(froms, tos)
            if graph.flows:
                flows = [_dependency(f) for f in _listed(graph.flows)]
                if len({f[0] for f in flows}) != len(flows):
                    raise ShapeError  # a duplicate node, which the reference quarantines

        # No row is stored above this line (edge sets are shared), and nothing below can fail.
        batch.instances.append(
            (
                instance_id,
                flow_id,
                flow_name,
                freq,
                cycle,
                do_as,
                status,
                status_desc,
                trigger,
                start,
                end,
                stamp,
                virtual,
                owner,
                alert_mode,
                cal_dt,
                edit,
                read,
                cancelled,
                creator,
                owners,
                alert_to,
                app_id,
                graph_instance,
                task_count,
                code,
                params_json,
                position,
                len(tasks),
                edges,
                len(flows),
                len(params),
            )
        )
        if tasks:
            batch.tasks += map(astuple, tasks)
            if type(tasks[0].task_id) is str:
                batch.text_task_ids = True
        if flows:
            batch.dependencies += flows
        if params:
            batch.parameters += params
        if len(batch.instances) - batch.typed == CHUNK:
            batch.flush()


_ENCODER = msgspec.json.Encoder()


def _decoded_key(value: Any) -> bytes | None:
    """A key for ``parameters`` the client already decoded: its JSON text, when that
    text reads back as an equal value (not so for NaN, or a dict with a number key)."""
    if type(value) is not list:
        return None
    try:
        key = _ENCODER.encode(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return key if msgspec.json.decode(key) == value else None


def _parameters(raw: Any) -> tuple[str | None, ParamRows]:
    """Return ``parameters_json`` and the (key, value, position) rows."""
    params = decode_json(raw, "parameters", list)
    if params is None:
        return None, ()
    rows = []
    seen: set[str] = set()
    for position, param in enumerate(params):
        key = as_id_or_none(param.get("key")) if isinstance(param, Mapping) else None
        if key is None or key in seen:
            raise ShapeError  # quarantined by the reference
        seen.add(key)
        value = param.get("value")
        text = value if isinstance(value, str) or value is None else canonical_json(value)
        rows.append((key, text, position))
    return canonical_json(params), tuple(rows)


def _edge_set(batch: Batch, relations: Raw) -> int | None:
    """Number the edges of a relations text in the batch, or return None if the
    reference would quarantine one."""
    try:
        froms, tos = edges_of(relations)
    except (ShapeError, msgspec.MsgspecError):
        return None
    return batch.edge_set(froms, tos)


_UNSEEN: Any = object()


def _wall_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if type(value) is str:
        return value
    raise ShapeError  # epoch milliseconds and such: the reference reads them


def _listed(flows: list[Flow] | Flow) -> list[Flow]:
    return [flows] if isinstance(flows, Flow) else flows


def _dependency(flow: Flow) -> tuple[Any, ...]:
    # The reference's coercions, called only when the value is not already right.
    name, instance, status, x, y = flow.flow_name, flow.flow_inst_id, flow.status, flow.x, flow.y
    return (
        flow.node_id,
        as_int(flow.flow_id, "flowId"),
        name if type(name) is str else as_text(name),
        instance if type(instance) is str and instance else as_id(instance),
        as_bool(flow.is_virtual, "isVirtual"),
        status if type(status) is str else as_text(status),
        x if type(x) is float else as_float(x, "x"),
        y if type(y) is float else as_float(y, "y"),
        None,
    )
