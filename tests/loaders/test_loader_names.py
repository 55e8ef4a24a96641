"""The loaders' public names."""

from __future__ import annotations

from extractor import loaders
from extractor.loaders import Loader, ParquetLoader, SqlLoader


def test_the_public_names_are_exactly_these():
    assert sorted(loaders.__all__) == [
        "CompactResult",
        "DEFAULT_CHUNK_SIZE",
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
    assert all(hasattr(loaders, name) for name in loaders.__all__)


def test_both_loaders_are_loaders(tmp_path):
    destinations: list[Loader] = [ParquetLoader(tmp_path), SqlLoader("sqlite://")]

    assert all(callable(d.write) for d in destinations)
