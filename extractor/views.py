"""BI-ready views over the declared tables, for SQLite and PostgreSQL.

The SQL lives in ``extractor/sql/views_<dialect>.sql``, shipped with the package; the
repository's ``sql/`` directory links to the same files for readers. The views read the
tables under their default names, without a prefix or schema.
"""

from __future__ import annotations

import re
from importlib.resources import files

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from extractor.errors import ConfigError, LoadError
from extractor.loaders._driver_errors import translated
from extractor.schema import DEPENDENCIES, INSTANCES, TASKS

__all__ = ["VIEW_DIALECTS", "create_views", "view_sql"]

VIEW_DIALECTS: tuple[str, ...] = ("sqlite", "postgresql")
"""Dialects that have a views file."""

_TABLES_READ = (INSTANCES.name, TASKS.name, DEPENDENCIES.name)
_VIEW_NAME = re.compile(r"^CREATE (?:OR REPLACE )?VIEW (\w+) AS", re.MULTILINE)


def view_sql(dialect: str) -> str:
    """Return the text of the views file for a SQLAlchemy dialect name.

    Raises:
        ConfigError: There are no views for that dialect.

    >>> view_sql("sqlite").splitlines()[0]
    "-- BI views over the extractor's tables, SQLite dialect (3.25 or later: window functions)."
    """
    if dialect not in VIEW_DIALECTS:
        raise ConfigError(
            f"no views for SQL dialect {dialect!r}; available: {', '.join(VIEW_DIALECTS)}"
        )
    return files("extractor").joinpath("sql", f"views_{dialect}.sql").read_text(encoding="utf-8")


def create_views(engine: Engine) -> list[str]:
    """Create or replace every view on ``engine``'s database; return their names in order.

    The tables must exist already: load once, or run :func:`extractor.loaders.create_ddl`'s
    statements first. They are checked up front because SQLite would accept a view over a
    missing table and fail only when the view is read.

    Raises:
        ConfigError: There are no views for the engine's dialect.
        LoadError: A table the views read is missing, or the database rejected a statement.
    """
    statements = _split_statements(view_sql(engine.dialect.name))
    names: list[str] = []
    with translated("creating the views"), engine.begin() as conn:
        inspector = sa.inspect(conn)
        missing = [t for t in _TABLES_READ if not inspector.has_table(t)]
        if missing:
            raise LoadError(
                f"cannot create the views: missing tables {', '.join(missing)}; load flows first"
            )
        for statement in statements:
            conn.exec_driver_sql(statement)
            names.extend(_VIEW_NAME.findall(statement))
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
