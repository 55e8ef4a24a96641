"""What tests of whole Parquet loads check: duplicates a reader sees, the gateway's settings."""

from __future__ import annotations

from pathlib import Path

import duckdb

from extractor.schema import DATA_TABLES
from extractor.simulator import SimCredentials


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


def gateway_env(url: str, credentials: SimCredentials) -> dict[str, str]:
    """The environment variables that point a run at a simulator."""
    return {
        "ENOS_GATEWAY": url,
        "ENOS_APP_KEY": credentials.app_key,
        "ENOS_APP_SECRET": credentials.app_secret,
        "ENOS_ORG_ID": credentials.org_id,
        "ENOS_USER_ID": credentials.user_id,
    }
