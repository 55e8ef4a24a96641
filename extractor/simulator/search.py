"""List Flow Instances: validating the request body and paging through the matches.

The body is read as the documentation writes it: ``type``, ``expression``, ``owner``,
``fromTriggerTime``/``toTriggerTime`` (the Java sample's ``startTriggerTime``/
``endTriggerTime`` too), ``status`` as comma-separated codes (or the request sample's
bare integer), and ``pagination`` with ``pageNo`` from 1 and camelCase sorter fields;
any other sorter field is error 62102 "The sorters field parameter is invalid".

Matches sorted by trigger time, oldest first, are enumerated lazily, so page ``n``
costs skipping ``n * pageSize`` IDs. To keep sequential paging linear, the position
after each page is kept as a cursor; the next page of the same query continues from
it. Other orders sort the whole match (``updateTime`` is the record's ``timestamp``,
``createTime`` its trigger time, as the simulator creates an instance when it fires).
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TypeGuard

import orjson

from extractor.simulator.population import Population
from extractor.tables._schema import STATUS_NAMES

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 10
_RECORD_FIELD = {
    "createTime": "triggerTime",
    "updateTime": "timestamp",
    "startTime": "startTime",
    "triggerTime": "triggerTime",
    "endTime": "endTime",
}
"""The record's field behind each sorter field List Flow Instances accepts."""
_CURSORS = 32


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """A validated List Flow Instances body."""

    type: int
    expression: str
    owner: str
    from_ms: int
    to_ms: int
    statuses: frozenset[int]
    page_no: int
    page_size: int
    sort_field: str = "triggerTime"
    descending: bool = False


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _statuses(value: object) -> frozenset[int] | str:
    if _is_int(value):
        value = str(value)
    if not isinstance(value, str):
        return "status is required: comma-separated status codes, empty for all"
    codes: set[int] = set()
    for part in filter(None, (p.strip() for p in value.split(","))):
        try:
            code = int(part)
        except ValueError:
            return f"status must be comma-separated status codes, got {value!r}"
        if code not in STATUS_NAMES:
            return f"unknown status code {code}"
        codes.add(code)
    return frozenset(codes)


def _pagination(value: object) -> tuple[int, int, str, bool] | str:
    if value is None:
        return 1, DEFAULT_PAGE_SIZE, "triggerTime", False
    if not isinstance(value, dict):
        return "pagination must be an object"
    page_no, page_size = value.get("pageNo", 1), value.get("pageSize", DEFAULT_PAGE_SIZE)
    if not _is_int(page_no) or page_no < 1:
        return "pagination.pageNo must be an integer >= 1 (pages are numbered from 1)"
    if not _is_int(page_size) or not 0 < page_size <= MAX_PAGE_SIZE:
        return f"pagination.pageSize must be an integer in 1..{MAX_PAGE_SIZE}"
    sorters = value.get("sorters") or []
    if not isinstance(sorters, list):
        return "pagination.sorters must be a list"
    field, descending = "triggerTime", False
    for sorter in sorters[:1]:  # the first sorter orders the pages
        if not isinstance(sorter, dict) or sorter.get("field") not in _RECORD_FIELD:
            return "The sorters field parameter is invalid"
        order = str(sorter.get("order", "ASC")).upper()
        if order not in ("ASC", "DESC"):
            return "sorters: order must be ASC or DESC"
        field, descending = sorter["field"], order == "DESC"
    return page_no, page_size, field, descending


def parse_search(body: bytes) -> SearchRequest | str:
    """Validate a List Flow Instances body; return the request or what is wrong with it."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "the request body must be JSON"
    if not isinstance(value, dict):
        return "the request body must be a JSON object"
    kind = value.get("type")
    if not _is_int(kind) or kind not in (0, 1, 2):
        return "type is required: 0 manual, 1 periodic, 2 temporary"
    owner, expression = value.get("owner"), value.get("expression", "")
    if not isinstance(owner, str):
        return "owner is required (an empty string for any owner)"
    if not isinstance(expression, str):
        return "expression must be a string"
    from_ms = value.get("fromTriggerTime", value.get("startTriggerTime"))
    to_ms = value.get("toTriggerTime", value.get("endTriggerTime"))
    if not _is_int(from_ms) or not _is_int(to_ms):
        return "fromTriggerTime and toTriggerTime are required, in epoch milliseconds"
    if from_ms > to_ms:
        return "fromTriggerTime must not be after toTriggerTime"
    statuses = _statuses(value.get("status"))
    if isinstance(statuses, str):
        return statuses
    paging = _pagination(value.get("pagination"))
    if isinstance(paging, str):
        return paging
    return SearchRequest(kind, expression, owner, from_ms, to_ms, statuses, *paging)


class SearchCursors:
    """Remembers where the last pages of recent queries ended."""

    def __init__(self) -> None:
        self._cursors: OrderedDict[tuple[object, int], Iterator[str]] = OrderedDict()
        self._lock = threading.Lock()

    def page(self, population: Population, request: SearchRequest) -> list[str]:
        """Return the IDs of the requested page."""
        # A cursor is found by its query and the offset it stopped at, whatever the page size.
        query = (replace(request, page_no=1, page_size=1), population.now, population.start)
        offset = (request.page_no - 1) * request.page_size
        with self._lock:
            found = self._cursors.pop((query, offset), None)
        if found is None:
            found = population.search_ids(
                request.from_ms,
                request.to_ms,
                request.statuses,
                expression=request.expression,
                owner=request.owner,
                type=request.type,
            )
            if request.sort_field != "triggerTime" or request.descending:
                found = iter(_sorted(population, found, request))
            found = itertools.islice(found, offset, None)
        page = list(itertools.islice(found, request.page_size))
        if len(page) == request.page_size:
            with self._lock:
                self._cursors[(query, offset + request.page_size)] = found
                while len(self._cursors) > _CURSORS:
                    self._cursors.popitem(last=False)
        return page


def _sorted(population: Population, ids: Iterator[str], request: SearchRequest) -> list[str]:
    """The IDs in the requested order; instances without the field (not started, not
    ended) last, as a database's NULLS LAST would put them."""
    name = _RECORD_FIELD[request.sort_field]
    keyed = []
    for instance_id in ids:
        record = population.instance(instance_id) or {}
        value = record.get(name)
        keyed.append((value is None, str(value or ""), instance_id))
    present = sorted((k for k in keyed if not k[0]), reverse=request.descending)
    return [k[2] for k in present] + sorted(k[2] for k in keyed if k[0])
