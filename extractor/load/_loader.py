"""What every destination shares: the write modes, how a write runs, and its result."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, cast, get_args

from extractor.errors import ConfigError
from extractor.load._batch import Batch, prepare_batch
from extractor.tables._frames import FlowFrames

WriteMode = Literal["append", "replace", "upsert"]
"""How a write treats rows already at the destination.

``upsert`` replaces every loaded instance together with all its child rows; ``append``
only inserts and fails on a key already present; ``replace`` empties every table first.
"""


def check_mode(mode: str) -> WriteMode:
    """Return ``mode`` if it is a write mode, else raise :class:`ConfigError`."""
    if mode not in get_args(WriteMode):
        raise ConfigError(f"mode must be one of {sorted(get_args(WriteMode))}, got {mode!r}")
    return cast(WriteMode, mode)


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


class BaseDestination:
    """A destination's writes: each batch checked and typed, in the destination's mode."""

    mode: WriteMode
    _sorts_keys = False
    """Whether batches come sorted by primary key (see :func:`prepare_batch`)."""

    def write(self, frames: FlowFrames, *, mode: WriteMode | None = None) -> LoadResult:
        """Write one batch, in the destination's mode unless ``mode`` is given.

        Raises:
            ConfigError: Invalid mode.
            LoadError: The batch breaks the declared schema, the destination cannot be
                written, or (``append``) a key is already there.
        """
        started = time.perf_counter()
        if mode is None:
            mode = self.mode
            if mode == "replace":
                self.mode = "upsert"  # replace empties the destination once, not every batch
        mode = check_mode(mode)
        batch = prepare_batch(frames, mode, sort=self._sorts_keys)
        replaced = self._write(batch, mode)
        return LoadResult(
            rows_written=batch.row_counts,
            instances_replaced=replaced,
            seconds=time.perf_counter() - started,
        )

    def _write(self, batch: Batch, mode: WriteMode) -> int:
        """Write a prepared batch; return the instances it replaced."""
        raise NotImplementedError
