"""A client-side request budget that also backs off when the gateway throttles."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

_DECREASE = 0.5  # multiplicative decrease on a throttle answer
_RECOVERY_S = 10.0  # time to climb back from the floor to the budget without throttles
_MIN_RPS = 1.0
_COOLDOWN_S = 1.0  # one throttle burst halves the rate once, not once per answer


class RateLimiter:
    """Spaces requests so that no one-second window holds more than the budget.

    Requests are given send slots at least ``1 / rate`` seconds apart (a leaky bucket),
    which bounds every one-second window, not only calendar seconds. ``rate`` starts at
    the budget (or unlimited), halves on a throttle answer and climbs back linearly.
    Thread-safe; the clock and sleep are injectable for tests.
    """

    def __init__(
        self,
        max_rps: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._budget = max_rps
        self._rate = max_rps
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._last_adjust = clock()
        self._last_throttle = -_COOLDOWN_S
        self._recent: list[float] = []
        self._sent: deque[float] = deque()
        self.throttle_events = 0

    @property
    def rate(self) -> float | None:
        """The current rate limit in requests per second, None when unlimited."""
        return self._rate

    def acquire(self) -> float:
        """Wait for this request's send slot; return the seconds waited."""
        with self._lock:
            now = self._clock()
            self._recover(now)
            if self._rate is None:
                self._track(now)
                return 0.0
            interval = 1.0 / self._per_second()
            slot = max(now, self._next_slot)
            self._next_slot = slot + interval
        waited = max(slot - now, 0.0)
        if waited > 0:
            self._sleep(waited)
        # Threads wake late and out of order, so spacing alone cannot bound a window of
        # actual send times: a log of the last ``limit`` sends does.
        while True:
            with self._lock:
                if self._rate is None:
                    return waited
                limit = max(int(self._per_second()), 1)
                while len(self._sent) > limit:
                    self._sent.popleft()
                now = self._clock()
                if len(self._sent) < limit or now - self._sent[0] >= 1.0:
                    self._sent.append(now)
                    return waited
                # At least a microsecond, so float rounding cannot stall the loop.
                pause = max(self._sent[0] + 1.0 - now, 1e-6)
            self._sleep(pause)
            waited += pause

    def _per_second(self) -> float:
        """Whole sends per second: 333.3/s allows 333 in any second."""
        assert self._rate is not None
        return self._rate if self._rate < 1 else float(math.floor(self._rate))

    def on_throttle(self) -> None:
        """Slow down: the gateway said we are sending too fast."""
        with self._lock:
            now = self._clock()
            self.throttle_events += 1
            if now - self._last_throttle < _COOLDOWN_S:
                return
            self._last_throttle = now
            current = self._rate if self._rate is not None else self._observed_rate(now)
            self._rate = max(_MIN_RPS, current * _DECREASE)
            self._last_adjust = now

    def _recover(self, now: float) -> None:
        if self._rate is None or (self._budget is not None and self._rate >= self._budget):
            return
        ceiling = self._budget if self._budget is not None else self._rate * 4
        step = ceiling * (now - self._last_adjust) / _RECOVERY_S
        self._last_adjust = now
        self._rate = self._rate + step
        if self._budget is not None:
            self._rate = min(self._rate, self._budget)
        elif now - self._last_throttle > _RECOVERY_S * 3:
            self._rate = None  # long quiet: back to unlimited

    def _track(self, now: float) -> None:
        self._recent.append(now)
        if len(self._recent) > 4096:
            del self._recent[:2048]

    def _observed_rate(self, now: float) -> float:
        recent = [t for t in self._recent if now - t <= 1.0]
        return max(float(len(recent)), _MIN_RPS * 2)
