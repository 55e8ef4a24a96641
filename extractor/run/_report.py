"""What a run did: its report, its exit code and the rows of IDs that failed."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from extractor.errors import ApiError
from extractor.tables._coerce import canonical_json

EXIT_OK = 0
"""Everything loaded."""
EXIT_FATAL = 1
"""A fatal error: bad credentials, an unreachable gateway or destination."""
EXIT_USAGE = 2
"""Bad usage or configuration."""
EXIT_PARTIAL = 3
"""Some IDs failed; they are in ``failed_instances``."""


@dataclass
class RunReport:
    """What a run did; ``to_dict`` is the machine-readable ``--report``."""

    run_key: str
    resumed: bool = False
    ids_seen: int = 0
    duplicates: int = 0
    skipped: int = 0
    stale: int = 0
    fetched: int = 0
    loaded: int = 0
    failed: int = 0
    rejected: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    failures_by_reason: Counter[str] = field(default_factory=Counter)
    unknown_fields: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    throttled: int = 0
    throttle_events: int = 0
    tokens_fetched: int = 0
    token_expired: int = 0
    outages: int = 0
    outage_seconds: float = 0.0
    calls: int = 0
    started_at: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    fatal_error: str | None = None
    failed_ids_sample: list[str] = field(default_factory=list)

    @property
    def instances_per_s(self) -> float:
        return (self.fetched + self.failed) / self.seconds if self.seconds > 0 else 0.0

    @property
    def calls_per_instance(self) -> float | None:
        """Gateway calls (token calls aside) per instance loaded; None before any loads."""
        return self.calls / self.loaded if self.loaded else None

    @property
    def exit_code(self) -> int:
        if self.fatal_error is not None:
            return EXIT_FATAL
        return EXIT_PARTIAL if self.failed or self.rejected else EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_key": self.run_key,
            "resumed": self.resumed,
            "exit_code": self.exit_code,
            "ids": {
                "seen": self.ids_seen,
                "duplicates": self.duplicates,
                "stale_not_rechecked": self.stale,
                "skipped_already_done": self.skipped,
                "fetched": self.fetched,
                "loaded": self.loaded,
                "failed_fetch": self.failed,
                "rejected_flatten": self.rejected,
            },
            "rows": dict(self.rows),
            "failures_by_reason": dict(self.failures_by_reason),
            "unknown_fields": dict(self.unknown_fields),
            "retries": self.retries,
            "throttled_answers": self.throttled,
            "throttle_slowdowns": self.throttle_events,
            "tokens_fetched": self.tokens_fetched,
            "token_expired_answers": self.token_expired,
            "outages": self.outages,
            "outage_seconds": round(self.outage_seconds, 1),
            "calls": self.calls,
            "calls_per_instance": (
                None if self.calls_per_instance is None else round(self.calls_per_instance, 4)
            ),
            "seconds": round(self.seconds, 3),
            "instances_per_s": round(self.instances_per_s, 1),
            "fatal_error": self.fatal_error,
        }


def run_key(description: str) -> str:
    """A stable key for "the same run": the same arguments give the same key."""
    return hashlib.sha256(description.encode()).hexdigest()[:32]


def failure_row(
    instance_id: str,
    *,
    stage: str,
    error: BaseException,
    failed_at: datetime,
    raw: Any = None,
) -> dict[str, Any]:
    """A ``failed_instances`` row for an ID that could not be fetched or flattened."""
    api = error if isinstance(error, ApiError) else None
    return {
        "instance_id": instance_id,
        "stage": stage,
        "error_class": type(error).__name__,
        "http_status": api.http_status if api else None,
        "api_code": api.api_code if api else None,
        "message": getattr(error, "message", None) or str(error),
        "attempts": api.attempts if api else 1,
        "failed_at": failed_at,
        "raw_json": canonical_json(raw) if raw is not None else None,
    }
