"""Per-dataset index of which partition holds each instance's rows.

An index rather than a scan: finding where a re-loaded instance lived (its ``cal_dt`` may
have changed) then costs a read of small entries instead of reading the keys of every
partition. A dataset without an index (written by hand, or the file deleted) gets one
rebuilt by a single scan.

The index is read and written a record batch at a time, never whole, so it may be far
larger than memory. It describes the visible files only: compaction replaces it
together with the partitions it rewrites, under the same commit (see
``_parquet_store``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from extractor.load._batch import CLAIMABLE_TABLES
from extractor.load._parquet_files import (
    data_files,
    failing_as,
    partition_folders,
    partition_value,
    read_arrow,
)
from extractor.tables._schema import Table

INDEX_FILE = "_instances.arrow"
"""Hidden from dataset readers by its leading underscore; not a Parquet file either."""


def claim_key(table: Table) -> str | None:
    """The key a loaded instance can claim from another instance, if any."""
    if table not in CLAIMABLE_TABLES:
        return None
    (key,) = table.primary_key  # claimable keys are single columns (task_inst_id)
    return key


def index_schema(claim_key: str | None) -> pa.Schema:
    """Entries of ``instance_id``, the claim key (if any) and ``partition``.

    Tables whose key holds ``instance_id`` keep one entry per instance and partition; a
    claimable table (``task_instances``, keyed by ``task_inst_id`` alone) keeps one entry
    per key, so a claimed row is found in the partition of the instance that held it.
    """
    columns = ["instance_id", *([claim_key] if claim_key else []), "partition"]
    return pa.schema([(c, pa.string()) for c in columns])


def read_index(root: Path, *, claim_key: str | None, scan: bool = False) -> Iterator[pa.Table]:
    """Yield the entries of the dataset at ``root``, a record batch at a time.

    With ``scan``, or when the index file is missing or of another shape, the entries
    come from the data files, a partition at a time. Yields at least one table.
    """
    schema = index_schema(claim_key)
    path = root / INDEX_FILE
    if not scan and path.exists():
        parts = read_arrow(path)
        if next(parts).schema.names == schema.names:
            yield schema.empty_table()
            yield from (part.cast(schema) for part in parts)
            return
        parts.close()
    yield schema.empty_table()
    yield from _scan(root, schema)


def entries(rows: pa.Table, partitions: pa.ChunkedArray, claim_key: str | None) -> pa.Table:
    """The entries of ``rows`` (their ``instance_id`` and claim key) in ``partitions``.

    One entry per instance and partition; a claimable table's rows are entries already.
    """
    schema = index_schema(claim_key)
    keys = schema.names[:-1]
    table = pa.table({**{c: rows.column(c) for c in keys}, "partition": partitions}).cast(schema)
    if claim_key or not table.num_rows:
        return table
    return table.group_by(schema.names, use_threads=False).aggregate([]).select(schema.names)


def _scan(root: Path, schema: pa.Schema) -> Iterator[pa.Table]:
    """The entries of every partition folder's data files, a folder at a time."""
    columns = schema.names[:-1]
    claim = columns[1] if len(columns) > 1 else None
    for folder in partition_folders(root):
        parts = []
        for file in data_files(folder):
            with failing_as(f"cannot read {file}"):
                parts.append(pq.read_table(file, columns=columns))
        if parts:
            keys = pa.concat_tables(parts, promote_options="permissive")
            value = pa.scalar(partition_value(folder), pa.string())
            yield entries(keys, pa.chunked_array([pa.repeat(value, keys.num_rows)]), claim)
