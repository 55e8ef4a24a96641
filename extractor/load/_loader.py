"""What every destination shares: the write modes and the result of a write."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

WriteMode = Literal["append", "replace", "upsert"]
"""How a write treats rows already at the destination.

``upsert`` replaces every loaded instance together with all its child rows; ``append``
only inserts and fails on a key already present; ``replace`` empties every table first.
"""

WRITE_MODES: frozenset[str] = frozenset({"append", "replace", "upsert"})


@dataclass(frozen=True, kw_only=True)
class LoadResult:
    """What one write did.

    Attributes:
        rows_written: Rows written per table name, every declared table present.
        instances_replaced: Loaded instances whose earlier rows this write replaced
            (always 0 for ``append`` and ``replace``).
        seconds: Wall-clock time of the write.
    """

    rows_written: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    instances_replaced: int = 0
    seconds: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows_written", MappingProxyType(dict(self.rows_written)))

    @property
    def total_rows(self) -> int:
        """Rows written across all tables."""
        return sum(self.rows_written.values())
