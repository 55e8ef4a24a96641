"""Discovery: sub-windows, concurrent paging, bisection and de-duplication, on a fake
List Flow Instances that pages by offset as the gateway does."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from extractor.config import FetchConfig
from extractor.errors import ConfigError, TransientApiError
from extractor.run._discovery import Window, around, as_items, discover, windows

DAY = timedelta(days=1)
START = datetime(2026, 1, 1, tzinfo=UTC)
START_MS = 1767225600000


class FakeLister:
    """Instances at given epoch-ms trigger times, matched with both window ends
    included and paged by offset in trigger-time order."""

    def __init__(self, times: dict[str, int], *, types: dict[str, int] | None = None) -> None:
        self.times = times
        self.types = types or {}
        self.calls: list[tuple[int, int, int, int]] = []
        self.lock = threading.Lock()
        self.active = 0
        self.most_active = 0
        self.barrier: threading.Barrier | None = None

    def list_page(
        self, *, from_ms: int, to_ms: int, type: int, page_no: int, page_size: int, **_: str
    ) -> list[dict[str, Any]]:
        assert page_no >= 1
        with self.lock:
            self.calls.append((type, from_ms, to_ms, page_no))
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            if self.barrier is not None:
                self.barrier.wait(timeout=5)
            matched = sorted(
                (t, i)
                for i, t in self.times.items()
                if from_ms <= t <= to_ms and self.types.get(i, 1) == type
            )
            page = matched[(page_no - 1) * page_size : page_no * page_size]
            return [{"instanceId": i, "triggerTime": t} for t, i in page]
        finally:
            with self.lock:
                self.active -= 1


def ids_of(records: list[dict[str, Any]]) -> list[str]:
    return sorted(r["instanceId"] for r in records)


def test_windows_cover_the_range_without_overlap() -> None:
    found = windows(START, START + timedelta(days=2, hours=5), types=[1], split=DAY)
    assert [(w.from_ms - START_MS, w.to_ms - START_MS) for w in found] == [
        (0, 86_399_999),
        (86_400_000, 172_799_999),
        (172_800_000, 190_799_999),
    ]
    with pytest.raises(ConfigError, match="empty"):
        windows(START, START, types=[1], split=DAY)
    with pytest.raises(ConfigError, match="aware"):
        windows(START.replace(tzinfo=None), START.replace(tzinfo=None) + DAY, types=[1], split=DAY)


def test_a_window_end_is_exclusive_even_though_the_api_includes_it() -> None:
    lister = FakeLister({"at-start": START_MS, "at-end": START_MS + 86_400_000})
    found = list(discover(lister, windows(START, START + DAY, types=[1], split=DAY)))
    assert ids_of(found) == ["at-start"]


def test_every_type_is_asked_for() -> None:
    lister = FakeLister({"m": START_MS, "p": START_MS, "t": START_MS}, types={"m": 0, "t": 2})
    found = list(discover(lister, windows(START, START + DAY, types=[0, 1, 2], split=DAY)))
    assert ids_of(found) == ["m", "p", "t"]
    assert sorted(c[0] for c in lister.calls) == [0, 1, 2]


def test_pages_run_until_a_short_page_from_page_one() -> None:
    times = {f"i{n:03}": START_MS + n * 1000 for n in range(25)}
    lister = FakeLister(times)
    fetch = FetchConfig(page_size=10, workers=2)
    found = list(discover(lister, windows(START, START + DAY, types=[1], split=DAY), fetch=fetch))
    assert ids_of(found) == sorted(times)
    assert [c[3] for c in lister.calls] == [1, 2, 3]


def test_a_full_last_page_costs_one_empty_page() -> None:
    times = {f"i{n:03}": START_MS + n for n in range(20)}
    lister = FakeLister(times)
    fetch = FetchConfig(page_size=10)
    found = list(discover(lister, windows(START, START + DAY, types=[1], split=DAY), fetch=fetch))
    assert len(found) == 20
    assert [c[3] for c in lister.calls] == [1, 2, 3]


def test_deep_windows_are_bisected_and_nothing_repeats() -> None:
    times = {f"i{n:04}": START_MS + n * 60_000 for n in range(1000)}
    lister = FakeLister(times)
    fetch = FetchConfig(page_size=50, max_depth=200, workers=4)
    found = list(discover(lister, windows(START, START + DAY, types=[1], split=DAY), fetch=fetch))
    assert ids_of(found) == sorted(times)
    depth: dict[tuple[int, int], int] = {}
    for _, low, high, page in lister.calls:
        depth[low, high] = max(depth.get((low, high), 0), page)
    assert max(depth.values()) * 50 <= 200, "no query pages deeper than max_depth"
    assert len(depth) > 1


def test_records_met_twice_are_yielded_once() -> None:
    """Offset paging moves records between pages; windows sharing an end both hold it."""
    lister = FakeLister({"edge": START_MS + 1000, "other": START_MS + 5000})
    twice = [Window(1, START_MS, START_MS + 1000), Window(1, START_MS + 1000, START_MS + 9000)]
    assert ids_of(list(discover(lister, twice))) == ["edge", "other"]


def test_sub_windows_are_paged_concurrently() -> None:
    times = {f"d{n}": START_MS + n * 86_400_000 for n in range(4)}
    lister = FakeLister(times)
    lister.barrier = threading.Barrier(4)
    found = list(
        discover(lister, windows(START, START + 4 * DAY, types=[1], split=DAY), fetch=FetchConfig())
    )
    assert len(found) == 4
    assert lister.most_active == 4


def test_a_failed_page_stops_discovery() -> None:
    class Failing(FakeLister):
        def list_page(self, **kwargs: Any) -> list[dict[str, Any]]:
            raise TransientApiError("gateway error HTTP 503")

    with pytest.raises(TransientApiError, match="503"):
        list(discover(Failing({}), windows(START, START + 3 * DAY, types=[1], split=DAY)))


def test_stopping_early_stops_the_workers() -> None:
    times = {f"i{n:05}": START_MS + n for n in range(5000)}
    found = discover(
        FakeLister(times),
        windows(START, START + DAY, types=[1], split=timedelta(seconds=1)),
        fetch=FetchConfig(page_size=10),
    )
    first = [next(found) for _ in range(3)]
    found.close()
    assert len(first) == 3
    assert not [t for t in threading.enumerate() if t.name.startswith("discover-")]


def test_around_groups_close_trigger_times() -> None:
    t = START
    found = around([t, t + timedelta(minutes=30), t + timedelta(hours=3)], types=[0, 1])
    assert [(w.type, w.from_ms - START_MS, w.to_ms - START_MS) for w in found] == [
        (0, 0, 1_800_999),
        (1, 0, 1_800_999),
        (0, 10_800_000, 10_800_999),
        (1, 10_800_000, 10_800_999),
    ]


def test_as_items_takes_ids_or_records() -> None:
    records = [{"instanceId": "a-1"}, {"instanceId": 7}, {"flowId": 3}]
    assert list(as_items(records, "full")) == ["a-1", "7", {"flowId": 3}]
    assert list(as_items(records, "list")) == records
