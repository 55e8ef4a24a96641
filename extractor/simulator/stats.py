"""Thread-safe counters of what the simulator was asked and how it answered."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class SimStats:
    """A snapshot of the simulator's counters (plain dicts, so it pickles).

    Attributes:
        requests: Requests by endpoint: ``token``, ``get``, ``search``, ``time``,
            ``unknown``.
        answers: Answers by kind: ``ok``, ``not_found``, ``throttled``, ``token_expired``...
        faults: Injected faults by kind (the :data:`FaultKind` names, ``rate_limit``,
            ``token_expiry``).
    """

    requests: Mapping[str, int]
    answers: Mapping[str, int]
    faults: Mapping[str, int]

    @property
    def total_requests(self) -> int:
        """Requests of every endpoint."""
        return sum(self.requests.values())

    @property
    def throttled(self) -> int:
        """Answers with HTTP 429, from the rate limit or an injected throttle."""
        return self.answers.get("throttled", 0) + self.answers.get("rate_limited", 0)

    @property
    def faults_injected(self) -> int:
        """Faults injected, of every kind."""
        return sum(self.faults.values())


class StatsCounter:
    """The live counters behind :class:`SimStats`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._answers: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()

    def request(self, endpoint: str) -> None:
        with self._lock:
            self._requests[endpoint] += 1

    def answer(self, kind: str) -> None:
        with self._lock:
            self._answers[kind] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def snapshot(self) -> SimStats:
        with self._lock:
            return SimStats(dict(self._requests), dict(self._answers), dict(self._faults))

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._answers.clear()
            self._faults.clear()
