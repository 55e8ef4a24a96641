"""Reading Parquet test directories back the way readers see them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
from sample_frames import Row, by_key

from extractor.load import parquet_partitioning
from extractor.tables._schema import FAILURES, TASKS, Table


def read(root: Path, table: Table) -> list[Row]:
    """Read one dataset with the typed partitioning, columns in declared order."""
    if table is FAILURES:
        data = ds.dataset(root / table.name).to_table()
    else:
        data = ds.dataset(root / table.name, partitioning=parquet_partitioning()).to_table()
    if "cal_dt" in data.column_names and "cal_dt" not in table.column_names:
        data = data.drop_columns(["cal_dt"])
    return by_key(table, data.select(list(table.column_names)).to_pylist())


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file a reader sees under ``root`` with its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(n.startswith((".", "_")) for n in p.relative_to(root).parts)
    }


def partitions(root: Path, table: Table) -> list[str]:
    return sorted(p.name for p in (root / table.name).iterdir() if p.is_dir())


def task_owners(root: Path) -> dict[str, Any]:
    return {r["task_inst_id"]: r["instance_id"] for r in read(root, TASKS)}
