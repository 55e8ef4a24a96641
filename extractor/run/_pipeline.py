"""Wire settings -> client -> fetch -> flatten -> frames -> destinations, with run state."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol

from extractor.config import FetchConfig, GatewayConfig, parse_timezone
from extractor.errors import ApiError, FatalApiError, RecordError
from extractor.gateway._client import EnOSClient
from extractor.load._state import Moving, StateStore
from extractor.run._fetch import Failed, Fetched, Item, fetch_instances
from extractor.run._report import RunReport, failure_row, run_key
from extractor.tables._flattener import flatten_records
from extractor.tables._frames import FlowFrames, build_frames

log = logging.getLogger(__name__)


class Destination(Protocol):
    """Where batches go. Writes must be idempotent upserts keyed by instance."""

    label: str

    @property
    def state(self) -> StateStore | None:
        """The run state kept at the destination; None where it keeps none."""
        ...

    def write(self, frames: FlowFrames) -> object: ...

    def finish(self) -> None:
        """Make every batch written so far visible (a no-op where each write already is)."""
        ...

    def failed_ids(self) -> list[str]: ...

    def terminal_ids(self, ids: list[str]) -> set[str]: ...

    def moving(self) -> dict[str, Moving]: ...


ProgressCallback = Callable[[RunReport], None]


def flatten(
    records: Iterable[Any],
    *,
    source_tz: tzinfo | str = UTC,
    extracted_at: datetime | None = None,
) -> FlowFrames:
    """Flatten Get or List Flow Instances records (``data`` objects or envelopes) into
    tables.

    A record that cannot be flattened becomes a ``failed_instances`` row with the
    reason; the others flatten. Naive timestamps are read in ``source_tz``: a
    ``tzinfo``, or a zone name as Get Time Zone or IANA write it (``"GMT+8"``,
    ``"Asia/Shanghai"``).

    Raises:
        TypeError: ``source_tz`` is neither.
        ConfigError: ``source_tz`` names no known zone.
    """
    if isinstance(source_tz, str):
        source_tz = parse_timezone(source_tz)
    elif not isinstance(source_tz, tzinfo):
        raise TypeError(
            f"source_tz must be a tzinfo or a zone name, got {type(source_tz).__name__}"
        )
    when = extracted_at or datetime.now(UTC)
    rows = flatten_records(records, source_tz=source_tz, extracted_at=when)
    failures = [
        failure_row(
            r.instance_id, stage="flatten", error=RecordError(r.reason), failed_at=when, raw=r.raw
        )
        for r in rows.rejects
    ]
    return build_frames(rows, failures)


class _Collector:
    """An in-memory destination for :func:`extract`."""

    label = "memory"
    state: StateStore | None = None

    def __init__(self) -> None:
        self.parts: list[FlowFrames] = []

    def write(self, frames: FlowFrames) -> None:
        self.parts.append(frames)

    def finish(self) -> None:
        pass

    def failed_ids(self) -> list[str]:
        return []

    def terminal_ids(self, ids: list[str]) -> set[str]:
        return set()

    def moving(self) -> dict[str, Moving]:
        return {}


def extract(
    ids: Iterable[str],
    *,
    gateway: GatewayConfig | None = None,
    client: EnOSClient | None = None,
    fetch: FetchConfig | None = None,
    source_tz: tzinfo | None = None,
) -> FlowFrames:
    """Fetch and flatten flow instances into memory (for notebooks).

    Give either ``gateway`` settings or a ready ``client``. IDs that fail are in the
    result's ``failures`` table with the reason.
    """
    if client is None:
        if gateway is None:
            raise ValueError("give gateway settings or a client")
        with EnOSClient(gateway, fetch=fetch) as own:
            return extract(ids, client=own, fetch=fetch, source_tz=source_tz)
    collector = _Collector()
    report = run_extract(
        ids, client=client, destinations=[collector], fetch=fetch, source_tz=source_tz
    )
    if report.fatal_error is not None:
        raise FatalApiError(report.fatal_error)
    return FlowFrames.concat(collector.parts)


def run_extract(
    ids: Iterable[Item],
    *,
    client: EnOSClient,
    destinations: Sequence[Destination],
    fetch: FetchConfig | None = None,
    source_tz: tzinfo | None = None,
    description: str = "",
    on_progress: ProgressCallback | None = None,
) -> RunReport:
    """Fetch, flatten and load ``ids`` in batches; resume an unfinished identical run.

    An item is an instance ID (fetched with Get Flow Instance) or a whole record that a
    List Flow Instances page already carried (loaded as it is, with no call).

    Never raises for a per-ID failure: those are recorded in ``failed_instances`` and
    counted in the report. A fatal error (bad credentials, wrong gateway) ends the run
    after loading what was already fetched, with ``report.fatal_error`` set.
    """
    fetch = fetch or client.fetch_config
    report = RunReport(run_key=run_key(description) if description else "")
    stores = [d.state for d in destinations if d.state is not None]
    if not description or len(stores) != len(destinations):
        stores = []  # resume needs a run key and state in every destination
    try:
        # The zone of the gateway's naive timestamps: given, configured, else asked.
        tz = source_tz or client.config.timezone or client.get_timezone()
    except ApiError as exc:
        report.fatal_error = f"cannot start: {exc.message}"
        _progress(report, client, on_progress)
        return report
    if stores:
        report.resumed = any([s.begin_run(report.run_key, description) for s in stores])
    todo = _pending(ids, stores, report, fetch.batch_size)
    batch: list[Fetched | Failed] = []
    try:
        for item in fetch_instances(client, todo, workers=fetch.workers):
            batch.append(item)
            if isinstance(item, Failed):
                report.failed += 1
            else:
                report.fetched += 1
            _progress(report, client, on_progress)
            if len(batch) >= fetch.batch_size:
                _flush(batch, tz, destinations, stores, report)
                batch = []
                _progress(report, client, on_progress)
    except FatalApiError as exc:
        report.fatal_error = exc.message
    _flush(batch, tz, destinations, stores, report)
    # Before the run is marked finished: if this fails, the same command resumes with
    # nothing left to fetch and finishes again.
    for dest in destinations:
        dest.finish()
    if report.fatal_error is None:
        for store in stores:
            store.finish_run(report.run_key)
    _progress(report, client, on_progress)
    return report


def _pending(
    ids: Iterable[Item], stores: Sequence[StateStore], report: RunReport, chunk: int
) -> Iterator[Item]:
    """Stream the items still to do: each ID once, however often the input repeats it,
    and none that every destination has checkpointed."""
    buffer: list[tuple[str, Item]] = []
    seen: set[str] = set()

    def drain() -> Iterator[Item]:
        keys = [key for key, _ in buffer]
        done: set[str] = set()
        if stores:
            done = set.intersection(*(s.done(report.run_key, keys) for s in stores))
        report.skipped += sum(1 for key in keys if key in done)
        yield from (item for key, item in buffer if key not in done)

    for raw in ids:
        item: Item
        if isinstance(raw, str):
            item = key = raw.strip()
            if not key:
                continue
        else:
            item, key = raw, str(raw.get("instanceId") or "")
        report.ids_seen += 1
        if key in seen:
            report.duplicates += 1
            continue
        if key:
            seen.add(key)
        buffer.append((key, item))
        if len(buffer) >= chunk:
            yield from drain()
            buffer = []
    if buffer:
        yield from drain()


def _flush(
    batch: list[Fetched | Failed],
    tz: tzinfo,
    destinations: Sequence[Destination],
    stores: Sequence[StateStore],
    report: RunReport,
) -> None:
    if not batch:
        return
    fetched = [item for item in batch if not isinstance(item, Failed)]
    rows = flatten_records(
        [item.record for item in fetched],
        source_tz=tz,
        extracted_at=[item.fetched_at for item in fetched],
        expected_ids=[item.instance_id or None for item in fetched],
    )
    rejected = {r.position: r for r in rows.rejects}
    failures: list[dict[str, Any]] = []
    outcomes: list[tuple[str, str]] = []
    position = 0
    for item in batch:
        if isinstance(item, Failed):
            report.failures_by_reason[type(item.error).__name__] += 1
            failures.append(
                failure_row(
                    item.instance_id, stage="fetch", error=item.error, failed_at=item.failed_at
                )
            )
            outcomes.append((item.instance_id, "failed"))
            continue
        reject = rejected.get(position)
        position += 1
        if reject is None:
            outcomes.append((item.instance_id, "loaded"))
            continue
        report.rejected += 1
        report.failures_by_reason["RecordError"] += 1
        failures.append(
            failure_row(
                item.instance_id,
                stage="flatten",
                error=RecordError(reject.reason),
                failed_at=item.fetched_at,
                raw=item.record,
            )
        )
        outcomes.append((item.instance_id, "failed"))
    for f in failures:
        if len(report.failed_ids_sample) < 20:
            report.failed_ids_sample.append(
                f"{f['instance_id']}: {f['error_class']}: {f['message']}"
            )
    frames = build_frames(rows, failures)
    for dest in destinations:
        dest.write(frames)
    for store in stores:
        store.record(report.run_key, outcomes)
    report.loaded += rows.instance_count
    report.unknown_fields.update(frames.unknown_fields)
    for name, count in frames.row_counts.items():
        report.rows[name] += count


def _progress(report: RunReport, client: EnOSClient, on_progress: ProgressCallback | None) -> None:
    report.seconds = time.monotonic() - report.started_at
    report.retries = client.stats.retries
    report.throttled = client.stats.throttled
    report.throttle_events = client.limiter.throttle_events
    report.tokens_fetched = client.stats.tokens_fetched
    report.token_expired = client.stats.token_expired
    report.outages = client.health.outages
    report.outage_seconds = client.health.outage_seconds
    report.calls = client.stats.calls
    if on_progress is not None:
        on_progress(report)
