"""Write flow frames to SQL databases and Parquet datasets.

>>> from extractor.loaders import LoadResult
>>> LoadResult(rows_written={"flow_instances": 2, "task_instances": 5}).total_rows
7
"""

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
