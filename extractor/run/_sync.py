"""Incremental loading: discover by trigger time, re-fetch what can still change."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

from extractor.config import FetchConfig
from extractor.errors import ConfigError
from extractor.gateway._client import EnOSClient
from extractor.load._state import Moving
from extractor.run._discovery import ALL_TYPES, Detail, Window, around, as_items, discover, windows
from extractor.run._fetch import Item
from extractor.run._pipeline import Destination, ProgressCallback, run_extract
from extractor.run._report import RunReport

SYNC_WATERMARK = "sync"


def run_sync(
    *,
    client: EnOSClient,
    destinations: Sequence[Destination],
    until: datetime,
    since: datetime | None = None,
    lookback: timedelta = timedelta(hours=1),
    types: Sequence[int] = ALL_TYPES,
    detail: Detail = "full",
    settle_after: timedelta = timedelta(days=7),
    recheck_every: timedelta = timedelta(days=1),
    now: datetime | None = None,
    fetch: FetchConfig | None = None,
    on_progress: ProgressCallback | None = None,
) -> RunReport:
    """Bring the destinations up to date with the gateway; safe to run every few minutes.

    Discovers instances triggered in ``[since, until)`` (``since`` defaults to the stored
    watermark minus ``lookback``, so late-appearing instances are caught) and loads
    those not yet loaded in a terminal status, every loaded instance still moving
    (RUNNING, WAIT, ...) and every ID in ``failed_instances``, then stores ``until`` as
    the new watermark in each destination. Overlapping windows only re-load rows.

    With ``detail="full"`` each of them is fetched with Get Flow Instance. With
    ``detail="list"`` the records of the List Flow Instances pages are loaded as they
    are (no task status): moving instances are refreshed from the pages of windows
    around their trigger times, and only failed IDs, or moving ones those pages no
    longer hold, cost a Get call.

    The moving set is bounded: an instance triggered more than ``settle_after`` before
    ``until`` and still not in a final status (a run suspended and forgotten) is
    re-checked only once per ``recheck_every`` of wall-clock time (by its
    ``extracted_at``, against ``now``), not on every sync. The report counts those left
    for later as ``stale``.

    Raises:
        ConfigError: no ``since`` and no stored watermark (the first sync needs one).
    """
    policy = fetch or client.fetch_config
    stores = [d.state for d in destinations if d.state is not None]
    mark = watermark_name(types)
    if since is None:
        marks = [s.watermark(mark) for s in stores]
        if not marks or any(m is None for m in marks):
            raise ConfigError("no stored watermark yet: give --since for the first sync")
        since = min(m for m in marks if m is not None) - lookback
    if since.tzinfo is None or until.tzinfo is None:
        raise ConfigError("sync times must be time-zone aware")
    if until <= since:
        raise ConfigError(f"nothing to sync: {since.isoformat()} is not before {until}")
    queries = windows(since, until, types=types, split=policy.split, at_least=policy.workers)
    moving: dict[str, Moving] = {}
    for dest in destinations:
        moving.update(dest.moving())
    due = _due(
        moving, settled=until - settle_after, fetched=(now or datetime.now(UTC)) - recheck_every
    )
    items = _sync_items(client, destinations, queries, types, policy, detail, due)
    report = run_extract(
        items, client=client, destinations=destinations, fetch=policy, on_progress=on_progress
    )
    report.stale = len(moving) - len(due)
    if report.fatal_error is None:
        for store in stores:
            store.set_watermark(mark, until)
    return report


def watermark_name(types: Sequence[int]) -> str:
    """The watermark of syncs over these instance types: one per set of types, since
    each says how far discovery of those types has got.

    >>> watermark_name(ALL_TYPES), watermark_name([1, 0, 1])
    ('sync', 'sync:types=0,1')
    """
    kinds = sorted(set(types))
    if kinds == sorted(set(ALL_TYPES)):
        return SYNC_WATERMARK
    return f"{SYNC_WATERMARK}:types={','.join(map(str, kinds))}"


def _sync_items(
    client: EnOSClient,
    destinations: Sequence[Destination],
    queries: Sequence[Window],
    types: Sequence[int],
    fetch: FetchConfig,
    detail: Detail,
    moving: dict[str, Moving],
) -> Iterator[Item]:
    queued: set[str] = set()
    found = discover(client, queries, fetch=fetch)
    yield from _not_settled(as_items(found, detail), destinations, queued)
    times = [m.trigger_time for i, m in moving.items() if m.trigger_time and i not in queued]
    if detail == "list" and times:
        for record in discover(client, around(times, types=types), fetch=fetch):
            instance_id = str(record.get("instanceId"))
            if instance_id in moving and instance_id not in queued:
                queued.add(instance_id)
                yield record
    failed = [i for dest in destinations for i in dest.failed_ids()]
    for instance_id in [*moving, *failed]:
        if instance_id not in queued:
            queued.add(instance_id)
            yield instance_id


def _due(moving: dict[str, Moving], *, settled: datetime, fetched: datetime) -> dict[str, Moving]:
    """The moving instances to re-check now: those triggered within the settle window,
    and older ones last fetched before ``fetched``.

    >>> from datetime import UTC
    >>> day = datetime(2026, 1, 8, tzinfo=UTC)
    >>> sorted(_due({"young": Moving(day, day), "old": Moving(day - timedelta(9), day),
    ...              "old-unseen": Moving(day - timedelta(9), day - timedelta(2))},
    ...             settled=day - timedelta(7), fetched=day - timedelta(1)))
    ['old-unseen', 'young']
    """
    return {
        i: m
        for i, m in moving.items()
        if m.trigger_time is None
        or m.trigger_time >= settled
        or m.extracted_at is None
        or m.extracted_at <= fetched
    }


def _not_settled(
    items: Iterable[Item], destinations: Sequence[Destination], queued: set[str]
) -> Iterator[Item]:
    """Items some destination lacks or holds in a status that can still change."""
    chunk: list[tuple[str, Item]] = []
    for item in items:
        key = item if isinstance(item, str) else str(item.get("instanceId") or "")
        if key not in queued:
            chunk.append((key, item))
        if len(chunk) >= 500:
            yield from _unsettled(chunk, destinations, queued)
            chunk = []
    yield from _unsettled(chunk, destinations, queued)


def _unsettled(
    chunk: list[tuple[str, Item]], destinations: Sequence[Destination], queued: set[str]
) -> Iterator[Item]:
    if not chunk:
        return
    keys = [key for key, _ in chunk if key]
    settled = set.intersection(*(d.terminal_ids(keys) for d in destinations))
    for key, item in chunk:
        if not key:
            yield item
        elif key not in settled and key not in queued:
            queued.add(key)
            yield item
