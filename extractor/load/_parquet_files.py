"""The layout of a Parquet directory, and the file reads and writes its parts share."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from extractor.errors import LoadError
from extractor.tables._frames import arrow_schema
from extractor.tables._schema import Table

PARTITION_COLUMN = "cal_dt"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
PART_FILE = "part-0.parquet"
"""After compaction a partition is this one file (see the README on why one)."""

_COMPRESSION = "snappy"


@contextmanager
def failing_as(doing: str) -> Iterator[None]:
    """Re-raise a file's or Arrow's error as a :class:`LoadError`: ``<doing>: <reason>``."""
    try:
        yield
    except (OSError, pa.ArrowException) as exc:
        raise LoadError(f"{doing}: {exc}") from exc


def read_arrow(path: Path) -> Generator[pa.Table, None, None]:
    """Yield an Arrow file's schema as an empty table, then its record batches one by one."""
    with failing_as(f"cannot read {path}"), pa.ipc.open_file(pa.OSFile(str(path))) as reader:
        yield reader.schema.empty_table()
        for n in range(reader.num_record_batches):
            yield pa.Table.from_batches([reader.get_batch(n)])


def data_files(folder: Path) -> list[Path]:
    """The Parquet files a dataset reader would see in ``folder``."""
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.suffix == ".parquet" and not p.name.startswith((".", "_"))
    )


def make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LoadError(f"cannot create directory {path}: {exc.strerror or exc}") from exc


def partition_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.glob(f"{PARTITION_COLUMN}=*") if p.is_dir())


def partition_value(folder: Path) -> str:
    return folder.name.split("=", 1)[1]


def partition_folder(root: Path, value: str) -> Path:
    return root / f"{PARTITION_COLUMN}={value}"


def file_schema(table: Table) -> pa.Schema:
    """The declared schema less the partition column, which lives in the path."""
    schema = arrow_schema(table)
    if PARTITION_COLUMN in schema.names:
        schema = schema.remove(schema.get_field_index(PARTITION_COLUMN))
    return schema


def text_partitioning() -> ds.Partitioning:
    """Hive partitioning with the partition value as text, as it is in the path."""
    return ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.string())]), flavor="hive")


def read_files(
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
    with failing_as(f"cannot read {table.name} files under {files[0].parent}"):
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


def _check_types(found: pa.Schema, declared: pa.Schema, table: Table, file: Path) -> None:
    for field in found:
        index = declared.get_field_index(field.name)
        if index >= 0 and declared.field(index).type != field.type:
            raise LoadError(
                f"{file}: column {table.name}.{field.name} is {field.type}, declared "
                f"{declared.field(index).type}; move the file away or rewrite it"
            )


def write_file(data: pa.Table, path: Path, *, row_group_size: int | None = None) -> None:
    """Write ``data`` as the Parquet file ``path`` (a staging path no reader looks at)."""
    try:
        pq.write_table(data, path, compression=_COMPRESSION, row_group_size=row_group_size)
    except OSError as exc:
        raise LoadError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_partitions(data: pa.Table, root: Path) -> set[str]:
    """Write ``data`` as ``root/cal_dt=<value>/part-0.parquet``, one file per value.

    ``data`` holds every row of each partition it names, with the partition value as a
    text column, which is left out of the files. One file at a time per thread: Arrow's
    dataset writer keeps every partition's file open at once, which measured 1.7x
    slower and 95 MB heavier for 700 partitions.

    Returns:
        The partition values written.
    """
    if not data.num_rows:
        return set()
    data = data.sort_by(PARTITION_COLUMN)
    values = data.column(PARTITION_COLUMN).combine_chunks()
    starts = pc.indices_nonzero(pc.not_equal(values.slice(1), values.slice(0, len(values) - 1)))
    bounds = [0, *(i + 1 for i in starts.to_pylist()), len(values)]
    rows = data.drop_columns([PARTITION_COLUMN])

    def write(run: int) -> str:
        first, end = bounds[run], bounds[run + 1]
        value = str(values[first].as_py())
        folder = partition_folder(root, value)
        make_dir(folder)
        write_file(rows.slice(first, end - first), folder / PART_FILE)
        return value

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return set(pool.map(write, range(len(bounds) - 1)))


def row_count(files: list[Path]) -> int:
    """Rows in these Parquet files, from their footers."""
    with failing_as(f"cannot read {files[0].parent}"):
        return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


class SortedReader:
    """Reads a Parquet file sorted by partition value, one range of values at a time.

    The file is decoded once, in record batches of ``rows``, and only the rest of the
    current record batch is held between ranges; a compaction that reads many files
    side by side gives each a share of its chunk.
    """

    def __init__(self, path: Path, *, rows: int) -> None:
        with failing_as(f"cannot read {path}"):
            # Buffered reads: a row group's column chunks are not held whole.
            self._file = pq.ParquetFile(path, buffer_size=1 << 16, pre_buffer=False)
            self._batches = self._file.iter_batches(batch_size=rows)
        self._path = path
        self._held = self._file.schema_arrow.empty_table()

    def until(self, last: str) -> pa.Table:
        """The rows after the previous range, up to partition value ``last`` included."""
        parts = [self._held.slice(0, 0)]
        while True:
            if not self._held.num_rows:
                with failing_as(f"cannot read {self._path}"):
                    batch = next(self._batches, None)
                if batch is None:
                    break
                self._held = pa.Table.from_batches([batch])
            values = self._held.column(PARTITION_COLUMN)
            inside = int(pc.sum(pc.less_equal(values, last)).as_py() or 0)
            parts.append(self._held.slice(0, inside))
            self._held = self._held.slice(inside)
            if self._held.num_rows:
                break
        return pa.concat_tables(parts)

    def close(self) -> None:
        self._file.close()
