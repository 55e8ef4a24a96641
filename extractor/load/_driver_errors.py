"""Turn database drivers' errors into :class:`LoadError` at the loaders' boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from extractor.errors import LoadError

_DRIVER_MODULES = ("sqlite3", "_sqlite3", "psycopg")
_REASON_LINES = 3


@contextmanager
def translated(doing: str) -> Iterator[None]:
    """Re-raise a driver's or SQLAlchemy's error as a :class:`LoadError` saying what failed.

    >>> import sqlite3
    >>> with translated("writing flow_instances"):
    ...     raise sqlite3.IntegrityError("UNIQUE constraint failed: flow_instances.instance_id")
    Traceback (most recent call last):
    extractor.errors.LoadError: writing flow_instances failed: UNIQUE constraint failed: ...
    """
    try:
        yield
    except Exception as exc:
        # The fast paths use the driver's own cursor, so its PEP 249 errors arrive unwrapped.
        module = type(exc).__module__
        is_driver_error = any(module == m or module.startswith(f"{m}.") for m in _DRIVER_MODULES)
        if isinstance(exc, sa.exc.SQLAlchemyError) or is_driver_error:
            raise LoadError(f"{doing} failed: {reason(exc)}") from exc
        raise


def reason(exc: BaseException) -> str:
    """Return the driver's own message on one line (SQLAlchemy's SQL and parameters left out)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines[:_REASON_LINES])
