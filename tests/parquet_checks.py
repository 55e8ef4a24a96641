"""What tests of whole Parquet loads check: duplicates a reader sees, the gateway's settings."""

from __future__ import annotations

from pathlib import Path

import duckdb

from extractor.tables._schema import DATA_TABLES


def duplicates(root: Path) -> dict[str, int]:
    """Per table, keys DuckDB sees more than once through a glob over the dataset."""
    found = {}
    for table in DATA_TABLES:
        if not any((root / table.name).glob("*/*.parquet")):
            continue
        keys = ", ".join(table.primary_key)
        pattern = f"{root / table.name}/**/*.parquet"
        found[table.name] = duckdb.sql(
            f"SELECT count(*) FROM (SELECT {keys} FROM read_parquet('{pattern}', "
            f"hive_partitioning=true) GROUP BY {keys} HAVING count(*) > 1)"
        ).fetchall()[0][0]
    return found
