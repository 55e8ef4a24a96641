"""The request budget on a fake clock: no one-second window over budget, AIMD on throttle."""

from __future__ import annotations

import bisect

import pytest

from extractor.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def max_in_any_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    return max(bisect.bisect_left(times, t + window) - i for i, t in enumerate(times))


@pytest.mark.parametrize("budget", [1.0, 7.0, 200.0, 333.3])
def test_no_one_second_window_exceeds_the_budget(budget: float) -> None:
    clock = Clock()
    limiter = RateLimiter(budget, clock=clock, sleep=clock.sleep)
    sends = []
    for _ in range(int(budget * 5)):
        limiter.acquire()
        sends.append(clock.now)
    assert max_in_any_window(sends) <= int(budget)
    achieved = (len(sends) - 1) / (sends[-1] - sends[0])
    assert achieved == pytest.approx(budget, rel=0.01)


def test_idle_time_does_not_allow_a_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        limiter.acquire()
    clock.now += 60
    sends = []
    for _ in range(30):
        limiter.acquire()
        sends.append(clock.now)
    assert max_in_any_window(sends) <= 10


def test_throttle_halves_the_rate_then_it_recovers() -> None:
    clock = Clock()
    limiter = RateLimiter(100, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.on_throttle()
    assert limiter.rate == 50
    limiter.on_throttle()  # the same burst: no second halving
    assert limiter.rate == 50
    clock.now += 2.0
    limiter.acquire()
    assert limiter.rate == pytest.approx(70)
    clock.now += 30
    limiter.acquire()
    assert limiter.rate == 100  # never above the budget
    assert limiter.throttle_events == 2


def test_unlimited_until_throttled() -> None:
    clock = Clock()
    limiter = RateLimiter(None, clock=clock, sleep=clock.sleep)
    for _ in range(100):
        assert limiter.acquire() == 0.0
    limiter.on_throttle()
    assert limiter.rate == 50  # half of the 100 sent in the last second
    clock.now += 200
    limiter.acquire()
    assert limiter.rate is None
