"""Concurrent fetching of many flow instances: a bounded stream of results and failures.

Worker threads pull IDs from the (possibly huge, lazily read) ID iterator and push
results into a bounded queue, so memory holds at most a few results per worker however
many IDs there are. A fatal error (bad credentials, wrong gateway) stops every worker.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

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


T = TypeVar("T")

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
    count = workers * THREADS_PER_WORKER
    pool: Workers[Fetched | Failed] = Workers(count, capacity=workers * 4, name="fetch")
    fatal: list[Exception] = []

    def next_id() -> Item | None:
        with source_lock:
            return next(source, None)

    def work() -> None:
        while not pool.stop.is_set():
            try:
                item = next_id()
            except ApiError as exc:  # discovering IDs failed: nothing more to fetch
                fatal.append(FatalApiError(f"listing flow instances failed: {exc.message}"))
                pool.stop.set()
                return
            except Exception as exc:  # reading the IDs failed; re-raised below
                fatal.append(exc)
                pool.stop.set()
                return
            if item is None:
                return
            if not isinstance(item, str):
                pool.emit(Fetched(_id_of(item), dict(item), now()))
                continue
            try:
                record = client.get_flow_instance(item)
            except FatalApiError as exc:
                fatal.append(exc)
                pool.stop.set()
                return
            except ApiError as exc:
                pool.emit(Failed(item, exc, now()))
            except Exception as exc:  # a bug must cost one ID, never lose it silently
                error = ApiError(f"unexpected {type(exc).__name__}: {exc}")
                error.instance_id = item
                pool.emit(Failed(item, error, now()))
            else:
                pool.emit(Fetched(item, record, now()))

    yield from pool.results(work)
    if fatal:
        raise fatal[0]


class _Done:
    pass


_DONE = _Done()


class Workers(Generic[T]):
    """Threads that hand what they make to one consumer through a bounded queue.

    Memory holds at most ``capacity`` results however much the threads make. Once the
    consumer stops (done, failed or closed early), :attr:`stop` is set, what the threads
    still hand over is dropped, and every thread is joined before the consumer goes on.
    """

    def __init__(self, count: int, *, capacity: int, name: str) -> None:
        self.count, self.name = count, name
        self.stop = threading.Event()
        self._results: queue.Queue[T | _Done] = queue.Queue(maxsize=capacity)

    def emit(self, item: T) -> None:
        """Hand ``item`` to the consumer, waiting for room; dropped once it has stopped."""
        self._put(item)

    def results(self, work: Callable[[], None]) -> Generator[T, None, None]:
        """Run ``work`` on every thread; yield what they emit until all have returned."""

        def run() -> None:
            try:
                work()
            finally:
                self._put(_DONE)

        threads = [
            threading.Thread(target=run, name=f"{self.name}-{i}", daemon=True)
            for i in range(self.count)
        ]
        for thread in threads:
            thread.start()
        running = self.count
        try:
            while running:
                item = self._results.get()
                if isinstance(item, _Done):
                    running -= 1
                else:
                    yield item
        finally:
            self.stop.set()
            while running:  # unblock the threads if the consumer stopped early
                try:
                    if isinstance(self._results.get(timeout=0.1), _Done):
                        running -= 1
                except queue.Empty:
                    pass
            for thread in threads:
                thread.join()

    def _put(self, item: T | _Done) -> None:
        while True:
            try:
                self._results.put(item, timeout=0.1)
                return
            except queue.Full:
                if self.stop.is_set() and not isinstance(item, _Done):
                    return


def _id_of(record: Mapping[str, Any]) -> str:
    """The ID a listed record gives itself; empty when it has none (the flattener then
    rejects it with the reason)."""
    value = record.get("instanceId")
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
