"""Gateway health: an outage belongs to the run, not to the ID that met it.

No connection at all (:class:`~extractor.errors.GatewayUnreachableError`: refused,
unknown host, no answer to connecting) means the gateway is down for every worker. The
first worker to meet it marks the gateway down; every worker then waits, spending no
ID's attempts, while one of them at a time repeats its own call as a probe, with
exponential backoff and jitter. Any answer (even an error status) brings the gateway
back up for all.

A gateway that has never answered is most likely misconfigured: the run stops with a
fatal error after ``start_grace_s``. One that answered before and went away is given
``outage_timeout_s`` before the run stops, its checkpoint stored, to be resumed by
running the same command again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from extractor.errors import ApiError, FatalApiError

log = logging.getLogger(__name__)

_FIRST_PROBE_S = 0.5
_LONGEST_PROBE_S = 15.0
_POLL_S = 0.25


class GatewayHealth:
    """Whether the gateway is reachable, shared by every worker of a client."""

    def __init__(
        self,
        *,
        outage_timeout_s: float = 300.0,
        start_grace_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.outage_timeout_s = outage_timeout_s
        self.start_grace_s = start_grace_s
        self._clock, self._sleep = clock, sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._ever_up = False
        self._down_since: float | None = None
        self._error: ApiError | None = None
        self._backoff = _FIRST_PROBE_S
        self._next_probe = 0.0
        self._probing = False
        self._prober: int | None = None
        self.outages = 0
        self.outage_seconds = 0.0

    @property
    def is_down(self) -> bool:
        """True while the gateway is known to be unreachable."""
        return self._down_since is not None

    def on_answer(self, sent_at: float) -> None:
        """Record that the gateway answered (whatever it said) a call sent at
        ``sent_at``; an answer to a call sent before the outage began ends nothing."""
        if self._ever_up and self._down_since is None:
            return  # the common case, without the lock
        with self._lock:
            self._ever_up = True
            if self._down_since is not None:
                if sent_at < self._down_since:
                    return
                down = self._clock() - self._down_since
                self.outage_seconds += down
                log.warning("the gateway answers again after %.0f s; workers resume", down)
            self._down_since, self._probing, self._backoff = None, False, _FIRST_PROBE_S

    def on_no_answer(self) -> None:
        """Record a call that reached the gateway but got no answer (a reset, a read
        timeout): it says nothing of an outage, but a probe that ends so is over."""
        if self._probing and self._prober == threading.get_ident():
            with self._lock:
                self._probing = False

    def on_unreachable(self, error: ApiError) -> None:
        """Record that a call found no gateway; the next probe waits a little longer."""
        with self._lock:
            now = self._clock()
            if self._down_since is None:
                self._down_since = now
                self.outages += 1
                log.warning(
                    "the gateway is unreachable (%s); all workers pause and probe it", error
                )
            self._error = error
            self._probing = False
            delay = self._rng.uniform(0.5, 1.0) * self._backoff
            self._backoff = min(self._backoff * 2, _LONGEST_PROBE_S)
            self._next_probe = now + delay

    def wait(self) -> float:
        """Return when this thread may call: the gateway is up, or it is this thread's
        turn to probe. Return the seconds waited.

        Raises:
            FatalApiError: the gateway has been down for longer than allowed.
        """
        waited = 0.0
        while True:
            with self._lock:
                if self._down_since is None:
                    return waited
                now = self._clock()
                self._check_limit(now)
                if not self._probing and now >= self._next_probe:
                    self._probing, self._prober = True, threading.get_ident()
                    return waited
                pause = min(max(self._next_probe - now, 0.0), _POLL_S) or _POLL_S
            self._sleep(pause)
            waited += pause

    def _check_limit(self, now: float) -> None:
        assert self._down_since is not None
        down = now - self._down_since
        if not self._ever_up and down > self.start_grace_s:
            raise FatalApiError(
                f"cannot reach the gateway ({self._error}); no answer in {down:.0f} s"
            )
        if self._ever_up and down > self.outage_timeout_s:
            raise FatalApiError(
                f"the gateway has been unreachable for {down:.0f} s ({self._error}); "
                "run the same command again to resume"
            )
