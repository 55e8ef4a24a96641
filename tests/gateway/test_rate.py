"""The request budget on a fake clock: no one-second window over budget, AIMD on throttle."""

from __future__ import annotations

import bisect

import pytest

from extractor.gateway._rate import RateLimiter


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


def answers(
    limiter: RateLimiter, clock: Clock, *, per_s: float, seconds: float, throttled_share: float
) -> None:
    """Feed the limiter ``per_s`` answers a second, every ``1/share``-th throttled."""
    every = round(1 / throttled_share) if throttled_share else 0
    for n in range(int(per_s * seconds)):
        clock.now += 1 / per_s
        limiter.record(throttled=bool(every) and n % every == 0)


def test_a_throttling_period_backs_off_to_what_got_through() -> None:
    clock = Clock()
    limiter = RateLimiter(None, clock=clock, sleep=clock.sleep)
    answers(limiter, clock, per_s=400, seconds=1.2, throttled_share=1 / 3)
    assert limiter.rate == pytest.approx(400 * 2 / 3 * 0.85, rel=0.05)
    assert limiter.throttle_events == 1


def test_a_flood_of_throttling_backs_off_at_once() -> None:
    clock = Clock()
    limiter = RateLimiter(None, clock=clock, sleep=clock.sleep)
    for n in range(20):  # a burst: a gateway's bucket lets 5 through, refuses the rest
        clock.now += 0.002
        limiter.record(throttled=n >= 5)
    assert clock.now < 0.1
    assert limiter.rate == pytest.approx(5 * 0.85)


def test_scattered_throttling_does_not_slow_down() -> None:
    clock = Clock()
    limiter = RateLimiter(None, clock=clock, sleep=clock.sleep)
    answers(limiter, clock, per_s=300, seconds=10, throttled_share=0.05)
    assert limiter.rate is None and limiter.throttle_events == 0
    budget = RateLimiter(100, clock=clock, sleep=clock.sleep)
    answers(budget, clock, per_s=95, seconds=10, throttled_share=0.05)
    assert budget.rate == 100 and budget.throttle_events == 0


def test_the_rate_climbs_back_while_it_binds_and_never_past_the_ceiling() -> None:
    clock = Clock()
    limiter = RateLimiter(120, clock=clock, sleep=clock.sleep)
    answers(limiter, clock, per_s=120, seconds=1.04, throttled_share=1 / 3)
    assert limiter.rate == pytest.approx(80 * 0.85, rel=0.05)
    slow = limiter.rate
    answers(limiter, clock, per_s=20, seconds=3, throttled_share=0)
    assert limiter.rate == slow, "not binding: 20/s against a rate of 68/s"
    answers(limiter, clock, per_s=slow, seconds=3, throttled_share=0)
    assert slow < limiter.rate < 120
    answers(limiter, clock, per_s=120, seconds=30, throttled_share=0)
    assert limiter.rate == 120


def test_against_a_gateway_limit_the_rate_settles_near_it() -> None:
    """A simulated token bucket of R calls/s throttles what is sent above R."""
    clock = Clock()
    limiter = RateLimiter(None, clock=clock, sleep=clock.sleep)
    limit, sent, throttled, demand = 50.0, 0, 0, 400.0
    tokens, last = limit, 0.0
    log = []
    while clock.now < 60:
        rate = limiter.rate or demand
        clock.now += 1 / min(rate, demand)
        tokens = min(limit, tokens + (clock.now - last) * limit)
        last = clock.now
        hit = tokens < 1
        tokens -= 0 if hit else 1
        limiter.record(throttled=hit)
        if clock.now > 20:
            sent += 1
            throttled += hit
            log.append(clock.now)
    achieved = (sent - throttled) / 40
    assert achieved >= 0.8 * limit
    assert throttled / sent <= 0.10
