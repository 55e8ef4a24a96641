"""Settings: precedence, validation, secrets hidden, time zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from extractor.config import FetchConfig, GatewayConfig, load_gateway_config, parse_timezone
from extractor.errors import ConfigError

ENV = {
    "ENOS_GATEWAY": "https://env.example",
    "ENOS_APP_KEY": "env-key",
    "ENOS_APP_SECRET": "env-secret-xyz",
    "ENOS_ORG_ID": "env-org",
    "ENOS_USER_ID": "env-user",
}


def test_environment_then_arguments_win(tmp_path: Path) -> None:
    file = tmp_path / "enos.toml"
    file.write_text(
        '[gateway]\nurl = "https://file.example"\napp_key = "file-key"\n'
        'app_secret = "file-secret"\norg_id = "file-org"\nuser_id = "file-user"\n'
        'timezone = "GMT+8"\n'
    )
    from_file = load_gateway_config(config_file=file, env={})
    assert (from_file.base_url, from_file.app_key, from_file.timezone) == (
        "https://file.example",
        "file-key",
        timezone(timedelta(hours=8)),
    )
    mixed = load_gateway_config({"org_id": "arg-org"}, config_file=file, env=ENV)
    assert (mixed.base_url, mixed.app_secret, mixed.org_id) == (
        "https://env.example",
        "env-secret-xyz",
        "arg-org",
    )


def test_config_file_named_by_environment(tmp_path: Path) -> None:
    file = tmp_path / "x.toml"
    file.write_text('[gateway]\nurl = "http://127.0.0.1:1/"\n')
    config = load_gateway_config(env={**ENV, "ENOS_GATEWAY": "", "ENOS_CONFIG": str(file)})
    assert config.base_url == "http://127.0.0.1:1"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param({}, "missing gateway settings: base_url", id="nothing"),
        pytest.param(
            {**ENV, "ENOS_APP_SECRET": ""}, "app_secret (ENOS_APP_SECRET)", id="no-secret"
        ),
        pytest.param({**ENV, "ENOS_GATEWAY": "ftp://x"}, "must be an http(s) URL", id="bad-url"),
        pytest.param({**ENV, "ENOS_TIMEZONE": "Mars/Base"}, "unknown time zone", id="bad-tz"),
    ],
)
def test_clear_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_gateway_config(env=env)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_gateway_config(config_file=tmp_path / "absent.toml", env=ENV)
    bad = tmp_path / "bad.toml"
    bad.write_text("[gateway\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_gateway_config(config_file=bad, env=ENV)


def test_secret_never_in_repr() -> None:
    config = load_gateway_config(env=ENV)
    assert "env-secret-xyz" not in repr(config)
    assert "env-secret-xyz" not in str(config)


def test_gateway_config_is_frozen() -> None:
    config = GatewayConfig(
        base_url="https://x", app_key="k", app_secret="s", org_id="o", user_id="u"
    )
    with pytest.raises(AttributeError):
        config.app_key = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "offset"),
    [("GMT+8", 8 * 60), ("GMT-3:30", -210), ("UTC+05:45", 345), ("GMT", 0), ("UTC", 0)],
)
def test_gmt_offsets_are_not_posix_inverted(name: str, offset: int) -> None:
    tz = parse_timezone(name)
    assert datetime(2026, 6, 1, tzinfo=tz).utcoffset() == timedelta(minutes=offset)


ZONES = [
    pytest.param("GMT+8", timezone(timedelta(hours=8)), id="gmt-offset"),
    pytest.param("Asia/Shanghai", ZoneInfo("Asia/Shanghai"), id="iana"),
    pytest.param("UTC", UTC, id="utc"),
]


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        *ZONES,
        pytest.param(ZoneInfo("Europe/Paris"), ZoneInfo("Europe/Paris"), id="tzinfo"),
        pytest.param(None, None, id="ask-the-gateway"),
    ],
)
def test_the_time_zone_is_parsed_once_into_a_tzinfo(
    given: str | tzinfo | None, parsed: tzinfo | None
) -> None:
    config = GatewayConfig(
        base_url="https://x", app_key="k", app_secret="s", org_id="o", user_id="u", timezone=given
    )  # type: ignore[arg-type]
    assert config.timezone == parsed


@pytest.mark.parametrize(("name", "parsed"), ZONES)
def test_a_time_zone_from_the_environment_or_a_flag(name: str, parsed: tzinfo) -> None:
    assert load_gateway_config(env={**ENV, "ENOS_TIMEZONE": name}).timezone == parsed
    assert load_gateway_config({"timezone": name}, env=ENV).timezone == parsed


def test_a_time_zone_of_another_type_is_refused() -> None:
    with pytest.raises(ConfigError, match="zone name or a tzinfo"):
        GatewayConfig(
            base_url="https://x", app_key="k", app_secret="s", org_id="o", user_id="u", timezone=8
        )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs", [{"workers": 0}, {"max_rps": 0}, {"max_attempts": 0}, {"batch_size": 0}]
)
def test_fetch_config_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        FetchConfig(**kwargs)  # type: ignore[arg-type]


def test_service_path_from_flag_environment_or_file(tmp_path: Path) -> None:
    file = tmp_path / "enos.toml"
    file.write_text('[gateway]\nservice_path = "/dataflow-batch-service/v2.0/"\n')
    assert load_gateway_config(env=ENV).service_path == "batch-processing-service/v2.1"
    from_file = load_gateway_config(config_file=file, env=ENV)
    assert from_file.service_path == "dataflow-batch-service/v2.0"
    from_env = load_gateway_config(config_file=file, env={**ENV, "ENOS_SERVICE_PATH": "svc/v9"})
    assert from_env.service_path == "svc/v9"
    from_flag = load_gateway_config(
        {"service_path": "flag/v1"}, config_file=file, env={**ENV, "ENOS_SERVICE_PATH": "svc/v9"}
    )
    assert from_flag.service_path == "flag/v1"


@pytest.mark.parametrize("path", ["", "/", "a b/v1", "x?y=1", "../up", "a//b"])
def test_service_path_must_be_a_plain_path(path: str) -> None:
    with pytest.raises(ConfigError, match="service_path must be a URL path"):
        load_gateway_config({"service_path": path}, env=ENV)
