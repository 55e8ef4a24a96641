"""SQL tables derived from :mod:`extractor.tables._schema`: DDL text and schema migration.

``sql/sqlite.sql`` and ``sql/postgresql.sql`` hold :func:`create_ddl`'s output; a test keeps
them equal to it. Regenerate them with::

    python -c "from extractor.load import create_ddl; print(create_ddl('sqlite'), end='')" \\
        > sql/sqlite.sql
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import NoSuchModuleError
from sqlalchemy.schema import (
    CreateColumn,
    CreateIndex,
    CreateSchema,
    CreateTable,
    SetColumnComment,
    SetTableComment,
)
from sqlalchemy.sql.elements import quoted_name
from sqlalchemy.types import TypeDecorator, TypeEngine

from extractor.errors import ConfigError, LoadError
from extractor.tables._schema import (
    DEPENDENCIES,
    PARAMETERS,
    RELATIONS,
    TABLES,
    TASKS,
    LogicalType,
    Table,
)

_SQLITE_WITHOUT_ROWID = frozenset({TASKS, DEPENDENCIES, RELATIONS, PARAMETERS})
"""Narrow child tables SQLite stores in their primary key's B-tree.

One B-tree fewer to update per row: these tables loaded about a quarter faster. Those
that hold raw JSON keep their rowid, as SQLite advises for rows over ~1/20 of a page.
"""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_MAX_IDENTIFIER = 63

SQLITE_TIMESTAMP_FORMAT = (
    "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d+00:00"
)
"""How SQLite stores a timestamp: ISO-8601 UTC text with an explicit offset.

A space, not ``T``, separates date and time, as in SQLite's own ``datetime()``, so text
comparisons against its date functions order correctly. The offset makes every reader
(``datetime.fromisoformat``, SQLAlchemy, pandas) return UTC-aware values.
"""


class UtcDateTime(TypeDecorator[datetime]):
    """A UTC-aware timestamp on every dialect; ISO-8601 UTC text on SQLite."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            text = sqlite.DATETIME(storage_format=SQLITE_TIMESTAMP_FORMAT)  # type: ignore[no-untyped-call]
            return dialect.type_descriptor(text)
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"timestamp {value.isoformat()} has no time zone; UTC is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        return as_utc(value)


def as_utc(value: object) -> datetime | None:
    """A time as read back from a destination: this store only holds UTC, so a naive one
    (SQLite's, or written by another tool) means UTC."""
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sql_type(logical: LogicalType) -> TypeEngine[Any]:
    types: dict[LogicalType, TypeEngine[Any]] = {
        "string": sa.Text(),
        "int64": sa.BigInteger(),
        "float64": sa.Double(),
        "bool": sa.Boolean(),
        "timestamp": UtcDateTime(),
        "date": sa.Date(),
    }
    return types[logical]


def check_names(*, schema: str | None = None, table_prefix: str = "") -> None:
    """Raise :class:`ConfigError` unless the schema and the prefix are plain SQL identifiers."""
    for what, value in (("schema", schema), ("table_prefix", table_prefix or None)):
        if value is not None and not (isinstance(value, str) and _IDENTIFIER.fullmatch(value)):
            raise ConfigError(
                f"{what} must match {_IDENTIFIER.pattern} (letters, digits, underscores), "
                f"got {value!r}"
            )


SqlTables = Mapping[str, sa.Table]
"""The declared tables as SQLAlchemy tables (named with a prefix, in a schema), by name."""


def build_tables(*, schema: str | None = None, table_prefix: str = "") -> SqlTables:
    """Build the declared tables, their primary keys and indexes.

    Raises:
        ConfigError: ``schema`` or ``table_prefix`` is not a plain identifier, or a
            prefixed table name would be longer than 63 characters.
    """
    check_names(schema=schema, table_prefix=table_prefix)
    metadata = sa.MetaData()
    return MappingProxyType(
        {t.name: _build_table(t, metadata, schema, table_prefix) for t in TABLES}
    )


def _build_table(table: Table, metadata: sa.MetaData, schema: str | None, prefix: str) -> sa.Table:
    name = prefix + table.name
    if len(name) > _MAX_IDENTIFIER:
        raise ConfigError(f"table_prefix {prefix!r} makes {name!r} longer than 63 characters")
    columns = [
        sa.Column(c.name, _sql_type(c.type), nullable=c.nullable, comment=c.description)
        for c in table.columns
    ]
    indexes = [sa.Index(_index_name(name, cols), *cols) for cols in table.indexes]
    return sa.Table(
        quoted_name(name, quote=True),
        metadata,
        *columns,
        sa.PrimaryKeyConstraint(*table.primary_key),
        *indexes,
        schema=quoted_name(schema, quote=True) if schema else None,
        comment=table.description,
        sqlite_with_rowid=table not in _SQLITE_WITHOUT_ROWID,
    )


def _index_name(table_name: str, columns: tuple[str, ...]) -> str:
    name = f"ix_{table_name}_{'_'.join(columns)}"
    if len(name) <= _MAX_IDENTIFIER:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: _MAX_IDENTIFIER - 9]}_{digest}"


def create_ddl(dialect: str, *, schema: str | None = None, table_prefix: str = "") -> str:
    """Return the CREATE TABLE and CREATE INDEX statements of every declared table.

    Args:
        dialect: A SQLAlchemy dialect name such as ``sqlite`` or ``postgresql``.
        schema: Schema to create the tables in (not on SQLite).
        table_prefix: Prefix of every table name.

    Raises:
        ConfigError: Unknown dialect, invalid identifier, or a schema on SQLite.

    >>> print(create_ddl("sqlite").splitlines()[2])
    CREATE TABLE IF NOT EXISTS "flow_instances" (
    """
    target = _dialect(dialect)
    check_schema_support(target, schema)
    tables = build_tables(schema=schema, table_prefix=table_prefix)
    statements: list[Any] = []
    if schema:
        statements.append(CreateSchema(quoted_name(schema, quote=True), if_not_exists=True))
    for t in TABLES:
        table = tables[t.name]
        statements.append(CreateTable(table, if_not_exists=True))
        statements.extend(
            CreateIndex(i, if_not_exists=True)
            for i in sorted(table.indexes, key=lambda i: str(i.name))
        )
        if target.supports_comments:
            statements.append(SetTableComment(table))
            statements.extend(SetColumnComment(c) for c in table.columns)
    options = {"schema": schema, "table_prefix": table_prefix}
    args = [repr(dialect), *(f"{name}={value!r}" for name, value in options.items() if value)]
    header = (
        f"-- Generated by extractor.load.create_ddl({', '.join(args)}) from "
        "extractor/tables/_schema.py; do not edit.\n"
    )
    text = header
    for previous, statement in zip([None, *statements], statements, strict=False):
        # Comments follow their table as one block; other statements stand apart.
        is_comment = isinstance(statement, SetTableComment | SetColumnComment)
        is_block = is_comment and isinstance(previous, SetTableComment | SetColumnComment)
        text += ("" if is_block else "\n") + f"{_render(statement, target)};\n"
    return text


def _render(statement: Any, dialect: Dialect) -> str:
    text = str(statement.compile(dialect=dialect)).strip().replace("\t", "    ")
    return "\n".join(line.rstrip() for line in text.splitlines())


def _dialect(name: str) -> Dialect:
    try:
        cls = sa.engine.make_url(f"{name}://").get_dialect()
    except (NoSuchModuleError, sa.exc.ArgumentError) as exc:
        raise ConfigError(f"unknown SQL dialect {name!r}") from exc
    dialect: Dialect = cls()
    return dialect


def check_schema_support(dialect: Dialect, schema: str | None) -> None:
    """Reject ``schema=`` on SQLite, whose schemas are attached database files."""
    if schema is not None and dialect.name == "sqlite":
        raise ConfigError("SQLite has no schemas; use table_prefix= to keep tables apart")


def ensure_tables(conn: Connection, tables: SqlTables, schema: str | None) -> None:
    """Create what is missing (schema, tables, columns, indexes) and check what exists.

    Raises:
        LoadError: An existing column's type cannot hold the declared type, or an
            existing table lacks a key column or its primary key.
    """
    inspector = sa.inspect(conn)
    if schema is not None and not inspector.has_schema(schema):
        conn.execute(CreateSchema(quoted_name(schema, quote=True), if_not_exists=True))
    for declared in TABLES:
        table = tables[declared.name]
        if not inspector.has_table(table.name, schema=schema):
            table.create(conn)
            continue
        _migrate(conn, inspector, declared, table)


def _migrate(conn: Connection, inspector: sa.Inspector, declared: Table, table: sa.Table) -> None:
    schema = table.schema
    where = f"{schema}.{table.name}" if schema else str(table.name)
    existing = {c["name"]: c for c in inspector.get_columns(table.name, schema=schema)}
    for column in table.columns:
        found = existing.get(column.name)
        if found is None:
            if not column.nullable:
                raise LoadError(f"{where} exists without key column {column.name!r}")
            ddl = CreateColumn(column).compile(dialect=conn.dialect)
            preparer = conn.dialect.identifier_preparer
            conn.exec_driver_sql(f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {ddl}")
            continue
        logical = declared.column(column.name).type
        if not _is_compatible(logical, found["type"], conn.dialect.name):
            raise LoadError(
                f"{where}.{column.name} is {_describe(found['type'], conn.dialect)} in the "
                f"database but declared {logical}; migrate or drop that column"
            )
    pk = inspector.get_pk_constraint(table.name, schema=schema)
    indexes = inspector.get_indexes(table.name, schema=schema)
    constraints = inspector.get_unique_constraints(table.name, schema=schema)
    unique: list[set[str | None]] = [set(c["column_names"]) for c in constraints]
    unique += [set(i["column_names"]) for i in indexes if i["unique"]]
    key: set[str | None] = set(declared.primary_key)
    if set(pk["constrained_columns"]) != key and key not in unique:
        raise LoadError(f"{where} exists without primary key ({', '.join(declared.primary_key)})")
    indexed: set[tuple[str | None, ...]] = {tuple(i["column_names"]) for i in indexes}
    for index in table.indexes:
        if tuple(c.name for c in index.columns) not in indexed:
            index.create(conn)


def _is_compatible(logical: LogicalType, found: TypeEngine[Any], dialect_name: str) -> bool:
    # SQLite stores every integer in 8 bytes and every real as a double.
    is_sqlite = dialect_name == "sqlite"
    if logical == "string":
        return isinstance(found, sa.String) and getattr(found, "length", None) is None
    if logical == "int64":
        return isinstance(found, sa.BigInteger) or (
            is_sqlite and isinstance(found, sa.Integer) and not isinstance(found, sa.SmallInteger)
        )
    if logical == "float64":
        if isinstance(found, sa.Double):
            return True
        return isinstance(found, sa.Float) and (is_sqlite or (found.precision or 0) >= 53)
    if logical == "bool":
        return isinstance(found, sa.Boolean) or (is_sqlite and isinstance(found, sa.Integer))
    if logical == "timestamp":
        return isinstance(found, sa.DateTime) and (is_sqlite or bool(found.timezone))
    return isinstance(found, sa.Date)


def _describe(found: TypeEngine[Any], dialect: Dialect) -> str:
    try:
        return str(found.compile(dialect=dialect))
    except sa.exc.CompileError:
        return repr(found)
