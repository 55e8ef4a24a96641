"""Write flow frames to SQL databases and Parquet datasets.

>>> from extractor.load import LoadResult
>>> LoadResult(rows_written={"flow_instances": 2, "task_instances": 5}).total_rows
7
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from extractor._lazy import exports

_HOMES: dict[str, str] = {
    "DEFAULT_CHUNK_SIZE": "extractor.load._sql",
    "CompactResult": "extractor.load._parquet_compact",
    "LoadResult": "extractor.load._loader",
    "Loader": "extractor.load._loader",
    "ParquetLoader": "extractor.load._parquet",
    "SqlLoader": "extractor.load._sql",
    "WriteMode": "extractor.load._loader",
    "compact_parquet": "extractor.load._parquet",
    "connect": "extractor.load._sql",
    "create_ddl": "extractor.load._ddl",
    "parquet_partitioning": "extractor.load._parquet",
    "read_parquet": "extractor.load._parquet",
    "read_sql": "extractor.load._sql",
    "write_parquet": "extractor.load._parquet",
    "write_sql": "extractor.load._sql",
}
"""Where each public name lives: imported on first use, so that DDL needs no pyarrow."""

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "CompactResult",
    "LoadResult",
    "Loader",
    "ParquetLoader",
    "SqlLoader",
    "WriteMode",
    "compact_parquet",
    "connect",
    "create_ddl",
    "parquet_partitioning",
    "read_parquet",
    "read_sql",
    "write_parquet",
    "write_sql",
]

__getattr__, __dir__ = exports("extractor.load", _HOMES, globals(), __all__)

if TYPE_CHECKING:
    from extractor.load._ddl import create_ddl
    from extractor.load._loader import Loader, LoadResult, WriteMode
    from extractor.load._parquet import (
        ParquetLoader,
        compact_parquet,
        parquet_partitioning,
        read_parquet,
        write_parquet,
    )
    from extractor.load._parquet_compact import CompactResult
    from extractor.load._sql import DEFAULT_CHUNK_SIZE, SqlLoader, connect, read_sql, write_sql
