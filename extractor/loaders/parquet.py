"""Write flow frames to Parquet datasets: one per table, hive-partitioned by ``cal_dt``.

Layout under the destination directory::

    flow_instances/cal_dt=2026-01-31/part-0.parquet
    flow_instances/cal_dt=__HIVE_DEFAULT_PARTITION__/part-0.parquet   (null cal_dt)
    flow_instances/_instances.arrow                                   (partition index)
    task_instances/cal_dt=2026-01-31/part-0.parquet                   (the parent's cal_dt)
    ...
    failed_instances/part-0.parquet                                   (not partitioned)

A partition the batch touches is rewritten whole: its kept old rows and the batch's new
ones. Every new file of a batch is first written where readers do not look, in the same
dataset directory; only when all are written are they moved over the old files with
:func:`os.replace`. A failure while writing leaves every visible file as it was, and a
reader only ever meets whole files. Partitions the batch does not touch are left byte for
byte as they were.

Read a dataset with ``pyarrow.dataset.dataset(path / "task_instances", partitioning="hive")``
(``cal_dt`` as text) or with ``partitioning=parquet_partitioning()`` (``cal_dt`` as a date,
and null partitions that pandas can read: ``pandas.read_parquet(path / "task_instances",
partitioning=parquet_partitioning())``).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from extractor.errors import LoadError
from extractor.frames import FlowFrames, arrow_schema
from extractor.loaders._batch import (
    CLAIMABLE_TABLES,
    Batch,
    check_mode,
    has_repeated_keys,
    prepare_batch,
)
from extractor.loaders._parquet_files import StagedChanges, data_files, make_dir
from extractor.loaders._parquet_index import INDEX_FILE, PartitionIndex
from extractor.loaders.loader import LoadResult, WriteMode
from extractor.schema import DATA_TABLES, FAILURES, INSTANCES, Table

PARTITION_COLUMN = "cal_dt"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"

_FAILURES_FILE = "part-0.parquet"


def parquet_partitioning() -> ds.Partitioning:
    """Return the datasets' hive partitioning with ``cal_dt`` typed as a date.

    Without it, pyarrow reads ``cal_dt`` as text, and pandas fails on the null partition
    (``Cannot yet unify dictionaries with nulls``, a pyarrow limitation).
    """
    return ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.date32())]), flavor="hive")


class ParquetLoader:
    """Writes batches of frames to Parquet datasets under one directory.

    The datasets belong to the loader: one writer at a time, and files added by hand
    to a partition are folded into (or, if unindexed, replaced by) its next rewrite.

    Args:
        path: The destination directory, created if missing.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def write(self, frames: FlowFrames, *, mode: WriteMode = "upsert") -> LoadResult:
        """Write one batch; see :func:`write_parquet`."""
        started = time.perf_counter()
        mode = check_mode(mode)
        batch = prepare_batch(frames, mode)
        if mode == "append":
            _check_no_repeats(batch)
        make_dir(self.path)
        partitions = _parent_partitions(batch)
        staged = {t.name: StagedChanges() for t in (*DATA_TABLES, FAILURES)}

        def stage(table: Table) -> int:
            root = self.path / table.name
            return _stage_dataset(staged[table.name], root, table, batch, partitions, mode=mode)

        try:
            # Reading, merging and encoding run in Arrow with the GIL released, so the
            # datasets are staged side by side.
            workers = min(len(DATA_TABLES), os.cpu_count() or 1)
            with ThreadPoolExecutor(max_workers=workers) as pool:
                held = dict(zip(DATA_TABLES, pool.map(stage, DATA_TABLES), strict=True))
            _stage_failures(staged[FAILURES.name], self.path / FAILURES.name, batch, mode)
        except BaseException:
            for changes in staged.values():
                changes.discard()
            raise
        StagedChanges.combine(list(staged.values())).apply()
        replaced = held[INSTANCES]
        return LoadResult(
            rows_written=batch.row_counts,
            instances_replaced=replaced if mode == "upsert" else 0,
            seconds=time.perf_counter() - started,
        )


def write_parquet(
    frames: FlowFrames, path: str | os.PathLike[str], *, mode: WriteMode = "upsert"
) -> LoadResult:
    """Write every table of ``frames`` to Parquet datasets under ``path``.

    ``upsert`` replaces every loaded instance's rows wherever they were, including the
    partition it occupied before its ``cal_dt`` changed; ``append`` fails on an instance
    already present; ``replace`` leaves only this batch. Failures are upserted by
    ``instance_id`` in every mode, and each instance loaded here leaves them.

    Raises:
        ConfigError: Invalid mode.
        LoadError: The directory cannot be written, an existing file cannot be read or
            holds a column of another type, or (``append``) an instance is already there.
    """
    return ParquetLoader(path).write(frames, mode=mode)


def read_parquet(path: str | os.PathLike[str]) -> FlowFrames:
    """Read back every table that :func:`write_parquet` wrote under ``path``.

    The tables come typed as declared: ``cal_dt`` a date, timestamps in UTC, and the
    instances with no ``cal_dt`` (the null partition, which ``pandas.read_parquet`` on
    the directory cannot read) included. A table with no files yet is empty.

    Raises:
        LoadError: ``path`` is not a directory, or a file cannot be read or holds a
            column of another type.
    """
    root = Path(path)
    if not root.is_dir():
        raise LoadError(f"no Parquet datasets at {root}: not a directory")
    tables = {}
    for table in (*DATA_TABLES, FAILURES):
        folder = root / table.name
        schema = arrow_schema(table)
        if table is FAILURES:  # not partitioned
            data = _read_files(data_files(folder), table, schema)
        else:
            files = [f for part in _partition_folders(folder) for f in data_files(part)]
            data = _read_files(
                files, table, _file_schema(table), partitioning=parquet_partitioning(), base=folder
            )
        tables[table.name] = data.select(schema.names).cast(schema)
    return FlowFrames(tables)


@dataclass(frozen=True)
class _Partitions:
    """Each loaded instance's partition value (its ``cal_dt`` as hive text)."""

    instance_ids: pa.Array
    values: pa.DictionaryArray

    def positions(self, instance_ids: pa.ChunkedArray) -> pa.Array:
        """Each row's parent, as a position in :attr:`instance_ids`."""
        return pc.index_in(instance_ids.combine_chunks(), value_set=self.instance_ids)

    def present(self, positions: pa.Array) -> pa.Array:
        """Mask of the parents that have at least one of these rows."""
        counts = np.bincount(positions.to_numpy(), minlength=len(self.instance_ids))
        return pa.array(counts > 0)


def _parent_partitions(batch: Batch) -> _Partitions:
    parents = batch.tables[INSTANCES.name]
    cal_dt = parents.column(PARTITION_COLUMN).combine_chunks()
    # Dictionary-encoded, taking a child's value copies an index, not a string; the
    # dataset writer also splits on dictionary indices faster than on text.
    values = pc.fill_null(cal_dt.cast(pa.string()), NULL_PARTITION).dictionary_encode()
    ids = parents.column("instance_id").combine_chunks()
    return _Partitions(instance_ids=ids, values=values)


def _stage_dataset(
    changes: StagedChanges,
    root: Path,
    table: Table,
    batch: Batch,
    partitions: _Partitions,
    *,
    mode: WriteMode,
) -> int:
    """Stage one table's files; return how many loaded instances it already held."""
    data = batch.tables[table.name]
    claim_key = _claim_key(table)
    make_dir(root)
    index = PartitionIndex.load(root, claim_key=claim_key, scan=_scan_keys)
    keys = data.column(claim_key).combine_chunks() if claim_key else None
    match = index.match(batch.instance_ids, keys)
    held = index.table.filter(match.mask)
    if mode == "append" and held.num_rows:
        shown = held.column("instance_id")[0].as_py()
        raise LoadError(
            f"append into {table.name} would duplicate rows already written "
            f"(e.g. of instance {shown!r}); use mode='upsert'"
        )
    positions = partitions.positions(data.column("instance_id"))
    row_partitions = pc.take(partitions.values, positions)
    touched = _unique(row_partitions) | _unique(held.column("partition"))
    if mode == "replace":
        touched |= {p.name.split("=", 1)[1] for p in _partition_folders(root)}
    if claim_key:
        added = index.entries(data, row_partitions.cast(pa.string()))
    else:
        present = partitions.present(positions)
        added = index.entries(
            pa.table({"instance_id": partitions.instance_ids.filter(present)}),
            partitions.values.filter(present).cast(pa.string()),
        )
    kept_entries = index.filter(pc.invert(match.mask))
    final = added if mode == "replace" else PartitionIndex.concat(kept_entries, added)
    changes.write_arrow(PartitionIndex.concat(index, added).table, root / INDEX_FILE, first=True)
    schema = _file_schema(table)
    parts = [data.select(schema.names).append_column(PARTITION_COLUMN, row_partitions)]
    if mode != "replace":
        # Only partitions where some entry stays hold rows to keep; the others are
        # rewritten from the batch alone, without reading them.
        keeping = _unique(kept_entries.table.column("partition")) & touched
        old = _read_partitions(root, table, schema, sorted(keeping))
        if old.num_rows:
            gone = pc.is_in(old.column("instance_id"), value_set=batch.instance_ids)
            if claim_key and len(match.claimed):
                gone = pc.or_(gone, pc.is_in(old.column(claim_key), value_set=match.claimed))
            kept = old.filter(pc.invert(gone))
            column = kept.column(PARTITION_COLUMN).combine_chunks().dictionary_encode()
            parts.append(kept.set_column(len(schema), PARTITION_COLUMN, column))
    written = changes.write_partitions(pa.concat_tables(parts), root, PARTITION_COLUMN)
    for value in touched - written:
        for stale in data_files(root / f"{PARTITION_COLUMN}={value}"):
            changes.remove(stale)
    changes.write_arrow(final.table, root / INDEX_FILE)
    return int(pc.sum(pc.is_in(batch.instance_ids, value_set=index.instance_ids())).as_py() or 0)


def _claim_key(table: Table) -> str | None:
    """The key a loaded instance can claim from another instance, if any."""
    if table not in CLAIMABLE_TABLES:
        return None
    (key,) = table.primary_key  # claimable keys are single columns (task_inst_id)
    return key


def _read_partitions(root: Path, table: Table, schema: pa.Schema, values: list[str]) -> pa.Table:
    """Read the rows of these partitions, with the partition value as a text column."""
    files = [f for v in values for f in data_files(root / f"{PARTITION_COLUMN}={v}")]
    partitioning = ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.string())]), flavor="hive")
    return _read_files(files, table, schema, partitioning=partitioning, base=root)


def _read_files(
    files: list[Path],
    table: Table,
    schema: pa.Schema,
    *,
    partitioning: ds.Partitioning | None = None,
    base: Path | None = None,
) -> pa.Table:
    """Read files written earlier as ``schema`` (plus the partition column, if any).

    A declared column that an older file lacks reads as nulls; a column of another type
    is refused rather than converted.
    """
    full = schema if partitioning is None else schema.append(partitioning.schema.field(0))
    if not files:
        return full.empty_table()
    try:
        for file in files:
            _check_types(pq.read_schema(file), schema, table, file)
        dataset = ds.dataset(
            [str(f) for f in files],
            schema=full,
            format="parquet",
            partitioning=partitioning,
            partition_base_dir=str(base) if base else None,
        )
        return dataset.to_table()
    except (OSError, pa.ArrowException) as exc:
        raise LoadError(f"cannot read {table.name} files under {files[0].parent}: {exc}") from exc


def _check_types(found: pa.Schema, declared: pa.Schema, table: Table, file: Path) -> None:
    for field in found:
        index = declared.get_field_index(field.name)
        if index >= 0 and declared.field(index).type != field.type:
            raise LoadError(
                f"{file}: column {table.name}.{field.name} is {field.type}, declared "
                f"{declared.field(index).type}; move the file away or rewrite it"
            )


def _repeat(value: str, count: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, pa.string()), count)


def _partition_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.glob(f"{PARTITION_COLUMN}=*") if p.is_dir())


def _file_schema(table: Table) -> pa.Schema:
    """The declared schema less the partition column, which lives in the path."""
    schema = arrow_schema(table)
    if PARTITION_COLUMN in schema.names:
        schema = schema.remove(schema.get_field_index(PARTITION_COLUMN))
    return schema


def _unique(values: pa.Array | pa.ChunkedArray) -> set[str]:
    return {str(v) for v in pc.unique(values).to_pylist()}


def _scan_keys(root: Path, columns: list[str]) -> pa.Table:
    """Read ``columns`` and the partition of every row in a dataset (no index yet)."""
    parts = []
    for folder in _partition_folders(root):
        value = folder.name.split("=", 1)[1]
        for file in data_files(folder):
            try:
                keys = ds.dataset(file, format="parquet").to_table(columns=columns)
            except (OSError, pa.ArrowException) as exc:
                raise LoadError(f"cannot read {file}: {exc}") from exc
            parts.append(keys.append_column("partition", _repeat(value, keys.num_rows)))
    if not parts:
        return pa.table({c: pa.array([], pa.string()) for c in [*columns, "partition"]})
    return pa.concat_tables(parts)


def _stage_failures(changes: StagedChanges, root: Path, batch: Batch, mode: WriteMode) -> None:
    schema = arrow_schema(FAILURES)
    new = batch.tables[FAILURES.name]
    target = root / _FAILURES_FILE
    make_dir(root)
    files = [] if mode == "replace" else data_files(root)
    if not files:
        rows = new
    else:
        old = _read_files(files, FAILURES, schema)
        gone = pa.concat_arrays([batch.instance_ids, new.column("instance_id").combine_chunks()])
        resolved = pc.is_in(old.column("instance_id"), value_set=gone)
        if not new.num_rows and not pc.any(resolved).as_py() and target.exists():
            return
        rows = pa.concat_tables([old.filter(pc.invert(resolved)), new])
    for stale in data_files(root):
        if stale != target:
            changes.remove(stale)
    # Unlike a partition, the failures file stays when empty: readers then get the columns.
    changes.write_parquet(rows, target)


def _check_no_repeats(batch: Batch) -> None:
    for table in (*DATA_TABLES, FAILURES):
        if has_repeated_keys(batch.tables[table.name], table.primary_key):
            raise LoadError(
                f"append into {table.name}: the batch holds a primary key "
                f"({', '.join(table.primary_key)}) more than once"
            )
