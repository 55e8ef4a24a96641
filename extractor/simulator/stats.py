"""Thread-safe counters of what the simulator was asked and how it answered."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, fields


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
    """The live counters behind :class:`SimStats`, by group: the names of its fields."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._groups: dict[str, Counter[str]] = {f.name: Counter() for f in fields(SimStats)}

    def add(self, group: str, kind: str) -> None:
        with self._lock:
            self._groups[group][kind] += 1

    def snapshot(self) -> SimStats:
        with self._lock:
            return SimStats(**{group: dict(counts) for group, counts in self._groups.items()})

    def reset(self) -> None:
        with self._lock:
            for counts in self._groups.values():
                counts.clear()
