"""The client's request rate: a hard ceiling when asked for, and the gateway's limit found
by additive increase and multiplicative decrease (AIMD) when not.

Why AIMD over windows of answers, rather than slowing down on every 429: a gateway
also answers 429 for reasons of its own, to a few IDs at a time, and halving the rate on
each of those collapsed throughput for nothing. Only a period in which more than a
tenth of the answers were throttled says "too fast"; the rate then drops to
:data:`_BACK_OFF` of what got through in that period, and climbs back by
:data:`_STEP` of itself each period while the limiter is what holds the run back. Against
a gateway that throttles above R calls/s, the rate saws between about 0.85 R and 1.1 R,
and about one call in twenty is throttled (``benchmarks/fetch.py --case throttle``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

_PERIOD_S = 1.0
"""How often the rate is reconsidered."""
_MIN_SAMPLE = 20
"""Answers a period needs before it says anything."""
_TOO_MANY = 0.10
"""Share of throttled answers in a period that means "over the gateway's limit"."""
_BACK_OFF = 0.85
"""After such a period, the rate is this share of what got through."""
_STEP = 0.05
"""Each period the limiter held the run back without throttling, the rate grows by this
share of itself (at least one call a second)."""
_FLOODED = 0.5
"""A share of throttled answers so high that the period ends at once (the first burst of
an unlimited run against a gateway with a limit)."""
_BINDING = 0.8
"""The limiter holds the run back when the calls sent reach this share of the rate."""
_MIN_RPS = 1.0


class RateLimiter:
    """Spaces requests so that no one-second window holds more than the rate.

    Requests are given send slots at least ``1 / rate`` seconds apart (a leaky bucket),
    which bounds every one-second window, not only calendar seconds. Without
    ``max_rps`` the rate starts unlimited and is set by :meth:`record`; with it, the
    rate never exceeds ``max_rps``. Thread-safe; the clock and sleep are injectable.
    """

    def __init__(
        self,
        max_rps: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._ceiling = max_rps
        self._rate = max_rps
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._sent: deque[float] = deque()
        self._period_start: float | None = None
        self._answers = 0
        self._throttled = 0
        self.throttle_events = 0
        """Periods that found the gateway throttling, each a slow-down."""

    @property
    def rate(self) -> float | None:
        """The current rate limit in requests per second, None when unlimited."""
        return self._rate

    def acquire(self) -> float:
        """Wait for this request's send slot; return the seconds waited."""
        with self._lock:
            if self._rate is None:
                return 0.0
            now = self._clock()
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

    def record(self, *, throttled: bool) -> None:
        """Count an answer of the gateway; at the end of a period, adjust the rate."""
        with self._lock:
            now = self._clock()
            if self._period_start is None:
                self._period_start = now
            self._answers += 1
            self._throttled += throttled
            elapsed = now - self._period_start
            share = self._throttled / self._answers
            if self._answers < _MIN_SAMPLE or (elapsed < _PERIOD_S and share <= _FLOODED):
                return
            if share > _TOO_MANY:
                # A flood decides at once, but a period is at least a second long: a
                # gateway's bucket lets a burst through before it starts refusing.
                passed = (self._answers - self._throttled) / max(elapsed, _PERIOD_S)
                self._rate = max(_MIN_RPS, passed * _BACK_OFF)
                self.throttle_events += 1
            elif self._rate is not None and self._answers / elapsed >= _BINDING * self._rate:
                self._rate += max(1.0, self._rate * _STEP)
            if self._rate is not None and self._ceiling is not None:
                self._rate = min(self._rate, self._ceiling)
            self._period_start, self._answers, self._throttled = None, 0, 0
