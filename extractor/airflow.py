"""Airflow DAGs: a sync every few minutes, and backfills spread over Airflow's workers.

Needs the ``airflow`` extra (Airflow 3). A DAG file is two lines (see
``examples/airflow/enos_flows.py``)::

    from extractor.airflow import backfill_dag, sync_dag
    sync, backfill = sync_dag(pool_size=4), backfill_dag(pool_size=4)

Both load into the warehouse of an Airflow connection (``enos_warehouse``: the Postgres
type, or any type whose extra holds a ``sqlalchemy_url``) and reach the gateway through
another (``enos_gateway``) or, with ``gateway_conn_id=None``, through Variables named
like the command line's environment variables (``ENOS_GATEWAY``, ``ENOS_APP_KEY``,
``ENOS_APP_SECRET``, ...). Every task that calls the gateway runs in one pool
(``enos_api``) at ``gateway_max_rps / pool_size`` requests a second, so that however
many run at once, the gateway never sees more than ``gateway_max_rps``.

Airflow is imported only when a DAG is built: the helpers below work without it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from extractor._airflow_connections import gateway, warehouse
from extractor.config import FetchConfig
from extractor.errors import ConfigError, ExtractorError
from extractor.run._report import EXIT_FATAL, EXIT_PARTIAL

if TYPE_CHECKING:
    from airflow.sdk import DAG

    from extractor.gateway._client import EnOSClient
    from extractor.load import SqlDestination
    from extractor.run._report import RunReport

log = logging.getLogger(__name__)

DEFAULT_POOL = "enos_api"
SYNC_SCHEDULE = "*/15 * * * *"
_START = datetime(2026, 1, 1, tzinfo=UTC)
"""The DAGs' start date: any past date, since neither catches up on missed runs."""
_SUMMARY = ("fetched", "loaded", "failed", "rejected", "skipped", "stale", "calls")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Where a DAG's tasks load to, where they fetch from, and how fast.

    Attributes:
        warehouse_conn_id: The Airflow connection of the database to load into.
        gateway_conn_id: The Airflow connection of the gateway: host (the gateway's URL),
            login (app key), password (app secret) and ``org_id``, ``user_id`` and
            optionally ``timezone`` and ``service_path`` in its extra. ``None`` reads
            the Variables ``ENOS_GATEWAY``, ``ENOS_APP_KEY``, ``ENOS_APP_SECRET``, ...
        schema: The schema to load into (PostgreSQL).
        table_prefix: Prefix of every table name.
        pool: The Airflow pool every task that calls the gateway runs in.
        pool_size: The pool's slots, as created (``airflow pools set enos_api 4 ...``).
        gateway_max_rps: What the gateway allows this connector, in requests a second.
        workers: Requests each task keeps in flight.
        fail_on_partial: Fail the task when some instances failed (exit code 3 of the
            command line) instead of logging a warning.
    """

    warehouse_conn_id: str = "enos_warehouse"
    gateway_conn_id: str | None = "enos_gateway"
    schema: str | None = None
    table_prefix: str = ""
    pool: str = DEFAULT_POOL
    pool_size: int = 4
    gateway_max_rps: float = 10.0
    workers: int = 4
    fail_on_partial: bool = False

    def __post_init__(self) -> None:
        if self.pool_size < 1:
            raise ConfigError(f"pool_size must be at least 1, got {self.pool_size}")
        if self.gateway_max_rps <= 0:
            raise ConfigError(f"gateway_max_rps must be positive, got {self.gateway_max_rps}")

    @property
    def task_max_rps(self) -> float:
        """Each task's share of the gateway's budget: one pool slot's worth.

        >>> Settings(pool_size=4, gateway_max_rps=20).task_max_rps
        5.0
        """
        return self.gateway_max_rps / self.pool_size

    def fetch(self) -> FetchConfig:
        return FetchConfig(workers=self.workers, max_rps=self.task_max_rps)


def sync_dag(
    *,
    dag_id: str = "enos_flows_sync",
    schedule: str | None = SYNC_SCHEDULE,
    lookback: timedelta = timedelta(hours=1),
    retries: int = 2,
    **settings: Any,
) -> DAG:
    """A DAG that runs :func:`extractor.run_sync` on ``schedule`` (every 15 minutes).

    The first run, with no watermark stored yet, syncs the ``lookback`` before now, or
    from the ``since`` param when triggered with one (backfill older history with
    :func:`backfill_dag`). ``settings`` are those of :class:`Settings`.
    """
    from airflow.sdk import DAG, Param, get_current_context, task

    config = Settings(**settings)
    with DAG(
        dag_id=dag_id,
        schedule=schedule,
        start_date=_START,
        catchup=False,
        max_active_runs=1,
        tags=["enos"],
        params={
            "since": Param(None, type=["null", "string"], description="window start"),
            "until": Param(None, type=["null", "string"], description="window end (now)"),
        },
        doc_md=sync_dag.__doc__,
    ) as dag:

        def sync() -> dict[str, Any]:
            return run_sync_task(config, get_current_context()["params"], lookback=lookback)

        task(task_id="sync", pool=config.pool, retries=retries)(sync)()
    return dag


def backfill_dag(
    *,
    dag_id: str = "enos_flows_backfill",
    window: timedelta = timedelta(days=1),
    retries: int = 3,
    **settings: Any,
) -> DAG:
    """A DAG, triggered by hand, that loads the instances triggered in ``[from, to)``.

    The range is cut into windows of ``window`` (a day; the ``window_hours`` param
    overrides it), each loaded by one mapped task in the pool; at most ``pool_size`` of
    them run at once in a run. A retried or re-run window resumes or re-loads: rows are
    upserted, never duplicated. ``settings`` are
    those of :class:`Settings`.
    """
    from airflow.sdk import DAG, Param, get_current_context, task

    config = Settings(**settings)
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=_START,
        catchup=False,
        tags=["enos"],
        params={
            "from": Param(type="string", description="first trigger time (ISO 8601)"),
            "to": Param(type="string", description="end of the range, exclusive"),
            "window_hours": Param(
                window / timedelta(hours=1),
                type="number",
                exclusiveMinimum=0,
                description="hours of trigger times per mapped task",
            ),
        },
        doc_md=backfill_dag.__doc__,
    ) as dag:

        def windows() -> list[dict[str, str]]:
            return plan_task(config, get_current_context()["params"])

        def load(window: dict[str, str]) -> dict[str, Any]:
            return load_window_task(config, window)

        planned = task(task_id="windows", pool=config.pool, retries=retries)(windows)()
        task(
            task_id="load",
            pool=config.pool,
            max_active_tis_per_dagrun=config.pool_size,
            retries=retries,
        )(load).expand(window=planned)
    return dag


def run_sync_task(
    config: Settings, params: Mapping[str, Any], *, lookback: timedelta
) -> dict[str, Any]:
    """The body of the sync task: sync, log the report, return its counts."""
    from extractor.run._discovery import ALL_TYPES
    from extractor.run._sync import run_sync, watermark_name

    with _client(config) as client:
        dest = _warehouse(config)
        try:
            zone = _zone(client)
            until = _time(params.get("until"), "until", zone) or datetime.now(UTC)
            since = _time(params.get("since"), "since", zone)
            assert dest.state is not None
            if since is None and dest.state.watermark(watermark_name(ALL_TYPES)) is None:
                since = until - lookback
                log.info("no watermark yet: the first sync starts at %s", since.isoformat())
            report = run_sync(
                client=client,
                destinations=[dest],
                since=since,
                until=until,
                lookback=lookback,
                fetch=config.fetch(),
            )
        finally:
            dest.engine.dispose()
    return _finish(report, config, window=None)


def plan_task(config: Settings, params: Mapping[str, Any]) -> list[dict[str, str]]:
    """The windows of a backfill, as ISO 8601 times in the gateway's zone."""
    every = timedelta(hours=float(params["window_hours"]))
    with _client(config) as client:
        zone = _zone(client)
    start, end = _time(params.get("from"), "from", zone), _time(params.get("to"), "to", zone)
    if start is None or end is None:
        raise ConfigError("a backfill needs the params from and to")
    planned = split_windows(start, end, every)
    log.info("%d windows of %s from %s to %s", len(planned), every, start, end)
    return [{"start": a.isoformat(), "end": b.isoformat()} for a, b in planned]


def load_window_task(config: Settings, window: Mapping[str, str]) -> dict[str, Any]:
    """The body of one mapped backfill task: discover and load one window."""
    from extractor.run import _sources as sources
    from extractor.run._pipeline import run_extract

    start, end = (datetime.fromisoformat(window[k]) for k in ("start", "end"))
    fetch = config.fetch()
    with _client(config) as client:
        dest = _warehouse(config)
        try:
            found = sources.discovered(client, start=start, end=end, fetch=fetch)
            report = run_extract(
                found.ids,
                client=client,
                destinations=[dest],
                fetch=fetch,
                description=found.run_identity([dest]),
            )
        finally:
            dest.engine.dispose()
    return _finish(report, config, window=dict(window))


def split_windows(
    start: datetime, end: datetime, every: timedelta
) -> list[tuple[datetime, datetime]]:
    """Cut ``[start, end)`` into windows of ``every``; the last may be shorter.

    >>> day = datetime(2026, 1, 1, tzinfo=UTC)
    >>> cut = split_windows(day, day + timedelta(hours=60), timedelta(days=1))
    >>> [(a.day, a.hour, b.day, b.hour) for a, b in cut]
    [(1, 0, 2, 0), (2, 0, 3, 0), (3, 0, 3, 12)]
    """
    if end <= start:
        raise ConfigError(f"to ({end.isoformat()}) must be after from ({start.isoformat()})")
    if every <= timedelta(0):
        raise ConfigError(f"windows must be longer than nothing, got {every}")
    bounds = []
    while start < end:
        bounds.append((start, min(start + every, end)))
        start += every
    return bounds


def summarise(report: RunReport) -> dict[str, Any]:
    """The counts of a run a task returns (and Airflow keeps in XCom): nothing secret."""
    summary: dict[str, Any] = {k: getattr(report, k) for k in _SUMMARY}
    summary.update(
        exit_code=report.exit_code, seconds=round(report.seconds, 1), rows=dict(report.rows)
    )
    return summary


def _finish(
    report: RunReport, config: Settings, *, window: dict[str, str] | None
) -> dict[str, Any]:
    log.info("run report: %s", json.dumps(report.to_dict(), sort_keys=True))
    summary = summarise(report)
    summary["max_rps"] = config.task_max_rps
    if window is not None:
        summary["window"] = window
    if report.exit_code == EXIT_FATAL:
        raise ExtractorError(f"the run stopped: {report.fatal_error}")
    if report.exit_code == EXIT_PARTIAL:
        message = (
            f"{report.failed} instances failed to fetch and {report.rejected} were rejected; "
            "they are in failed_instances, and the next sync fetches them again"
        )
        if config.fail_on_partial:
            raise ExtractorError(message)
        log.warning(message)
    return summary


def _warehouse(config: Settings) -> SqlDestination:
    return warehouse(config.warehouse_conn_id, schema=config.schema, prefix=config.table_prefix)


def _client(config: Settings) -> EnOSClient:
    from extractor.gateway._client import EnOSClient

    return EnOSClient(gateway(config.gateway_conn_id), fetch=config.fetch())


def _zone(client: EnOSClient) -> tzinfo:
    """The gateway's zone: configured, else asked of the gateway."""
    return client.config.timezone or client.get_timezone()


def _time(text: Any, name: str, zone: tzinfo) -> datetime | None:
    """A param's ISO 8601 time; a naive one is read in the gateway's zone."""
    from extractor.run._sources import parse_time

    return parse_time(str(text), name, zone) if text else None
