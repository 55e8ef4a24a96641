"""Discovery: every instance List Flow Instances finds in a time window, paged concurrently.

The API takes one instance type per call, so a window is listed once per type. A long
window (a year's backfill) is cut into sub-windows of ``FetchConfig.split`` (a day by
default) that a pool of workers pages at once, within the client's rate budget.

The documentation says only that trigger times "fall between" ``fromTriggerTime`` and
``toTriggerTime``, and paging is by offset, so records move between pages while
instances start and finish. Sub-windows are therefore sent as inclusive millisecond
ranges that do not overlap (``[a, b - 1 ms]``, as the documentation's own Java sample
does), and every record is de-duplicated by ``instanceId`` however often it comes back.
A sub-window whose results go deeper than ``FetchConfig.max_depth`` records is bisected
and both halves are paged afresh (what was already read is de-duplicated), so no query
pages without end.
"""

from __future__ import annotations

import queue
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from extractor.config import FetchConfig
from extractor.errors import ConfigError
from extractor.run._fetch import Item, Workers

if TYPE_CHECKING:
    from extractor.gateway._client import EnOSClient

ALL_TYPES = (0, 1, 2)
"""Instance types: 0 manual, 1 periodic (scheduled), 2 temporary."""

Detail = Literal["full", "list"]
"""What a discovered instance costs: ``full`` fetches it with Get Flow Instance (the
only call with task status); ``list`` loads the record its list page carried."""

_MS = timedelta(milliseconds=1)
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Window:
    """One List Flow Instances query: a type and trigger times ``[from_ms, to_ms]``
    in epoch milliseconds, both ends included."""

    type: int
    from_ms: int
    to_ms: int

    def halves(self) -> tuple[Window, Window]:
        """The window cut in two, without overlap.

        >>> Window(1, 0, 9).halves()
        (Window(type=1, from_ms=0, to_ms=4), Window(type=1, from_ms=5, to_ms=9))
        """
        middle = (self.from_ms + self.to_ms) // 2
        return Window(self.type, self.from_ms, middle), Window(self.type, middle + 1, self.to_ms)


def windows(
    start: datetime,
    end: datetime,
    *,
    types: Sequence[int],
    split: timedelta,
    at_least: int = 1,
) -> list[Window]:
    """Cut trigger times ``[start, end)`` into sub-windows of ``split``, or shorter so
    that there are ``at_least`` of them (the workers that will page them; no shorter
    than a minute), per type, in time order.

    >>> from datetime import UTC
    >>> day = datetime(2026, 1, 1, tzinfo=UTC)
    >>> [(w.type, w.to_ms - w.from_ms + 1) for w in windows(
    ...     day, day + timedelta(hours=36), types=[0, 1], split=timedelta(days=1))]
    [(0, 86400000), (1, 86400000), (0, 43200000), (1, 43200000)]
    >>> [w.to_ms - w.from_ms + 1 for w in windows(
    ...     day, day + timedelta(hours=36), types=[1], split=timedelta(days=1), at_least=4)]
    [32400000, 32400000, 32400000, 32400000]
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ConfigError("discovery times must be time-zone aware")
    if end <= start:
        raise ConfigError(f"the window is empty: {end.isoformat()} is not after {start}")
    split = max(min(split, (end - start) / at_least), min(_MINUTE, split))
    found = []
    low = start
    while low < end:
        high = min(low + split, end)
        for kind in types:
            found.append(Window(kind, _epoch_ms(low), _epoch_ms(high) - 1))
        low = high
    return found


def around(
    times: Sequence[datetime], *, types: Sequence[int], gap: timedelta = timedelta(hours=1)
) -> list[Window]:
    """Windows that hold the given trigger times: each time to the end of its second
    (the API's times have whole seconds), times less than ``gap`` apart in one window.

    >>> from datetime import UTC
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> [(w.from_ms - _epoch_ms(t), w.to_ms - _epoch_ms(t)) for w in around(
    ...     [t + timedelta(hours=5), t, t + timedelta(minutes=10)], types=[1])]
    [(0, 600999), (18000000, 18000999)]
    """
    spans: list[tuple[int, int]] = []
    for ms in sorted(_epoch_ms(t) for t in times):
        if spans and ms - spans[-1][1] < gap / _MS:
            spans[-1] = (spans[-1][0], ms + 999)
        else:
            spans.append((ms, ms + 999))
    return [Window(kind, low, high) for low, high in spans for kind in types]


def discover(
    client: EnOSClient,
    queries: Sequence[Window],
    *,
    fetch: FetchConfig | None = None,
    status: str = "",
) -> Iterator[dict[str, Any]]:
    """Yield each record the queries find once, in no particular order.

    ``fetch.workers`` threads page the windows concurrently; a window deeper than
    ``fetch.max_depth`` records is bisected. At most a few pages wait in memory.

    Raises:
        ApiError: a page could not be read after its retries; the workers stop first.
    """
    policy = fetch or FetchConfig()
    todo: queue.Queue[Window | None] = queue.Queue()
    count = min(policy.workers, max(len(queries), 2))
    pool: Workers[_Item] = Workers(count, capacity=2 * policy.workers, name="discover")

    def work() -> None:
        while not pool.stop.is_set() and (window := todo.get()) is not None:
            try:
                for item in _pages(client, window, policy, status):
                    pool.emit(item)
            except Exception as exc:  # re-raised by the consumer
                pool.emit(exc)
            pool.emit(None)  # this window is done

    for window in queries:
        todo.put(window)
    outstanding = len(queries)
    items = pool.results(work)
    seen: set[str] = set()
    try:
        for item in items:
            if item is None:
                outstanding -= 1
                if not outstanding:
                    return
            elif isinstance(item, Exception):
                raise item
            elif isinstance(item, Window):
                todo.put(item)
                outstanding += 1
            else:
                for record in item:
                    instance_id = record.get("instanceId")
                    key = str(instance_id) if instance_id is not None else None
                    if key is None or key not in seen:
                        if key is not None:
                            seen.add(key)
                        yield record
    finally:
        for _ in range(count):
            todo.put(None)
        items.close()


_Item = list[dict[str, Any]] | Window | Exception | None
"""A page of records, a half window to page instead, a window's error, or its end."""


def _pages(client: EnOSClient, window: Window, policy: FetchConfig, status: str) -> Iterator[_Item]:
    """The pages of one window, or its halves once it proves deeper than allowed."""
    depth = 0
    page_no = 1
    while True:
        records = client.list_page(
            from_ms=window.from_ms,
            to_ms=window.to_ms,
            type=window.type,
            page_no=page_no,
            page_size=policy.page_size,
            status=status,
        )
        yield records
        depth += len(records)
        if len(records) < policy.page_size:
            return
        if depth >= policy.max_depth and window.to_ms > window.from_ms:
            yield from window.halves()
            return
        page_no += 1


def as_items(records: Iterable[Mapping[str, Any]], detail: Detail) -> Iterator[Item]:
    """What to load of listed records: each record itself (``list``), or its ID to
    fetch (``full``; a record without an ID passes on, for the flattener to reject)."""
    for record in records:
        instance_id = record.get("instanceId")
        if detail == "list" or not isinstance(instance_id, str | int):
            yield record
        else:
            yield str(instance_id)


def _epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)
