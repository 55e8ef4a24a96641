"""The SQL write path for any dialect: SQLAlchemy Core, one transaction, chunked statements."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from extractor.load._batch import CLAIMABLE_TABLES, Batch
from extractor.load._ddl import SqlTables
from extractor.load._driver_errors import translated
from extractor.load._loader import WriteMode
from extractor.tables._schema import DATA_TABLES, FAILURES, INSTANCES, TABLES

_ID_CHUNK = 500
"""Keys per ``IN (...)`` list: far below every dialect's bound-parameter limit."""


def write_portable(
    conn: Connection, tables: SqlTables, batch: Batch, mode: WriteMode, chunk_size: int
) -> int:
    """Write ``batch`` with plain Core statements; return the instances replaced."""
    replaced = 0
    loaded = batch.instance_ids.to_pylist()
    if mode == "replace":
        for t in TABLES:
            with translated(f"emptying {tables[t.name].name}"):
                conn.execute(sa.delete(tables[t.name]))
    if mode == "upsert":
        replaced = _count_existing(conn, tables[INSTANCES.name], loaded)
        for t in DATA_TABLES:
            _delete_keys(conn, tables[t.name], ("instance_id",), [(i,) for i in loaded])
        for t in CLAIMABLE_TABLES:
            data = batch.tables[t.name]
            keys = list(zip(*(data.column(c).to_pylist() for c in t.primary_key), strict=True))
            _delete_keys(conn, tables[t.name], t.primary_key, keys)
    failed = batch.tables[FAILURES.name].column("instance_id").to_pylist()
    _delete_keys(conn, tables[FAILURES.name], ("instance_id",), [(i,) for i in loaded + failed])
    for t in TABLES:
        target = tables[t.name]
        with translated(f"{mode} into {target.name}"):
            for rows in _chunks(batch.tables[t.name], chunk_size):
                conn.execute(sa.insert(target), rows)
    return replaced


def _count_existing(conn: Connection, parent: sa.Table, ids: list[Any]) -> int:
    count = 0
    for chunk in _slices(ids, _ID_CHUNK):
        query = sa.select(sa.func.count()).where(parent.c.instance_id.in_(chunk))
        count += conn.execute(query).scalar_one()
    return count


def _delete_keys(
    conn: Connection, table: sa.Table, columns: tuple[str, ...], keys: list[tuple[Any, ...]]
) -> None:
    cols = [table.c[name] for name in columns]
    with translated(f"deleting replaced rows of {table.name}"):
        for chunk in _slices(keys, _ID_CHUNK):
            if len(cols) == 1:
                where = cols[0].in_([k[0] for k in chunk])
            else:
                where = sa.tuple_(*cols).in_(chunk)
            conn.execute(sa.delete(table).where(where))


def _chunks(data: pa.Table, size: int) -> Iterator[list[dict[str, Any]]]:
    for batch in data.to_batches(max_chunksize=size):
        if batch.num_rows:
            yield batch.to_pylist()


def _slices(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
