"""How writers into one database take turns: one lock per schema, held to the commit.

On PostgreSQL it is a transaction-level advisory lock keyed by the schema's name, so
that creating the tables (a ``CREATE TABLE`` racing another fails on PostgreSQL's
catalogue even with ``IF NOT EXISTS``), each batch's merge and each state change run one
writer at a time, while readers, which take no lock, carry on. On SQLite it is the
database's own write lock, taken at the start (``BEGIN IMMEDIATE``) rather than upgraded
from a read lock half-way. Other dialects get no lock.
"""

from __future__ import annotations

import hashlib
import sqlite3

import sqlalchemy as sa
from sqlalchemy.engine import Connection

_NAMESPACE = "enos-flows"


def take_turn(conn: Connection, schema: str | None) -> None:
    """Wait for the other writers of ``schema`` and hold them off until this transaction ends.

    Call it first thing in a transaction (``with conn.begin(): take_turn(...)``).
    """
    name = conn.dialect.name
    if name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(schema)})
    elif name == "sqlite":
        raw = conn.connection.dbapi_connection
        if isinstance(raw, sqlite3.Connection) and not raw.in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def lock_key(schema: str | None) -> int:
    """The advisory lock's key: a signed 64-bit digest of the package and the schema.

    >>> lock_key(None) == lock_key(None), lock_key(None) == lock_key("enos")
    (True, False)
    """
    digest = hashlib.blake2b(f"{_NAMESPACE}:{schema or ''}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
