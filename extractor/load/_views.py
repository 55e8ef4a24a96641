"""BI-ready views over the declared tables, for SQLite and PostgreSQL.

The SQL lives in ``extractor/load/sql/views_<dialect>.sql``, shipped with the package; the
repository's ``sql/`` directory links to the same files for readers. The files name the
tables and views without a prefix or schema; for tables loaded with ``table_prefix`` or
``schema``, every table and view name is rewritten to carry them too.
"""

from __future__ import annotations

import re
from importlib.resources import files

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from extractor.errors import ConfigError, LoadError
from extractor.load._ddl import check_names, check_schema_support
from extractor.load._driver_errors import translated
from extractor.tables._schema import DEPENDENCIES, INSTANCES, TASKS

VIEW_DIALECTS: tuple[str, ...] = ("sqlite", "postgresql")
"""Dialects that have a views file."""

_TABLES_READ = (INSTANCES.name, TASKS.name, DEPENDENCIES.name)
_VIEW_NAME = re.compile(r"^CREATE (?:OR REPLACE )?VIEW (\w+) AS", re.MULTILINE)


def view_sql(dialect: str, *, schema: str | None = None, table_prefix: str = "") -> str:
    """Return the text of the views file for a SQLAlchemy dialect name, for tables named
    with ``table_prefix`` in ``schema``; the views get the same prefix and schema.

    Raises:
        ConfigError: There are no views for that dialect, or the schema or prefix is
            not a plain identifier.

    >>> view_sql("sqlite").splitlines()[0]
    "-- BI views over the extractor's tables, SQLite dialect (3.25 or later: window functions)."
    >>> [line for line in view_sql("postgresql", schema="bi", table_prefix="enos_").splitlines()
    ...  if "AS i ON" in line][0].strip()
    'JOIN "bi"."enos_flow_instances" AS i ON i.instance_id = t.instance_id'
    """
    if dialect not in VIEW_DIALECTS:
        raise ConfigError(
            f"no views for SQL dialect {dialect!r}; available: {', '.join(VIEW_DIALECTS)}"
        )
    text = files("extractor.load").joinpath("sql", f"views_{dialect}.sql").read_text("utf-8")
    if schema is None and not table_prefix:
        return text
    check_names(schema=schema, table_prefix=table_prefix)
    names = re.compile(rf"\b({'|'.join((*_TABLES_READ, *_VIEW_NAME.findall(text)))})\b")
    within = f'"{schema}".' if schema is not None else ""

    def qualified(match: re.Match[str]) -> str:
        return f'{within}"{table_prefix}{match.group(1)}"'

    return "".join(
        line if line.lstrip().startswith("--") else names.sub(qualified, line)
        for line in text.splitlines(keepends=True)
    )


def create_views(engine: Engine, *, schema: str | None = None, table_prefix: str = "") -> list[str]:
    """Create or replace every view on ``engine``'s database; return their names in order.

    The views read the tables named with ``table_prefix`` in ``schema`` (as given to
    :func:`extractor.write_sql`) and are created beside them, with the same prefix. The
    tables must exist already: load once, or run :func:`extractor.load.create_ddl`'s
    statements first. They are checked up front because SQLite would accept a view over
    a missing table and fail only when the view is read.

    Raises:
        ConfigError: There are no views for the engine's dialect, a schema was given on
            SQLite, or the schema or prefix is not a plain identifier.
        LoadError: A table the views read is missing, or the database rejected a statement.
    """
    check_names(schema=schema)  # the name's error first, even on SQLite
    check_schema_support(engine.dialect, schema)
    text = view_sql(engine.dialect.name)
    named = view_sql(engine.dialect.name, schema=schema, table_prefix=table_prefix)
    statements = _split_statements(named)
    names = [table_prefix + name for name in _VIEW_NAME.findall(text)]
    with translated("creating the views"), engine.begin() as conn:
        inspector = sa.inspect(conn)
        missing = [
            table_prefix + t
            for t in _TABLES_READ
            if not inspector.has_table(table_prefix + t, schema=schema)
        ]
        if missing:
            within = f" in schema {schema}" if schema is not None else ""
            raise LoadError(
                f"cannot create the views: missing tables {', '.join(missing)}{within}; "
                "load flows first"
            )
        for statement in statements:
            conn.exec_driver_sql(statement)
    return names


def _split_statements(text: str) -> list[str]:
    """Split SQL text into statements at each line that ends with ``;`` outside a comment.

    The views files put every statement's closing ``;`` at the end of a line and never
    end a comment line with one; that layout is all this relies on. Text after the last
    ``;`` is dropped, so it must be comments only (a test checks the files).

    >>> _split_statements("-- two\\nDROP VIEW IF EXISTS v;\\nCREATE VIEW v AS\\nSELECT 1;\\n")
    ['-- two\\nDROP VIEW IF EXISTS v', 'CREATE VIEW v AS\\nSELECT 1']
    """
    statements: list[str] = []
    lines: list[str] = []
    for line in text.splitlines():
        lines.append(line)
        stripped = line.strip()
        if stripped.endswith(";") and not stripped.startswith("--"):
            statements.append("\n".join(lines).strip().removesuffix(";"))
            lines = []
    return statements
