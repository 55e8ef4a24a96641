"""The concurrent fetcher with a fake client: isolation, fatal stops, bounded streaming."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from extractor.errors import AuthError, NotFoundError, TransientApiError
from extractor.run._fetch import Failed, Fetched, fetch_instances


class FakeClient:
    def __init__(self, *, fail: dict[str, Exception] | None = None) -> None:
        self.fail = fail or {}
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def get_flow_instance(self, instance_id: str) -> dict[str, Any]:
        with self._lock:
            self.calls.append(instance_id)
        if instance_id in self.fail:
            raise self.fail[instance_id]
        return {"instanceId": instance_id}


def test_every_id_yields_exactly_one_result() -> None:
    ids = [f"id-{i}" for i in range(500)]
    client = FakeClient(fail={"id-7": NotFoundError("gone"), "id-9": TransientApiError("5xx")})
    results = list(fetch_instances(client, ids, workers=8))
    assert sorted(r.instance_id for r in results) == sorted(ids)
    failed = {r.instance_id: type(r.error).__name__ for r in results if isinstance(r, Failed)}
    assert failed == {"id-7": "NotFoundError", "id-9": "TransientApiError"}
    assert all(isinstance(r, Fetched) for r in results if r.instance_id not in failed)


def test_a_bug_in_the_client_costs_one_id_not_silence() -> None:
    client = FakeClient(fail={"b": KeyError("oops")})
    results = {r.instance_id: r for r in fetch_instances(client, ["a", "b", "c"], workers=2)}
    assert set(results) == {"a", "b", "c"}
    failed = results["b"]
    assert isinstance(failed, Failed)
    assert "unexpected KeyError" in str(failed.error)


def test_fatal_error_stops_all_workers_and_is_raised() -> None:
    client = FakeClient(fail={"id-3": AuthError("bad key")})
    ids = [f"id-{i}" for i in range(10_000)]
    seen: list[str] = []
    with pytest.raises(AuthError):
        for result in fetch_instances(client, ids, workers=4):
            seen.append(result.instance_id)
    assert len(client.calls) < 200  # stopped promptly, not after every ID


def test_the_id_stream_is_read_lazily() -> None:
    pulled = 0

    def ids() -> Iterator[str]:
        nonlocal pulled
        for i in range(1_000_000):
            pulled += 1
            yield f"id-{i}"

    stream = fetch_instances(FakeClient(), ids(), workers=4)
    first = [next(stream) for _ in range(10)]
    stream.close()
    assert len(first) == 10
    assert pulled < 1000  # bounded by the queue, not the input


def test_a_failing_id_source_is_raised_after_the_work_done() -> None:
    def ids() -> Iterator[str]:
        yield "a"
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(fetch_instances(FakeClient(), ids(), workers=1))
