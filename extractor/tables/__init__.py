"""The tables: their declared schema, the flattener, Quartz schedules and typed frames.

``_schema`` declares every table once (DDL, Parquet, SQLAlchemy and the README derive from
it); ``_flattener`` (with ``_coerce`` and ``_elements``) turns records into named rows;
``_schedule`` reads Quartz cron expressions; ``_frames`` types rows into Arrow and pandas;
``_missed`` finds the runs a schedule owed and no instance answers. All pure but
``_frames``, which needs pyarrow and pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from extractor._lazy import exports

_HOMES: dict[str, str] = {
    "DATA_TABLES": "extractor.tables._schema",
    "TABLES": "extractor.tables._schema",
    "TABLES_BY_NAME": "extractor.tables._schema",
    "Column": "extractor.tables._schema",
    "FlowFrames": "extractor.tables._frames",
    "Rows": "extractor.tables._flattener",
    "Schedule": "extractor.tables._schedule",
    "Table": "extractor.tables._schema",
    "arrow_schema": "extractor.tables._frames",
    "build_frames": "extractor.tables._frames",
    "flatten_instance": "extractor.tables._flattener",
    "flatten_records": "extractor.tables._flattener",
    "markdown_reference": "extractor.tables._schema",
    "missed_runs": "extractor.tables._missed",
    "next_fire": "extractor.tables._schedule",
    "parse_cron": "extractor.tables._schedule",
}

__all__ = [
    "DATA_TABLES",
    "TABLES",
    "TABLES_BY_NAME",
    "Column",
    "FlowFrames",
    "Rows",
    "Schedule",
    "Table",
    "arrow_schema",
    "build_frames",
    "flatten_instance",
    "flatten_records",
    "markdown_reference",
    "missed_runs",
    "next_fire",
    "parse_cron",
]

__getattr__, __dir__ = exports("extractor.tables", _HOMES, globals(), __all__)

if TYPE_CHECKING:
    from extractor.tables._flattener import Rows, flatten_instance, flatten_records
    from extractor.tables._frames import FlowFrames, arrow_schema, build_frames
    from extractor.tables._missed import missed_runs
    from extractor.tables._schedule import Schedule, next_fire, parse_cron
    from extractor.tables._schema import (
        DATA_TABLES,
        TABLES,
        TABLES_BY_NAME,
        Column,
        Table,
        markdown_reference,
    )
