"""Settings as frozen dataclasses; the only reader of environment variables and files.

Precedence, highest first: explicit arguments, environment variables
(``ENOS_GATEWAY``, ``ENOS_APP_KEY``, ``ENOS_APP_SECRET``, ``ENOS_ORG_ID``,
``ENOS_USER_ID``, ``ENOS_TIMEZONE``, ``ENOS_SERVICE_PATH``), then the TOML file named
by ``--config`` or ``ENOS_CONFIG``. ``HTTPS_PROXY``/``NO_PROXY`` and
``REQUESTS_CA_BUNDLE`` are honoured as requests would. A file looks like::

    [gateway]
    url = "https://apim-gateway.example.com"
    app_key = "..."
    app_secret = "..."
    org_id = "o15..."
    user_id = "u15..."
    timezone = "Asia/Shanghai"   # optional: skip the Get Time Zone call
    service_path = "batch-processing-service/v2.1"   # optional; v2.0 platforms differ
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from extractor.errors import ConfigError

ENV_VARS: Mapping[str, str] = {
    "base_url": "ENOS_GATEWAY",
    "app_key": "ENOS_APP_KEY",
    "app_secret": "ENOS_APP_SECRET",
    "org_id": "ENOS_ORG_ID",
    "user_id": "ENOS_USER_ID",
    "timezone": "ENOS_TIMEZONE",
    "service_path": "ENOS_SERVICE_PATH",
}
_OPTIONAL = frozenset({"timezone", "service_path"})
DEFAULT_SERVICE_PATH = "batch-processing-service/v2.1"
"""The Batch Processing Service from EnOS 2.1.2 on; older platforms serve
``dataflow-batch-service/v2.0``."""
_SEGMENT = r"(?!\.{1,2}(?:/|$))[A-Za-z0-9._~-]+"
_SERVICE_PATH = re.compile(rf"^{_SEGMENT}(?:/{_SEGMENT})*$")
_FILE_KEYS: Mapping[str, str] = {"url": "base_url"}
_GMT_OFFSET = re.compile(r"^(?:GMT|UTC)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class GatewayConfig:
    """Where the EnOS gateway is and who we are to it.

    ``timezone`` is the zone of the API's naive timestamps (``None``: ask the gateway);
    a name (``GMT+8``, ``Asia/Shanghai``, ``UTC``) is parsed here, once, into a tzinfo.
    """

    base_url: str
    app_key: str
    app_secret: str = field(repr=False)
    org_id: str
    user_id: str
    timeout_s: float = 30.0
    verify_tls: bool = True
    ca_bundle: str | None = None
    proxies: Mapping[str, str] = field(default_factory=dict)
    timezone: tzinfo | None = None
    service_path: str = DEFAULT_SERVICE_PATH

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"gateway URL must be an http(s) URL like https://host, got {self.base_url!r}"
            )
        for name in ("app_key", "app_secret", "org_id", "user_id"):
            if not getattr(self, name):
                raise ConfigError(f"{name} is empty (set it or {ENV_VARS[name]})")
        if not _is_number(self.timeout_s) or self.timeout_s <= 0:
            raise ConfigError(
                f"timeout_s must be a positive number of seconds, got {self.timeout_s!r}"
            )
        if not isinstance(self.verify_tls, bool):
            raise ConfigError(f"verify_tls must be true or false, got {self.verify_tls!r}")
        if isinstance(self.timezone, str):
            object.__setattr__(self, "timezone", parse_timezone(self.timezone))
        elif not isinstance(self.timezone, tzinfo | None):
            raise ConfigError(f"timezone must be a zone name or a tzinfo, got {self.timezone!r}")
        service = self.service_path.strip("/") if isinstance(self.service_path, str) else None
        if not service or not _SERVICE_PATH.match(service):
            raise ConfigError(
                "service_path must be a URL path like batch-processing-service/v2.1, "
                f"got {self.service_path!r}"
            )
        object.__setattr__(self, "service_path", service)
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))


@dataclass(frozen=True, kw_only=True)
class FetchConfig:
    """How hard and how politely to fetch."""

    workers: int = 16
    max_rps: float | None = None
    max_attempts: int = 6
    deadline_s: float = 120.0
    backoff_base_s: float = 0.2
    backoff_max_s: float = 30.0
    batch_size: int = 2000
    page_size: int = 100
    """Instances per List Flow Instances page."""
    max_depth: int = 10_000
    """Records one discovery query may page through before its window is bisected."""
    split: timedelta = timedelta(days=1)
    """Discovery pages a long window as sub-windows this long, concurrently."""
    outage_timeout_s: float = 300.0
    """How long every worker waits for an unreachable gateway before the run stops."""

    def __post_init__(self) -> None:
        if not 1 <= self.workers <= 512:
            raise ConfigError(f"workers must be between 1 and 512, got {self.workers}")
        if self.max_rps is not None and self.max_rps <= 0:
            raise ConfigError(f"max_rps must be positive, got {self.max_rps}")
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.outage_timeout_s <= 0:
            raise ConfigError(f"outage_timeout_s must be positive, got {self.outage_timeout_s}")
        if self.deadline_s <= 0 or self.backoff_base_s < 0 or self.backoff_max_s <= 0:
            raise ConfigError("deadline and backoff times must be positive")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if not 1 <= self.page_size <= 10_000:
            raise ConfigError(f"page_size must be between 1 and 10000, got {self.page_size}")
        if self.max_depth < self.page_size:
            raise ConfigError(f"max_depth must be at least page_size, got {self.max_depth}")
        if self.split < timedelta(seconds=1):
            raise ConfigError(f"split must be at least a second, got {self.split}")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_timezone(name: str) -> tzinfo:
    """Turn Get Time Zone's ``GMT+8`` (or an IANA name like ``Asia/Shanghai``) into a tzinfo.

    ``GMT+8`` means eight hours ahead of UTC, unlike POSIX's inverted ``Etc/GMT+8``.

    >>> parse_timezone("GMT+8")
    datetime.timezone(datetime.timedelta(seconds=28800), 'GMT+8')
    >>> parse_timezone("GMT-03:30").utcoffset(None)
    datetime.timedelta(days=-1, seconds=73800)
    >>> parse_timezone("Asia/Shanghai")
    zoneinfo.ZoneInfo(key='Asia/Shanghai')
    """
    text = name.strip()
    if text.upper() in ("UTC", "GMT", "Z"):
        return UTC
    match = _GMT_OFFSET.match(text)
    if match:
        sign, hours, minutes = match.groups()
        offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if offset > timedelta(hours=14):
            raise ConfigError(f"time zone offset out of range: {name!r}")
        return timezone(-offset if sign == "-" else offset, text)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r} (use GMT+8 or an IANA name)") from None


def load_gateway_config(
    overrides: Mapping[str, Any] | None = None,
    *,
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> GatewayConfig:
    """Build the gateway settings from arguments, environment and an optional TOML file.

    Raises:
        ConfigError: a setting is missing or invalid, or the file cannot be read.
    """
    env = os.environ if env is None else env
    path = config_file or env.get("ENOS_CONFIG")
    values: dict[str, Any] = dict(_read_file(Path(path))) if path else {}
    for name, var in ENV_VARS.items():
        if env.get(var):
            values[name] = env[var]
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    missing = [f"{n} ({ENV_VARS[n]})" for n in ENV_VARS if n not in _OPTIONAL and not values.get(n)]
    if missing:
        raise ConfigError("missing gateway settings: " + ", ".join(missing))
    values.setdefault("ca_bundle", env.get("REQUESTS_CA_BUNDLE") or env.get("SSL_CERT_FILE"))
    values.setdefault("proxies", _proxies_for(str(values["base_url"]), env))
    try:
        return GatewayConfig(**values)
    except TypeError as exc:
        raise ConfigError(f"unknown gateway setting: {exc}") from None


def _proxies_for(url: str, env: Mapping[str, str]) -> dict[str, str]:
    """The proxy the environment names for the gateway, honouring NO_PROXY."""
    host = urlsplit(url).hostname or ""
    no_proxy = env.get("NO_PROXY") or env.get("no_proxy") or ""
    for entry in (e.strip().lstrip(".") for e in no_proxy.split(",")):
        if entry and (entry in ("*", host) or host.endswith("." + entry)):
            return {}
    scheme = urlsplit(url).scheme
    for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY"):
        if env.get(name):
            return {scheme: env[name]}
    return {}


def _read_file(path: Path) -> Mapping[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    section = data.get("gateway", {})
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [gateway] must be a table")
    return {_FILE_KEYS.get(k, k): v for k, v in section.items()}
