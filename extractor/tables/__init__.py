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

__getattr__, __dir__ = exports(globals(), __all__)

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
