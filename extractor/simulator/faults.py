"""Fault injection: what goes wrong, how often, and for which requests.

A :class:`Faults` value is the plan; a :class:`FaultState` applies it. Which Get Flow
Instance attempts fail is decided by a seeded hash of ``(seed, instance ID, attempt)``,
and no ID fails more than ``fault_attempts`` times, so a client that retries enough
loses nothing and two runs with the same plan see the same faults.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Literal, get_args

from extractor.errors import ConfigError
from extractor.simulator.lifecycle import pick

RetryAfterForm = Literal["seconds", "http-date", "zero", "negative", "absurd", "none"]
"""How a 429's ``Retry-After`` header is written (``none`` leaves it out)."""

FaultKind = Literal["throttle", "server_error", "timeout", "drop", "malformed", "code_error"]
"""Per-request faults of Get Flow Instance, in the order their shares are stacked."""

PermanentFault = Literal["not_found", "no_privilege"]

FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)


@dataclass(frozen=True, kw_only=True)
class Faults:
    """What the simulator does wrong; everything is off by default.

    Attributes:
        latency_ms: Added to every API call.
        latency_jitter_ms: Up to this much more, uniformly.
        rate_limit_rps: Server-wide token bucket (burst of one second); calls over it
            get HTTP 429 with ``Retry-After``. 0 is off.
        throttle: Share of Get Flow Instance attempts answered 429.
        retry_after: How those 429s write ``Retry-After``.
        retry_after_s: The delay they announce, for ``seconds`` and ``http-date``.
        server_error: Share answered 500, 502 or 503.
        error_burst: Consecutive 5xx answers (to any ID still owed faults) once one fires.
        timeout: Share held ``hang_s`` seconds, then closed without an answer.
        hang_s: How long a ``timeout`` holds the request.
        drop: Share closed at once without an answer.
        malformed: Share answered 200 with a truncated JSON body.
        code_error: Share answered 200 with ``{"code": 62109, ...}``.
        expire_token_every: Every Nth API call, expire every token first (0 is off).
        fault_attempts: Most attempts of one ID that can fail; the next one succeeds.
        permanent: IDs that always fail: ``not_found`` or ``no_privilege`` (62103).
        seed: Seeds the choice of faulted IDs and attempts.
    """

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    rate_limit_rps: float = 0.0
    throttle: float = 0.0
    retry_after: RetryAfterForm = "seconds"
    retry_after_s: float = 1.0
    server_error: float = 0.0
    error_burst: int = 1
    timeout: float = 0.0
    hang_s: float = 5.0
    drop: float = 0.0
    malformed: float = 0.0
    code_error: float = 0.0
    expire_token_every: int = 0
    fault_attempts: int = 2
    permanent: Mapping[str, PermanentFault] = field(default_factory=dict, hash=False)
    seed: int = 0

    def __post_init__(self) -> None:
        shares = [getattr(self, kind) for kind in FAULT_KINDS]
        if any(not 0 <= share <= 1 for share in shares) or sum(shares) > 1:
            raise ConfigError(f"fault shares must be in [0, 1] and add up to 1 at most: {self}")
        for name in ("latency_ms", "latency_jitter_ms", "rate_limit_rps", "hang_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative")
        if self.hang_s > 300:
            raise ConfigError("hang_s is capped at 300 seconds")
        if self.error_burst < 1 or self.fault_attempts < 0:
            raise ConfigError("error_burst must be >= 1 and fault_attempts >= 0")
        if self.expire_token_every == 1 or self.expire_token_every < 0:
            raise ConfigError("expire_token_every must be 0 (off) or at least 2")
        bad = {k: v for k, v in self.permanent.items() if v not in ("not_found", "no_privilege")}
        if bad:
            raise ConfigError(f"unknown permanent faults: {bad}")
        object.__setattr__(self, "permanent", dict(self.permanent))


def _uniform(seed: int, instance_id: str, attempt: int) -> float:
    digest = hashlib.blake2b(f"{seed}:{instance_id}:{attempt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def retry_after_header(form: RetryAfterForm, seconds: float) -> str | None:
    """Write a ``Retry-After`` value in one of the forms a gateway may use.

    >>> retry_after_header("seconds", 1.2), retry_after_header("zero", 5)
    ('2', '0')
    """
    if form == "seconds":
        return str(max(1, math.ceil(seconds)))
    if form == "http-date":
        return formatdate(time.time() + seconds, usegmt=True)
    return {"zero": "0", "negative": "-5", "absurd": "99999999"}.get(form)


class FaultState:
    """Applies one :class:`Faults` plan, remembering how often each ID has failed.

    Only IDs that failed at least once are remembered, so memory grows with the number
    of faulted IDs, not with the number of requests.
    """

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._failures: dict[str, int] = {}
        self._burst_left = 0
        self._calls = 0
        self._lock = threading.Lock()

    def decide(self, instance_id: str) -> FaultKind | None:
        """Return the fault for this attempt at ``instance_id``, or None to answer it."""
        plan = self.faults
        if not any(getattr(plan, kind) for kind in FAULT_KINDS):
            return None
        with self._lock:
            failed = self._failures.get(instance_id, 0)
            if failed >= plan.fault_attempts:
                return None
            kind: FaultKind | None = "server_error"
            if self._burst_left > 0:
                self._burst_left -= 1
            else:
                point = _uniform(plan.seed, instance_id, failed)
                kind = pick(point, ((k, getattr(plan, k)) for k in FAULT_KINDS))
                if kind == "server_error":
                    self._burst_left = plan.error_burst - 1
            if kind is not None:
                self._failures[instance_id] = failed + 1
            return kind

    def server_error_status(self, instance_id: str) -> int:
        """Pick 500, 502 or 503 for a server error, stably per ID and attempt."""
        return (500, 502, 503)[int(_uniform(self.faults.seed + 1, instance_id, 0) * 3)]

    def count_call(self) -> bool:
        """Count one API call; tell whether the tokens expire before it is answered."""
        every = self.faults.expire_token_every
        if not every:
            return False
        with self._lock:
            self._calls += 1
            return self._calls % every == 0


class TokenBucket:
    """A server-wide rate limit: ``rate`` calls a second, bursts of one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take a token; return 0 when granted, else the seconds until one is free."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate
