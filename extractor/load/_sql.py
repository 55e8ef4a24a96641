"""Write flow frames to any SQL database SQLAlchemy reaches, fastest on PostgreSQL and SQLite;
read them back.

One write is one transaction: a reader sees every loaded instance with all its children
or, until the commit, none of the batch. PostgreSQL (psycopg 3) takes a ``COPY`` path,
SQLite a cached ``executemany`` path; every other dialect the portable SQLAlchemy Core path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Dialect, Engine

from extractor.errors import ConfigError, LoadError
from extractor.load._batch import Batch
from extractor.load._ddl import (
    SqlTables,
    as_utc,
    build_tables,
    check_schema_support,
    ensure_tables,
)
from extractor.load._driver_errors import reason, translated
from extractor.load._loader import BaseDestination, LoadResult, WriteMode, check_mode
from extractor.load._portable import write_portable
from extractor.load._postgres import write_postgres
from extractor.load._sqlite import on_sqlite_connect, write_sqlite
from extractor.load._state import Moving, StateStore
from extractor.load._turns import take_turn
from extractor.tables._frames import FlowFrames, rows_to_arrow
from extractor.tables._schema import FAILURES, INSTANCES, TABLES

DEFAULT_CHUNK_SIZE = 50_000
"""Rows per ``executemany`` call or ``COPY`` buffer."""
_READ_ROWS = 50_000

_Writer = Callable[[Connection, SqlTables, Batch, WriteMode, int], int]
"""Writes a batch inside the caller's transaction; returns the instances replaced."""


def connect(engine_or_url: Engine | str | URL) -> Engine:
    """Return an engine for a SQLAlchemy URL (an engine is returned as it is).

    ``postgresql://`` means psycopg 3, the driver this package installs. File SQLite
    databases opened here use write-ahead logging and ``synchronous=NORMAL``: readers do
    not block the loader and a commit costs one sync of the log, not of the database.

    Raises:
        LoadError: The URL cannot be parsed or names a driver that is not installed.
    """
    if isinstance(engine_or_url, Engine):
        return engine_or_url
    try:
        url = sa.make_url(engine_or_url)
    except (sa.exc.ArgumentError, ValueError, TypeError):
        # The text may hold a password, so it is not repeated.
        raise LoadError(
            "not a database URL; expected e.g. sqlite:///path/to/file.db or "
            "postgresql://user@host/database"
        ) from None
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    try:
        engine = sa.create_engine(url)
    except (sa.exc.NoSuchModuleError, ImportError, sa.exc.ArgumentError) as exc:
        raise LoadError(
            f"no usable SQLAlchemy driver for {_label(url)}: {type(exc).__name__}: {exc}"
        ) from None
    if engine.dialect.name == "sqlite" and url.database not in (None, "", ":memory:"):
        sa.event.listen(engine, "connect", on_sqlite_connect)
    return engine


class SqlDestination(BaseDestination):
    """One SQL database as a destination: its tables, its run state, and the queries a
    sync needs. Build one per run: it checks the tables once, on the first write, and
    writes each batch in one transaction (see :func:`write_sql`).

    Args:
        engine_or_url: An engine, or a URL such as ``sqlite:///flows.db``. An engine made
            from a URL here is disposed by :meth:`close`.
        mode: How writes treat rows already there (see :func:`write_sql`); a ``replace``
            destination empties the tables on its first write and upserts after.
        schema: Schema to write into, created if missing (not on SQLite).
        table_prefix: Prefix of every table name, e.g. ``enos_``.
        chunk_size: Rows per ``executemany`` call or ``COPY`` buffer.

    Raises:
        ConfigError: Invalid schema, prefix or chunk size.
        LoadError: The URL cannot be used.
    """

    _sorts_keys = True  # the order B-tree indexes insert fastest

    def __init__(
        self,
        engine_or_url: Engine | str | URL,
        *,
        mode: WriteMode = "upsert",
        schema: str | None = None,
        table_prefix: str = "",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ConfigError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        self.mode: WriteMode = check_mode(mode)
        self.schema, self.table_prefix = schema, table_prefix
        self._tables = build_tables(schema=schema, table_prefix=table_prefix)
        self._state: StateStore | None = None
        self._chunk_size = chunk_size
        self._owns_engine = not isinstance(engine_or_url, Engine)
        self.engine = connect(engine_or_url)
        try:
            check_schema_support(self.engine.dialect, schema)
        except ConfigError:
            self.close()
            raise
        self._writer = _choose_writer(self.engine.dialect)
        self._is_ready = False
        self.label = _label(self.engine.url)
        """The database's URL without its password, for messages."""

    def _ensure(self, conn: Connection) -> None:
        if not self._is_ready:
            with translated(f"creating or checking the tables in {self.label}"), conn.begin():
                take_turn(conn, self.schema)
                ensure_tables(conn, self._tables, self.schema)
            self._is_ready = True

    @property
    def state(self) -> StateStore:
        """The run state (resume checkpoints, sync watermarks), in tables beside the
        data; the data tables are made first, so that the state tables find their schema."""
        if self._state is None:
            with self._connection() as conn:
                self._ensure(conn)
            self._state = StateStore(
                self.engine, schema=self.schema, table_prefix=self.table_prefix, label=self.label
            )
        return self._state

    def _write(self, batch: Batch, mode: WriteMode) -> int:
        with self._connection() as conn:
            self._ensure(conn)
            with translated(f"writing ({mode}) to {self.label}"), conn.begin():
                # One batch's transaction at a time (see ``_turns``): two writers finding a
                # table empty would both COPY into it, and the later would fail on the
                # earlier's keys (seen with four runs started together). Fetching, the slow
                # part, still runs side by side.
                take_turn(conn, self.schema)
                return self._writer(conn, self._tables, batch, mode, self._chunk_size)

    def read(self) -> FlowFrames:
        """Read every table back; see :func:`read_sql`."""
        tables = {}
        with self._connection() as conn, translated(f"reading the tables of {self.label}"):
            inspector = sa.inspect(conn)
            for declared in TABLES:
                table = self._tables[declared.name]
                if not inspector.has_table(table.name, schema=self.schema):
                    continue
                found = {c["name"] for c in inspector.get_columns(table.name, self.schema)}
                columns = [
                    table.c[c.name] if c.name in found else sa.null().label(c.name)
                    for c in declared.columns
                ]
                order = [table.c[k] for k in declared.primary_key]
                result = conn.execute(sa.select(*columns).order_by(*order))
                parts = [
                    rows_to_arrow(declared, [dict(r._mapping) for r in rows])
                    for rows in result.partitions(_READ_ROWS)
                ]
                if parts:
                    tables[declared.name] = pa.concat_tables(parts)
        return FlowFrames(tables)  # tables with no rows come out empty

    def finish(self) -> None:
        """Nothing to do: each batch is committed in its own transaction."""

    def failed_ids(self) -> list[str]:
        """The IDs in ``failed_instances``."""
        failures = self._tables[FAILURES.name]
        return [i for (i,) in self._rows(failures, sa.select(failures.c.instance_id))]

    def terminal_ids(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` are loaded in a terminal status (nothing left to fetch)."""
        table = self._tables[INSTANCES.name]
        query = sa.select(table.c.instance_id).where(
            table.c.instance_id.in_(ids), table.c.is_terminal.is_(True)
        )
        return {i for (i,) in self._rows(table, query)} if ids else set()

    def moving(self) -> dict[str, Moving]:
        """Instances loaded in a status that can still change (RUNNING, WAIT, ...)."""
        table = self._tables[INSTANCES.name]
        query = sa.select(table.c.instance_id, table.c.trigger_time, table.c.extracted_at).where(
            sa.or_(table.c.is_terminal.is_(False), table.c.is_terminal.is_(None))
        )
        return {i: Moving(as_utc(t), as_utc(e)) for i, t, e in self._rows(table, query)}

    def _rows(self, table: sa.Table, query: sa.Select[Any]) -> list[Any]:
        """The rows of ``query`` on ``table``, or none while ``table`` does not exist."""
        with self._connection() as conn:
            if not sa.inspect(conn).has_table(table.name, schema=self.schema):
                return []
            return list(conn.execute(query))

    def close(self) -> None:
        """Dispose of the engine if this destination made it."""
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> SqlDestination:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connection(self) -> Connection:
        try:
            return self.engine.connect()
        except sa.exc.DBAPIError as exc:
            raise LoadError(f"cannot open {self.label}: {reason(exc)}") from None


def write_sql(
    frames: FlowFrames,
    engine_or_url: Engine | str | URL,
    *,
    mode: WriteMode = "upsert",
    schema: str | None = None,
    table_prefix: str = "",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> LoadResult:
    """Write every table of ``frames`` to a SQL database in one transaction.

    Missing tables, indexes and columns are created first. ``upsert`` replaces each
    loaded instance with all its children (children that vanished are deleted, and a
    task now claimed by a loaded instance leaves its former instance); ``append`` only
    inserts; ``replace`` empties every table first (on PostgreSQL by ``TRUNCATE``, so
    readers wait for the commit instead of seeing empty tables). Whatever the mode,
    failures are upserted by ``instance_id`` and each instance loaded here leaves
    ``failed_instances``. The other arguments are those of :class:`SqlDestination`.

    Raises:
        ConfigError: Invalid mode, schema, prefix or chunk size.
        LoadError: Unusable URL, unreachable database, incompatible existing column, or
            (``append``) a key already present.
    """
    with SqlDestination(
        engine_or_url, schema=schema, table_prefix=table_prefix, chunk_size=chunk_size
    ) as destination:
        return destination.write(frames, mode=mode)


def read_sql(
    engine_or_url: Engine | str | URL, *, schema: str | None = None, table_prefix: str = ""
) -> FlowFrames:
    """Read back every table that :func:`write_sql` wrote, typed as declared.

    Timestamps come back in UTC and booleans as booleans whatever the database stores
    (SQLite keeps both as text and integers); rows are in key order. A table not created
    yet is empty, and a column an older table lacks reads as nulls.

    Raises:
        ConfigError: Invalid schema or prefix.
        LoadError: Unusable URL or unreachable database.
    """
    with SqlDestination(engine_or_url, schema=schema, table_prefix=table_prefix) as destination:
        return destination.read()


def _choose_writer(dialect: Dialect) -> _Writer:
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return write_postgres
    if dialect.name == "sqlite" and dialect.driver == "pysqlite":
        return write_sqlite
    return write_portable


def _label(url: URL) -> str:
    return url.render_as_string(hide_password=True)
