"""The parts of ``extractor.airflow`` that need no Airflow: settings, connections, outcomes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from extractor._airflow_connections import warehouse_url
from extractor.airflow import Settings, _finish, split_windows
from extractor.errors import ConfigError, ExtractorError
from extractor.run._pipeline import RunReport


def connection(**fields: Any) -> SimpleNamespace:
    """An Airflow connection with these fields, the others empty."""
    blank = dict.fromkeys(["conn_type", "host", "port", "login", "password", "schema"])
    return SimpleNamespace(**{**blank, "extra_dejson": {}, **fields})


def test_a_partial_run_warns_or_fails_as_configured(caplog: pytest.LogCaptureFixture) -> None:
    partial = RunReport(run_key="", fetched=9, loaded=9, failed=2)
    with caplog.at_level(logging.WARNING, logger="extractor.airflow"):
        summary = _finish(partial, Settings(pool_size=2, gateway_max_rps=8), window=None)
    assert (summary["exit_code"], summary["failed"], summary["max_rps"]) == (3, 2, 4.0)
    assert "2 instances failed to fetch" in caplog.text
    with pytest.raises(ExtractorError, match="2 instances failed"):
        _finish(partial, Settings(fail_on_partial=True), window=None)


def test_a_fatal_run_fails_the_task() -> None:
    fatal = RunReport(run_key="", fatal_error="the gateway refused the app key")
    with pytest.raises(ExtractorError, match="refused the app key"):
        _finish(fatal, Settings(), window=None)


def test_a_clean_run_returns_its_counts_and_window() -> None:
    window = {"start": "2026-01-01T00:00:00+08:00", "end": "2026-01-02T00:00:00+08:00"}
    summary = _finish(RunReport(run_key="", loaded=5, fetched=5), Settings(), window=window)
    assert (summary["loaded"], summary["window"], summary["exit_code"]) == (5, window, 0)


def test_the_warehouse_is_postgres_or_a_sqlalchemy_url() -> None:
    url = {"sqlalchemy_url": "sqlite:////tmp/flows.db"}
    given = warehouse_url(connection(conn_type="generic", extra_dejson=url))
    assert given.render_as_string() == "sqlite:////tmp/flows.db"
    with pytest.raises(ConfigError, match="sqlalchemy_url"):
        warehouse_url(connection(conn_type="mysql", host="db"))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param({"pool_size": 0}, "pool_size", id="no-slots"),
        pytest.param({"gateway_max_rps": 0}, "gateway_max_rps", id="no-budget"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings(**settings)  # type: ignore[arg-type]


def test_a_backfill_range_must_not_be_empty() -> None:
    day = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ConfigError, match="must be after"):
        split_windows(day, day, timedelta(days=1))
