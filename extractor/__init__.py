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

_HOMES: dict[str, str] = {
    "TABLES": "extractor.schema",
    "TABLES_BY_NAME": "extractor.schema",
    "Answer": "extractor.transport",
    "ApiError": "extractor.errors",
    "AuthError": "extractor.errors",
    "ConfigError": "extractor.errors",
    "EnOSClient": "extractor.client",
    "ExtractorError": "extractor.errors",
    "FatalApiError": "extractor.errors",
    "FetchConfig": "extractor.config",
    "FlowFrames": "extractor.frames",
    "GatewayConfig": "extractor.config",
    "LoadError": "extractor.errors",
    "LoadResult": "extractor.loaders",
    "NotFoundError": "extractor.errors",
    "PermanentApiError": "extractor.errors",
    "RecordError": "extractor.errors",
    "RunReport": "extractor.pipeline",
    "ThrottledError": "extractor.errors",
    "TransientApiError": "extractor.errors",
    "Transport": "extractor.transport",
    "WriteMode": "extractor.loaders",
    "create_ddl": "extractor.loaders",
    "extract": "extractor.pipeline",
    "flatten": "extractor.pipeline",
    "load_gateway_config": "extractor.config",
    "missed_runs": "extractor.missed",
    "parse_timezone": "extractor.config",
    "read_parquet": "extractor.loaders",
    "read_sql": "extractor.loaders",
    "run_extract": "extractor.pipeline",
    "run_sync": "extractor.sync",
    "write_parquet": "extractor.loaders",
    "write_sql": "extractor.loaders",
}
"""Where each public name lives."""

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
    "PermanentApiError",
    "RecordError",
    "RunReport",
    "ThrottledError",
    "TransientApiError",
    "Transport",
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


__getattr__, __dir__ = exports("extractor", _HOMES, globals(), __all__)


if TYPE_CHECKING:
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
    from extractor.transport import Answer, Transport
