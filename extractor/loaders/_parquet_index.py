"""Per-dataset index of which partition holds each instance's rows.

An index rather than a scan: finding where a re-loaded instance lived (its ``cal_dt`` may
have changed) then costs one small file read instead of reading the keys of every
partition. A dataset without an index (written by hand, or the file deleted) gets one
rebuilt by a single scan.

The index is put in place twice per batch: before the data files as the union of the
old and the new entries, after them exactly. An entry means "may have rows here", so a
crash between the two leaves an index that names too many partitions, never too few, and
the next batch that loads those instances cleans up after the crash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import feather

from extractor.errors import LoadError

INDEX_FILE = "_instances.arrow"
"""Hidden from dataset readers by its leading underscore; not a Parquet file either."""

Scan = Callable[[Path, list[str]], pa.Table]


@dataclass(frozen=True)
class Match:
    """The index entries a batch replaces.

    Attributes:
        mask: Over the index's rows: the entry belongs to a loaded instance, or holds a
            key the batch claims.
        claimed: Claimed keys that another instance holds now (empty without a claim key).
    """

    mask: pa.Array
    claimed: pa.Array


@dataclass(frozen=True)
class PartitionIndex:
    """Rows of ``instance_id``, the claim key (if any) and ``partition``.

    Tables whose key holds ``instance_id`` keep one row per instance and partition; a
    claimable table (``task_instances``, keyed by ``task_inst_id`` alone) keeps one row
    per key, so a claimed row is found in the partition of the instance that held it.
    """

    table: pa.Table
    claim_key: str | None

    @classmethod
    def load(cls, root: Path, *, claim_key: str | None, scan: Scan) -> PartitionIndex:
        columns = ["instance_id", *([claim_key] if claim_key else []), "partition"]
        path = root / INDEX_FILE
        if path.exists():
            try:
                table = feather.read_table(path, memory_map=False)
            except (OSError, pa.ArrowException) as exc:
                raise LoadError(f"cannot read {path}: {exc}") from exc
            if table.column_names == columns:
                return cls(table, claim_key)
        table = scan(root, columns[:-1]).select(columns)
        if not claim_key and table.num_rows:
            table = table.group_by(columns, use_threads=False).aggregate([]).select(columns)
        return cls(table, claim_key)

    def match(self, instance_ids: pa.Array, keys: pa.Array | None) -> Match:
        """Find the entries of these instances, and of these keys held by others.

        The keys' set is built over the smaller side, whichever it is: the batch's keys
        or the other instances' entries (usually none on a re-load).
        """
        mask = pc.is_in(self.table.column("instance_id"), value_set=instance_ids)
        if self.claim_key is None or keys is None:
            return Match(mask, pa.array([], pa.string()))
        held = self.table.column(self.claim_key).combine_chunks()
        others = held.filter(pc.invert(mask))
        if len(others) <= len(keys):
            claimed = keys.filter(pc.is_in(keys, value_set=others))
        else:
            claimed = others.filter(pc.is_in(others, value_set=keys))
        if len(claimed):
            mask = pc.or_(mask, pc.is_in(held, value_set=claimed))
        return Match(mask, claimed)

    def filter(self, mask: pa.Array) -> PartitionIndex:
        return PartitionIndex(self.table.filter(mask), self.claim_key)

    def entries(self, keys: pa.Table, partitions: pa.Array) -> PartitionIndex:
        """Return entries for rows with these keys written to these partitions.

        ``keys`` holds ``instance_id`` and the claim key, one row per entry: every row for
        a claimable table, else one row per instance.
        """
        names = ["instance_id", *([self.claim_key] if self.claim_key else [])]
        columns = {c: keys.column(c) for c in names}
        return PartitionIndex(pa.table({**columns, "partition": partitions}), self.claim_key)

    def instance_ids(self) -> pa.Array:
        return pc.unique(self.table.column("instance_id"))

    @staticmethod
    def concat(first: PartitionIndex, second: PartitionIndex) -> PartitionIndex:
        table = pa.concat_tables([first.table, second.table.cast(first.table.schema)])
        return PartitionIndex(table, first.claim_key)
