"""Concurrent fetching of many flow instances: a bounded stream of results and failures.

Worker threads pull IDs from the (possibly huge, lazily read) ID iterator and push
results into a bounded queue, so memory holds at most a few results per worker however
many IDs there are. A fatal error (bad credentials, wrong gateway) stops every worker.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from extractor.errors import ApiError, FatalApiError


class InstanceSource(Protocol):
    """What the fetcher needs of a client."""

    def get_flow_instance(self, instance_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Fetched:
    """One instance as the API returned it."""

    instance_id: str
    record: dict[str, Any]
    fetched_at: datetime


@dataclass(frozen=True, slots=True)
class Failed:
    """One ID that still failed after its retries."""

    instance_id: str
    error: ApiError
    failed_at: datetime


THREADS_PER_WORKER = 4
"""Threads per request slot: the client lets at most ``workers`` requests be in flight,
and a thread waiting out a backoff or a Retry-After frees its slot, so spare threads
keep the slots busy with other IDs meanwhile (measured: scattered 429s otherwise idled
half the workers)."""


class _Done:
    pass


_DONE = _Done()


Item = str | Mapping[str, Any]
"""What the fetcher takes: an ID to get, or a whole record a list page already carried."""


def fetch_instances(
    client: InstanceSource,
    ids: Iterable[Item],
    *,
    workers: int = 16,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Iterator[Fetched | Failed]:
    """Yield a :class:`Fetched` or :class:`Failed` for every item, in completion order.

    An ID costs a Get Flow Instance call; a record (from a List Flow Instances page)
    passes through as it is.

    Raises:
        FatalApiError: the gateway refused us in a way that every call would repeat, or
            listing IDs failed; raised after the workers stop, once the results already
            fetched are yielded. An error raised by ``ids`` itself is re-raised as is.
    """
    source = iter(ids)
    source_lock = threading.Lock()
    results: queue.Queue[Fetched | Failed | _Done] = queue.Queue(maxsize=workers * 4)
    stop = threading.Event()
    fatal: list[Exception] = []

    def next_id() -> Item | None:
        with source_lock:
            return next(source, None)

    def work() -> None:
        try:
            while not stop.is_set():
                try:
                    item = next_id()
                except ApiError as exc:  # discovering IDs failed: nothing more to fetch
                    fatal.append(FatalApiError(f"listing flow instances failed: {exc.message}"))
                    stop.set()
                    return
                except Exception as exc:  # reading the IDs failed; re-raised below
                    fatal.append(exc)
                    stop.set()
                    return
                if item is None:
                    return
                if not isinstance(item, str):
                    _put(Fetched(_id_of(item), dict(item), now()))
                    continue
                instance_id = item
                try:
                    record = client.get_flow_instance(instance_id)
                except FatalApiError as exc:
                    fatal.append(exc)
                    stop.set()
                    return
                except ApiError as exc:
                    _put(Failed(instance_id, exc, now()))
                except Exception as exc:  # a bug must cost one ID, never lose it silently
                    error = ApiError(f"unexpected {type(exc).__name__}: {exc}")
                    error.instance_id = instance_id
                    _put(Failed(instance_id, error, now()))
                else:
                    _put(Fetched(instance_id, record, now()))
        finally:
            _put(_DONE)

    def _put(item: Fetched | Failed | _Done) -> None:
        while True:
            try:
                results.put(item, timeout=0.1)
                return
            except queue.Full:
                if stop.is_set() and not isinstance(item, _Done):
                    return

    count = workers * THREADS_PER_WORKER
    threads = [threading.Thread(target=work, name=f"fetch-{i}", daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    running = count
    try:
        while running:
            item = results.get()
            if isinstance(item, _Done):
                running -= 1
            else:
                yield item
    finally:
        stop.set()
        while running:  # unblock workers if the consumer stopped early
            try:
                if isinstance(results.get(timeout=0.1), _Done):
                    running -= 1
            except queue.Empty:
                pass
        for t in threads:
            t.join()
    if fatal:
        raise fatal[0]


def _id_of(record: Mapping[str, Any]) -> str:
    """The ID a listed record gives itself; empty when it has none (the flattener then
    rejects it with the reason)."""
    value = record.get("instanceId")
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
