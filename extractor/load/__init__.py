"""Destinations: SQL databases and Parquet datasets, one object per backend.

:class:`SqlDestination` writes to any database SQLAlchemy reaches (PostgreSQL by COPY,
SQLite by cached inserts), :class:`ParquetDestination` stages batches into hive
datasets and compacts them at the end of a run; each keeps its run state (``_state``)
and answers the queries a sync needs. ``_ddl`` derives the DDL from the schema and
``_views`` creates the BI views.

>>> from extractor.load import LoadResult
>>> LoadResult(rows_written={"flow_instances": 2, "task_instances": 5}).total_rows
7
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from extractor._lazy import exports

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "CompactResult",
    "LoadResult",
    "Moving",
    "ParquetDestination",
    "SqlDestination",
    "StateStore",
    "WriteMode",
    "compact_parquet",
    "connect",
    "create_ddl",
    "create_views",
    "parquet_partitioning",
    "read_parquet",
    "read_sql",
    "write_parquet",
    "write_sql",
]

__getattr__, __dir__ = exports(globals(), __all__)

if TYPE_CHECKING:
    from extractor.load._ddl import create_ddl
    from extractor.load._loader import LoadResult, WriteMode
    from extractor.load._parquet import (
        ParquetDestination,
        compact_parquet,
        parquet_partitioning,
        read_parquet,
        write_parquet,
    )
    from extractor.load._parquet_compact import CompactResult
    from extractor.load._sql import DEFAULT_CHUNK_SIZE, SqlDestination, connect, read_sql, write_sql
    from extractor.load._state import Moving, StateStore
    from extractor.load._views import create_views
