"""Extract EnOS Batch Processing flow instances into typed tables.

>>> import extractor
>>> sorted(extractor.TABLES_BY_NAME)[:2]
['failed_instances', 'flow_dependencies']

Every public name is imported on first use (PEP 562), so that ``import extractor`` and
``enos-flows --help`` do not load pandas, pyarrow or SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from extractor._lazy import exports

__all__ = [
    "TABLES",
    "TABLES_BY_NAME",
    "Answer",
    "ApiError",
    "AuthError",
    "ConfigError",
    "EnOSClient",
    "ExtractorError",
    "FatalApiError",
    "FetchConfig",
    "FlowFrames",
    "GatewayConfig",
    "LoadError",
    "LoadResult",
    "NotFoundError",
    "ParquetDestination",
    "PermanentApiError",
    "RecordError",
    "RunReport",
    "SqlDestination",
    "ThrottledError",
    "TransientApiError",
    "Transport",
    "WriteMode",
    "compact_parquet",
    "create_ddl",
    "create_views",
    "extract",
    "flatten",
    "load_gateway_config",
    "missed_runs",
    "parse_timezone",
    "read_parquet",
    "read_sql",
    "run_extract",
    "run_sync",
    "write_parquet",
    "write_sql",
]


__getattr__, __dir__ = exports(globals(), __all__)


if TYPE_CHECKING:
    from extractor.config import FetchConfig, GatewayConfig, load_gateway_config, parse_timezone
    from extractor.errors import (
        ApiError,
        AuthError,
        ConfigError,
        ExtractorError,
        FatalApiError,
        LoadError,
        NotFoundError,
        PermanentApiError,
        RecordError,
        ThrottledError,
        TransientApiError,
    )
    from extractor.gateway._client import EnOSClient
    from extractor.gateway._transport import Answer, Transport
    from extractor.load import (
        LoadResult,
        ParquetDestination,
        SqlDestination,
        WriteMode,
        compact_parquet,
        create_ddl,
        create_views,
        read_parquet,
        read_sql,
        write_parquet,
        write_sql,
    )
    from extractor.run._pipeline import extract, flatten, run_extract
    from extractor.run._report import RunReport
    from extractor.run._sync import run_sync
    from extractor.tables._frames import FlowFrames
    from extractor.tables._missed import missed_runs
    from extractor.tables._schema import TABLES, TABLES_BY_NAME
