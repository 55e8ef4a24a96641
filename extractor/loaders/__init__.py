"""Write flow frames to SQL databases and Parquet datasets.

>>> from extractor.loaders import LoadResult
>>> LoadResult(rows_written={"flow_instances": 2, "task_instances": 5}).total_rows
7
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from extractor._lazy import exports

_HOMES: dict[str, str] = {
    "DEFAULT_CHUNK_SIZE": "extractor.loaders.sql",
    "CompactResult": "extractor.loaders._parquet_compact",
    "LoadResult": "extractor.loaders.loader",
    "Loader": "extractor.loaders.loader",
    "ParquetLoader": "extractor.loaders.parquet",
    "SqlLoader": "extractor.loaders.sql",
    "WriteMode": "extractor.loaders.loader",
    "compact_parquet": "extractor.loaders.parquet",
    "connect": "extractor.loaders.sql",
    "create_ddl": "extractor.loaders.ddl",
    "parquet_partitioning": "extractor.loaders.parquet",
    "read_parquet": "extractor.loaders.parquet",
    "read_sql": "extractor.loaders.sql",
    "write_parquet": "extractor.loaders.parquet",
    "write_sql": "extractor.loaders.sql",
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

__getattr__, __dir__ = exports("extractor.loaders", _HOMES, globals(), __all__)

if TYPE_CHECKING:
    from extractor.loaders._parquet_compact import CompactResult
    from extractor.loaders.ddl import create_ddl
    from extractor.loaders.loader import Loader, LoadResult, WriteMode
    from extractor.loaders.parquet import (
        ParquetLoader,
        compact_parquet,
        parquet_partitioning,
        read_parquet,
        write_parquet,
    )
    from extractor.loaders.sql import DEFAULT_CHUNK_SIZE, SqlLoader, connect, read_sql, write_sql
