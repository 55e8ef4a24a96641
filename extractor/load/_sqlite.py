"""The SQLite write path: the driver's ``executemany`` with cached statements, one transaction.

Arrow converts timestamps and dates to SQLite's text forms column by column, so the per-row
work left is the driver's: far faster than SQLAlchemy's per-value type processing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateIndex, DropIndex

from extractor.load._batch import Batch, as_sql_text
from extractor.load._ddl import SqlTables
from extractor.load._driver_errors import translated
from extractor.load._loader import WriteMode
from extractor.tables._schema import CHILD_TABLES, FAILURES, INSTANCES, TABLES

_LOADED = "_enos_loaded_instances"
"""Temporary table of the batch's instance IDs, for set-based deletes."""


def on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    """Use write-ahead logging, larger pages (in a new file) and a larger page cache."""
    with closing(dbapi_connection.cursor()) as cursor:
        # Only a new database takes it: 16 KiB pages loaded ~10% faster than 4 KiB.
        cursor.execute("PRAGMA page_size=16384")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # 64 MiB of page cache keeps the key indexes of a large batch in memory.
        cursor.execute("PRAGMA cache_size=-65536")


def write_sqlite(
    conn: Connection, tables: SqlTables, batch: Batch, mode: WriteMode, chunk_size: int
) -> int:
    """Write ``batch`` through the driver's cursor; return the instances replaced."""
    raw = conn.connection.dbapi_connection
    assert isinstance(raw, sqlite3.Connection)
    replaced = 0
    with closing(raw.cursor()) as cursor:
        _stage_loaded_ids(cursor, batch)
        if mode == "replace":
            for t in TABLES:
                with translated(f"emptying {tables[t.name].name}"):
                    cursor.execute(f"DELETE FROM {_quoted(conn, tables[t.name])}")
        if mode == "upsert":
            parent = _quoted(conn, tables[INSTANCES.name])
            cursor.execute(
                f"SELECT count(*) FROM {parent} WHERE instance_id IN "
                f"(SELECT instance_id FROM temp.{_LOADED})"
            )
            replaced = int(cursor.fetchone()[0])
            for t in CHILD_TABLES:
                _delete_loaded(conn, cursor, tables[t.name])
        _delete_loaded(conn, cursor, tables[FAILURES.name])
        for t in TABLES:
            target = tables[t.name]
            # Upserting a claimable child moves its row from a former instance;
            # failures are upserted whatever the mode.
            is_upsert = mode == "upsert" or t is FAILURES
            statement = _insert_sql(conn, target, is_upsert)
            deferred = _drop_indexes_if_empty(conn, cursor, target)
            with translated(f"{mode} into {target.name}"):
                for rows in _row_chunks(batch.tables[t.name], chunk_size):
                    cursor.executemany(statement, rows)
            for index in deferred:
                cursor.execute(str(CreateIndex(index).compile(dialect=conn.dialect)))
        cursor.execute(f"DROP TABLE temp.{_LOADED}")
    return replaced


def _drop_indexes_if_empty(
    conn: Connection, cursor: sqlite3.Cursor, table: sa.Table
) -> list[sa.Index]:
    """Drop an empty table's declared indexes, for rebuilding once it is loaded.

    Building an index from a loaded table (one sort) beats updating it row by row:
    a first load measured about 10% faster. The transaction hides the gap from readers.
    """
    if cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {_quoted(conn, table)})").fetchone()[0]:
        return []
    dropped = sorted(table.indexes, key=lambda i: str(i.name))
    for index in dropped:
        cursor.execute(str(DropIndex(index, if_exists=True).compile(dialect=conn.dialect)))
    return dropped


def _stage_loaded_ids(cursor: sqlite3.Cursor, batch: Batch) -> None:
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_LOADED} (instance_id TEXT PRIMARY KEY)")
    cursor.execute(f"DELETE FROM temp.{_LOADED}")
    ids = batch.instance_ids.to_pylist()
    cursor.executemany(f"INSERT INTO temp.{_LOADED} VALUES (?)", zip(ids, strict=True))


def _delete_loaded(conn: Connection, cursor: sqlite3.Cursor, table: sa.Table) -> None:
    with translated(f"deleting replaced rows of {table.name}"):
        cursor.execute(
            f"DELETE FROM {_quoted(conn, table)} WHERE instance_id IN "
            f"(SELECT instance_id FROM temp.{_LOADED})"
        )


def _quoted(conn: Connection, table: sa.Table) -> str:
    return conn.dialect.identifier_preparer.format_table(table)


def _insert_sql(conn: Connection, table: sa.Table, is_upsert: bool) -> str:
    """Compile one INSERT (or INSERT ... ON CONFLICT DO UPDATE) with ``?`` in column order."""
    names = [c.name for c in table.columns]
    statement = sqlite_insert(table).values({n: sa.bindparam(n) for n in names})
    if is_upsert:
        keys = [c.name for c in table.primary_key.columns]
        others = [n for n in names if n not in keys]
        if others:
            statement = statement.on_conflict_do_update(
                index_elements=keys, set_={n: statement.excluded[n] for n in others}
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=keys)
    compiled = statement.compile(dialect=conn.dialect, column_keys=names)
    if list(compiled.positiontup or ()) != names:
        raise AssertionError(f"unexpected parameter order for {table.name}")
    return str(compiled)


def _row_chunks(data: pa.Table, size: int) -> Iterator[Iterator[tuple[Any, ...]]]:
    for batch in data.to_batches(max_chunksize=size):
        if batch.num_rows:
            yield zip(*(c.to_pylist() for c in as_sql_text(batch).columns), strict=True)
