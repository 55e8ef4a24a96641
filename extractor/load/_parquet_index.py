"""Per-dataset index of which partition holds each instance's rows.

An index rather than a scan: finding where a re-loaded instance lived (its ``cal_dt`` may
have changed) then costs one small file read instead of reading the keys of every
partition. A dataset without an index (written by hand, or the file deleted) gets one
rebuilt by a single scan.

The index describes the visible files only. Compaction replaces it together with the
partitions it rewrites, under the same commit (see ``_parquet_store``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import feather

from extractor.errors import LoadError
from extractor.load._batch import CLAIMABLE_TABLES
from extractor.load._parquet_files import data_files, partition_folders, partition_value
from extractor.tables._schema import Table

INDEX_FILE = "_instances.arrow"
"""Hidden from dataset readers by its leading underscore; not a Parquet file either."""


def claim_key(table: Table) -> str | None:
    """The key a loaded instance can claim from another instance, if any."""
    if table not in CLAIMABLE_TABLES:
        return None
    (key,) = table.primary_key  # claimable keys are single columns (task_inst_id)
    return key


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
    def load(cls, root: Path, *, claim_key: str | None) -> PartitionIndex:
        columns = ["instance_id", *([claim_key] if claim_key else []), "partition"]
        path = root / INDEX_FILE
        if path.exists():
            try:
                table = feather.read_table(path, memory_map=False)
            except (OSError, pa.ArrowException) as exc:
                raise LoadError(f"cannot read {path}: {exc}") from exc
            if table.column_names == columns:
                return cls(table, claim_key)
        return cls(_distinct(_scan(root, columns[:-1]).select(columns), claim_key), claim_key)

    @classmethod
    def empty(cls, claim_key: str | None) -> PartitionIndex:
        columns = ["instance_id", *([claim_key] if claim_key else []), "partition"]
        return cls(pa.table({c: pa.array([], pa.string()) for c in columns}), claim_key)

    def filter(self, mask: pa.Array) -> PartitionIndex:
        return PartitionIndex(self.table.filter(mask), self.claim_key)

    def entries(self, keys: pa.Table, partitions: pa.Array) -> PartitionIndex:
        """Return the entries of rows with these keys written to these partitions.

        ``keys`` holds ``instance_id`` and the claim key (if any) of each row.
        """
        names = ["instance_id", *([self.claim_key] if self.claim_key else [])]
        columns = {c: keys.column(c) for c in names}
        table = pa.table({**columns, "partition": partitions})
        return PartitionIndex(_distinct(table, self.claim_key), self.claim_key)

    def instance_ids(self) -> pa.Array:
        return pc.unique(self.table.column("instance_id"))

    @staticmethod
    def concat(first: PartitionIndex, second: PartitionIndex) -> PartitionIndex:
        table = pa.concat_tables([first.table, second.table.cast(first.table.schema)])
        return PartitionIndex(table, first.claim_key)


def _distinct(table: pa.Table, claim_key: str | None) -> pa.Table:
    """One entry per instance and partition; a claimable table's rows are entries already."""
    if claim_key or not table.num_rows:
        return table
    names = table.column_names
    return table.group_by(names, use_threads=False).aggregate([]).select(names)


def _scan(root: Path, columns: list[str]) -> pa.Table:
    """Read ``columns`` and the partition of every row in a dataset (no index yet)."""
    parts = []
    for folder in partition_folders(root):
        value = partition_value(folder)
        for file in data_files(folder):
            try:
                keys = pq.read_table(file, columns=columns)
            except (OSError, pa.ArrowException) as exc:
                raise LoadError(f"cannot read {file}: {exc}") from exc
            partition = pa.repeat(pa.scalar(value, pa.string()), keys.num_rows)
            parts.append(keys.append_column("partition", partition))
    if not parts:
        return pa.table({c: pa.array([], pa.string()) for c in [*columns, "partition"]})
    return pa.concat_tables(parts)
