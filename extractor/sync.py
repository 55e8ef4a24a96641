"""Incremental loading: discover by trigger time, re-fetch what can still change."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from extractor.client import EnOSClient
from extractor.config import FetchConfig
from extractor.errors import ConfigError
from extractor.pipeline import Destination, ProgressCallback, RunReport, run_extract

SYNC_WATERMARK = "sync"
ALL_TYPES = (0, 1, 2)


def run_sync(
    *,
    client: EnOSClient,
    destinations: Sequence[Destination],
    until: datetime,
    since: datetime | None = None,
    lookback: timedelta = timedelta(hours=1),
    types: Sequence[int] = ALL_TYPES,
    fetch: FetchConfig | None = None,
    on_progress: ProgressCallback | None = None,
) -> RunReport:
    """Bring the destinations up to date with the gateway; safe to run every few minutes.

    Discovers instances triggered in ``[since, until)`` (``since`` defaults to the stored
    watermark minus ``lookback``, so late-appearing instances are caught), fetches
    those not yet loaded in a terminal status, every loaded instance still moving
    (RUNNING, WAIT, ...) and every ID in ``failed_instances``, then stores ``until`` as
    the new watermark in each destination. Overlapping windows only re-load rows.

    Raises:
        ConfigError: no ``since`` and no stored watermark (the first sync needs one).
    """
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
    ids = _sync_ids(client, destinations, since, until, types)
    report = run_extract(
        ids, client=client, destinations=destinations, fetch=fetch, on_progress=on_progress
    )
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


def _sync_ids(
    client: EnOSClient,
    destinations: Sequence[Destination],
    since: datetime,
    until: datetime,
    types: Sequence[int],
) -> Iterator[str]:
    queued: set[str] = set()
    for kind in types:
        found = client.list_flow_instances(from_time=since, to_time=until, type=kind)
        chunk: list[str] = []
        for item in found:
            instance_id = str(item.get("instanceId") or "")
            if instance_id and instance_id not in queued:
                chunk.append(instance_id)
            if len(chunk) >= 500:
                yield from _not_settled(chunk, destinations, queued)
                chunk = []
        yield from _not_settled(chunk, destinations, queued)
    for dest in destinations:
        for instance_id in [*dest.moving_ids(), *dest.failed_ids()]:
            if instance_id not in queued:
                queued.add(instance_id)
                yield instance_id


def _not_settled(
    chunk: list[str], destinations: Sequence[Destination], queued: set[str]
) -> Iterator[str]:
    """IDs some destination lacks or holds in a status that can still change."""
    if not chunk:
        return
    settled = set.intersection(*(d.terminal_ids(chunk) for d in destinations))
    for instance_id in chunk:
        if instance_id not in settled and instance_id not in queued:
            queued.add(instance_id)
            yield instance_id
