"""Extract EnOS Batch Processing flow instances into typed tables.

>>> import extractor
>>> sorted(extractor.TABLES_BY_NAME)[:2]
['failed_instances', 'flow_dependencies']
"""

from extractor.client import EnOSClient
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
from extractor.frames import FlowFrames
from extractor.loaders import (
    LoadResult,
    WriteMode,
    create_ddl,
    read_parquet,
    read_sql,
    write_parquet,
    write_sql,
)
from extractor.missed import missed_runs
from extractor.pipeline import RunReport, extract, flatten, run_extract
from extractor.schema import TABLES, TABLES_BY_NAME
from extractor.sync import run_sync

__all__ = [
    "TABLES",
    "TABLES_BY_NAME",
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
    "PermanentApiError",
    "RecordError",
    "RunReport",
    "ThrottledError",
    "TransientApiError",
    "WriteMode",
    "create_ddl",
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
