"""The shapes of a flow-instance graph that the fast path decodes, as msgspec structs.

The types are the reference path's coercions turned into declarations: a task's
``taskId`` is an integer or a numeric string, a ``taskInstId`` a non-empty string, and so
on. Unknown fields are forbidden, so that any record this version does not fully know
fails to decode and takes the reference path, which keeps such fields in ``extra_json``.
Decoding into slotted structs (``gc=False``: they hold no cycles) costs about half of
``orjson.loads`` into dicts.
"""

from __future__ import annotations

from typing import Annotated, Any, cast

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType, field

from extractor._coerce import INT64_MAX, INT64_MIN


class ShapeError(Exception):
    """The record is not of a shape the fast path knows; the reference path takes it."""


NonEmpty = Annotated[str, Meta(min_length=1)]
Int64 = Annotated[int, Meta(ge=INT64_MIN, le=INT64_MAX)]
# What the reference's coercions accept of a JSON scalar; they run on these values too.
Scalar = str | Int64 | float | bool | None


class Task(Struct, rename="camel", forbid_unknown_fields=True, gc=False):
    """``graph.tasks[]``."""

    task_inst_id: NonEmpty
    task_name: str | None = None
    x: float | None = None
    y: float | None = None
    task_id: Int64 | str | None = None
    node_id: NonEmpty | None = None
    status: str | None = None


class ListedTask(Struct, forbid_unknown_fields=True, gc=False):
    """``graph.tasks[]`` as List Flow Instances spells it (``task_name``, ``task_id``,
    no status); the fields of :class:`Task`, in its order."""

    task_inst_id: NonEmpty = field(name="taskInstId")
    task_name: str | None = None
    x: float | None = None
    y: float | None = None
    task_id: Int64 | str | None = None
    node_id: NonEmpty | None = field(name="nodeId", default=None)
    status: str | None = None


class Flow(Struct, rename="camel", forbid_unknown_fields=True, gc=False):
    """``graph.flows[]``: rare, so its values keep the reference's coercions."""

    node_id: NonEmpty
    flow_id: Scalar = None
    flow_name: Scalar = None
    is_virtual: Scalar = None
    x: Scalar = None
    y: Scalar = None
    flow_inst_id: Scalar = None
    status: Scalar = None


class Edge(Struct, rename="camel", gc=False):
    """``graph.relations[]`` as an object; as in the reference, other keys are ignored."""

    source: NonEmpty | UnsetType = UNSET
    target: NonEmpty | UnsetType = UNSET
    from_: NonEmpty | UnsetType = field(name="from", default=UNSET)
    to: NonEmpty | UnsetType = UNSET
    pre_node_id: NonEmpty | UnsetType = UNSET
    node_id: NonEmpty | UnsetType = UNSET
    from_node_id: NonEmpty | UnsetType = UNSET
    to_node_id: NonEmpty | UnsetType = UNSET
    source_node_id: NonEmpty | UnsetType = UNSET
    target_node_id: NonEmpty | UnsetType = UNSET


# The reference's EDGE_SPELLINGS as attribute names, in its order of precedence.
_SPELLINGS = (
    ("source", "target"),
    ("from_", "to"),
    ("pre_node_id", "node_id"),
    ("from_node_id", "to_node_id"),
    ("source_node_id", "target_node_id"),
)


class _GraphFields(Struct, rename="camel", forbid_unknown_fields=True, gc=False):
    creator: Scalar = None
    freq: Scalar = None
    alert_mode: Scalar = None
    owners: Scalar = None
    cycle: Scalar = None
    do_as: Scalar = None
    do_as_snake: Scalar = field(name="do_as", default=None)
    flows: list[Flow] | Flow | None = None
    alert_to: Scalar = None
    name: Scalar = None
    inst_id: Scalar = None
    id: Scalar = None
    parameters: str | None = None
    app_id: Scalar = field(name="app_id", default=None)
    tasks: list[Task] | None = None


class Graph(_GraphFields, forbid_unknown_fields=True, gc=False):
    """The decoded ``graph``, from a JSON object that the client already decoded."""

    relations: list[Edge | list[NonEmpty]] | None = None


class GraphText(_GraphFields, forbid_unknown_fields=True, gc=False):
    """The decoded ``graph`` text. A flow's relations are the same in each of its
    instances, so they are kept as text, decoded once per batch (:func:`edges_of`)."""

    relations: msgspec.Raw = msgspec.Raw()


class ListedGraph(Graph, forbid_unknown_fields=True, gc=False):
    """:class:`Graph` with List Flow Instances' task spelling."""

    tasks: list[ListedTask] | None = None  # type: ignore[assignment]


class ListedGraphText(GraphText, forbid_unknown_fields=True, gc=False):
    """:class:`GraphText` with List Flow Instances' task spelling."""

    tasks: list[ListedTask] | None = None  # type: ignore[assignment]


class Record(Struct, rename="camel", forbid_unknown_fields=True, gc=False):
    """The Get Flow Instance ``data`` object, from the dict the client decoded."""

    instance_id: Scalar = None
    flow_id: Scalar = None
    flow_name: Scalar = None
    freq: Scalar = None
    cycle: Scalar = None
    parameters: Any = UNSET
    do_as: Scalar = None
    graph: Any = None
    status: Scalar = None
    status_desc: Scalar = None
    trigger_time: Scalar = None
    start_time: Scalar = None
    end_time: Scalar = None
    timestamp: Scalar = None
    virtual: Scalar = None
    owner: Scalar = None
    alert_mode: Scalar = None
    cal_dt: Scalar = None
    has_edit_pri: Scalar = None
    has_read_pri: Scalar = None
    is_cancelled: Scalar = None


def record_of(raw: Any) -> Record:
    """The record of a ``data`` object, an envelope, or a list of one.

    >>> record_of({"code": 0, "data": [{"instanceId": "1-2", "status": "1"}]}).status
    '1'
    """
    if type(raw) is dict and "data" in raw and "instanceId" not in raw:
        raw = raw["data"]
    if type(raw) is list and len(raw) == 1:
        raw = raw[0]
    if type(raw) is not dict:
        raise ShapeError
    return msgspec.convert(raw, Record)


NO_GRAPH = Graph()
_TextShape = GraphText | list[GraphText] | None
_ObjectShape = Graph | list[Graph] | None
_DECODER = msgspec.json.Decoder(_TextShape)
_LISTED_DECODER = msgspec.json.Decoder(ListedGraphText | list[ListedGraphText] | None)
_LISTED_OBJECT = ListedGraph | list[ListedGraph] | None
_LISTED_KEY = '"task_name"'
"""A graph text with this in it has List Flow Instances' task spelling."""
_RELATIONS = msgspec.json.Decoder(list[Edge | list[NonEmpty]] | None)


def graph_of(raw: Any) -> Graph | GraphText | None:
    """Decode ``graph`` (JSON text, or already decoded); None when there is none.

    >>> graph_of([{"tasks": [{"taskInstId": "1-x", "taskId": "1"}]}]).tasks[0].task_id
    '1'
    >>> graph_of('{"tasks": [], "retries": 2}')
    Traceback (most recent call last):
    msgspec.ValidationError: Object contains unknown field `retries`
    """
    graph: Any
    if type(raw) is str:
        if not raw:
            return None
        graph = (_LISTED_DECODER if _LISTED_KEY in raw else _DECODER).decode(raw)
    elif raw is None:
        return None
    elif type(raw) is dict or type(raw) is list:
        try:
            graph = msgspec.convert(raw, _ObjectShape)
        except msgspec.ValidationError:
            graph = msgspec.convert(raw, _LISTED_OBJECT)
    else:
        raise ShapeError
    if type(graph) is list:
        if len(graph) != 1:
            raise ShapeError
        graph = graph[0]
    return cast(Graph | GraphText | None, graph)


class _SourceTarget(Struct, forbid_unknown_fields=True, gc=False):
    a: NonEmpty = field(name="source")
    b: NonEmpty = field(name="target")


class _FromTo(Struct, forbid_unknown_fields=True, gc=False):
    a: NonEmpty = field(name="from")
    b: NonEmpty = field(name="to")


class _PreNode(Struct, forbid_unknown_fields=True, gc=False):
    a: NonEmpty = field(name="preNodeId")
    b: NonEmpty = field(name="nodeId")


# A relations text in one spelling throughout, with no other key, reads as the
# reference reads it; these decode such texts in a third less time than the general
# shape. A text that starts like one but is not one fails and takes the general way.
_ONE_SPELLING = (
    (b'[{"source":', msgspec.json.Decoder(list[_SourceTarget])),
    (b'[{"from":', msgspec.json.Decoder(list[_FromTo])),
    (b'[{"preNodeId":', msgspec.json.Decoder(list[_PreNode])),
)
_PAIRS = msgspec.json.Decoder(list[tuple[NonEmpty, NonEmpty]])


def _one_spelling(text: bytes) -> tuple[list[str], list[str]] | None:
    """The from and to nodes of a relations text in one known spelling; else None."""
    try:
        if text.startswith(b"[["):
            pairs = _PAIRS.decode(text)
            return [a for a, _ in pairs], [b for _, b in pairs]
        for prefix, decoder in _ONE_SPELLING:
            if text.startswith(prefix):
                edges = decoder.decode(text)
                return [e.a for e in edges], [e.b for e in edges]
    except msgspec.ValidationError:
        pass
    return None


def edges_of(relations: Any) -> tuple[list[str], list[str]]:
    """Return the from and to nodes of ``graph.relations`` (decoded, or its text), as the
    reference reads them: the same edge twice is one. Raise :class:`ShapeError` if the
    reference would quarantine one.

    >>> edges_of(msgspec.Raw(b'[{"from": "t_1", "to": "t_2"}, ["t_1", "t_2"]]'))
    (['t_1'], ['t_2'])
    """
    spelled = None
    if type(relations) is msgspec.Raw:
        spelled = _one_spelling(bytes(relations))
        if spelled is None:
            relations = _RELATIONS.decode(relations) if relations else None
    if spelled is not None:
        froms, tos = spelled
    elif not relations:
        return [], []
    else:
        froms, tos = _spelled(relations)
    if len(froms) > 1 and len(set(zip(froms, tos, strict=True))) != len(froms):
        edges = dict.fromkeys(zip(froms, tos, strict=True))
        froms, tos = [a for a, _ in edges], [b for _, b in edges]
    return froms, tos


def _spelled(relations: list[Edge | list[str]]) -> tuple[list[str], list[str]]:
    if type(relations[0]) is list:
        if all(type(r) is list and len(r) == 2 for r in relations):
            return [r[0] for r in relations], [r[1] for r in relations]  # type: ignore[index]
    else:
        try:
            # The whole list in one spelling, and no trace of an earlier one (UNSET and
            # empty node IDs are false), reads as the reference reads each relation.
            for a, b in _SPELLINGS:
                froms = [getattr(r, a) for r in relations]
                if all(froms):
                    tos = [getattr(r, b) for r in relations]
                    if all(tos):
                        return froms, tos
                if any(froms):
                    break
        except AttributeError:  # a [from, to] pair among the objects
            pass
    return _mixed(relations)


def _mixed(relations: list[Edge | list[str]]) -> tuple[list[str], list[str]]:
    froms, tos = [], []
    for r in relations:
        if type(r) is list:
            if len(r) != 2:
                raise ShapeError
            a, b = r
        else:
            for x, y in _SPELLINGS:
                a, b = getattr(r, x), getattr(r, y)
                if a and b:
                    break
            else:
                raise ShapeError
        froms.append(a)
        tos.append(b)
    return froms, tos
