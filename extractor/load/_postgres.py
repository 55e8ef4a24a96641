"""The PostgreSQL write path: psycopg 3 ``COPY`` of Arrow-written CSV, set-based merges.

Arrow renders each chunk as CSV in C++ (every string quoted, so an empty string differs
from a null), which ``COPY ... (FORMAT csv)`` reads back exactly. An empty table (a first
load, ``replace``, or ``append``) takes the rows straight from ``COPY``. A table that
already holds rows gets them through a temporary staging table and a merge: rows of
re-loaded instances that vanished are deleted, then ``INSERT ... ON CONFLICT DO UPDATE``
writes only the rows that changed. Re-loading unchanged instances therefore rewrites
nothing, which keeps a second upsert about as fast as the first load and leaves no dead
rows behind.
"""

from __future__ import annotations

import io
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import Connection

from extractor.load._batch import Batch, as_sql_text
from extractor.load._ddl import SqlTables
from extractor.load._driver_errors import translated
from extractor.load._loader import WriteMode
from extractor.tables._schema import FAILURES, INSTANCES, TABLES, Table

_LOADED = sql.Identifier("_enos_loaded_instances")
_CSV = pa_csv.WriteOptions(include_header=False)


def write_postgres(
    conn: Connection, tables: SqlTables, batch: Batch, mode: WriteMode, chunk_size: int
) -> int:
    """Write ``batch`` with ``COPY`` through psycopg; return the instances replaced."""
    raw = conn.connection.dbapi_connection
    assert isinstance(raw, psycopg.Connection)
    replaced = 0
    with raw.cursor() as cur:
        if mode == "replace":
            names = sql.SQL(", ").join(_name(tables[t.name]) for t in TABLES)
            with translated("emptying the tables"):
                cur.execute(sql.SQL("TRUNCATE {}").format(names))
        cur.execute(
            sql.SQL("CREATE TEMP TABLE {} (instance_id text PRIMARY KEY) ON COMMIT DROP").format(
                _LOADED
            )
        )
        _copy(cur, _LOADED, pa.table({"instance_id": batch.instance_ids}), chunk_size)
        cur.execute(sql.SQL("ANALYZE {}").format(_LOADED))
        if mode == "upsert":
            count = sql.SQL("SELECT count(*) FROM {} p JOIN {} l USING (instance_id)")
            row = cur.execute(count.format(_name(tables[INSTANCES.name]), _LOADED)).fetchone()
            replaced = int(row[0]) if row else 0
        with translated(f"deleting resolved rows of {tables[FAILURES.name].name}"):
            cur.execute(
                sql.SQL("DELETE FROM {} t USING {} l WHERE t.instance_id = l.instance_id").format(
                    _name(tables[FAILURES.name]), _LOADED
                )
            )
        for t in TABLES:
            target = tables[t.name]
            data = batch.tables[t.name]
            with translated(f"{mode} into {target.name}"):
                if (mode == "upsert" or t is FAILURES) and not _is_empty(cur, target):
                    _merge(cur, t, target, data, chunk_size)
                else:
                    _copy(cur, _name(target), data, chunk_size)
    return replaced


def _name(table: sa.Table) -> sql.Identifier:
    return sql.Identifier(*(str(part) for part in (table.schema, table.name) if part))


def _columns(names: list[str], prefix: str = "") -> sql.Composed:
    return sql.SQL(", ").join(sql.SQL(prefix) + sql.Identifier(n) for n in names)


def _is_empty(cur: psycopg.Cursor[Any], table: sa.Table) -> bool:
    row = cur.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(_name(table))).fetchone()
    return not (row and row[0])


def _copy(cur: psycopg.Cursor[Any], target: sql.Composable, data: pa.Table, size: int) -> None:
    if not data.num_rows:
        return
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        target, _columns(data.column_names)
    )
    with cur.copy(statement) as copy:
        for batch in data.to_batches(max_chunksize=size):
            if batch.num_rows:
                buffer = io.BytesIO()
                pa_csv.write_csv(as_sql_text(batch), buffer, write_options=_CSV)
                copy.write(buffer.getbuffer())


def _merge(
    cur: psycopg.Cursor[Any], declared: Table, target: sa.Table, data: pa.Table, size: int
) -> None:
    """Make ``target`` hold ``data`` for the loaded instances, writing only what changed."""
    names = data.column_names
    keys = list(declared.primary_key)
    others = [n for n in names if n not in keys]
    stage = sql.Identifier(f"_enos_stage_{declared.name}")
    cur.execute(
        sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
            stage, _columns(names), _name(target)
        )
    )
    _copy(cur, stage, data, size)
    cur.execute(sql.SQL("ANALYZE {}").format(stage))
    if declared is not INSTANCES and declared is not FAILURES:
        # Rows of re-loaded instances that the new batch no longer has.
        match = sql.SQL(" AND ").join(
            sql.SQL("s.{} = t.{}").format(sql.Identifier(k), sql.Identifier(k)) for k in keys
        )
        cur.execute(
            sql.SQL(
                "DELETE FROM {target} t USING {loaded} l WHERE t.instance_id = l.instance_id "
                "AND NOT EXISTS (SELECT 1 FROM {stage} s WHERE {match})"
            ).format(target=_name(target), loaded=_LOADED, stage=stage, match=match)
        )
    action: sql.Composable = sql.SQL("NOTHING")
    if others:
        # A key held by another instance (a claimed task) moves with the update.
        action = sql.SQL(
            "UPDATE SET ({cols}) = ROW({new}) WHERE ROW({old}) IS DISTINCT FROM ROW({new})"
        ).format(
            cols=_columns(others),
            new=_columns(others, "EXCLUDED."),
            old=_columns(others, "t."),
        )
    cur.execute(
        sql.SQL(
            "INSERT INTO {target} AS t ({cols}) SELECT {cols} FROM {stage} "
            "ON CONFLICT ({keys}) DO {action}"
        ).format(
            target=_name(target),
            cols=_columns(names),
            stage=stage,
            keys=_columns(keys),
            action=action,
        )
    )
    cur.execute(sql.SQL("DROP TABLE {}").format(stage))
