"""What each ``enos-flows`` command does: settings, a client and destinations from the
options, handed to :mod:`extractor.run`; the run's report written for every ending."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from extractor.config import FetchConfig, load_gateway_config
from extractor.errors import ConfigError, ExtractorError
from extractor.run._discovery import ALL_TYPES
from extractor.run._report import EXIT_OK

if TYPE_CHECKING:
    from extractor.gateway._client import EnOSClient
    from extractor.run._pipeline import Destination
    from extractor.run._progress import Progress
    from extractor.run._report import RunReport
    from extractor.run._sources import IdSource

    Work = Callable[[EnOSClient, FetchConfig, list[Destination], Progress], RunReport]


class Terminated(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C, so that the report is written on the way."""


def terminate(signum: int, frame: object) -> None:
    raise Terminated


def _destinations(args: argparse.Namespace) -> list[Destination]:
    from extractor.load import ParquetDestination, SqlDestination

    if args.db_schema and not args.db:
        raise ConfigError("--schema names a schema of the --db database; SQLite has none")
    dests: list[Destination] = []
    if args.sqlite:
        dests.append(
            SqlDestination(
                f"sqlite:///{args.sqlite}", mode=args.mode, table_prefix=args.table_prefix
            )
        )
    if args.db:
        dests.append(
            SqlDestination(
                args.db, mode=args.mode, schema=args.db_schema, table_prefix=args.table_prefix
            )
        )
    if args.parquet:
        dests.append(ParquetDestination(args.parquet, mode=args.mode))
    if not dests:
        raise ConfigError("name a destination: --sqlite PATH, --db URL or --parquet DIR")
    return dests


def _client(args: argparse.Namespace) -> tuple[EnOSClient, FetchConfig]:
    from extractor.gateway._client import EnOSClient

    gateway = load_gateway_config(
        {
            "base_url": args.gateway,
            "app_key": args.app_key,
            "org_id": args.org_id,
            "user_id": args.user_id,
            "timezone": args.timezone,
            "service_path": args.service_path,
            "timeout_s": args.timeout,
            "verify_tls": False if args.insecure else None,
        },
        config_file=args.config,
    )
    fetch = FetchConfig(
        workers=args.workers,
        max_rps=args.max_rps,
        max_attempts=args.max_attempts,
        deadline_s=args.deadline,
        batch_size=args.batch_size,
        page_size=args.page_size,
        backoff_max_s=args.max_wait,
        outage_timeout_s=args.outage_timeout,
    )
    return EnOSClient(gateway, fetch=fetch), fetch


def _run(args: argparse.Namespace, work: Work) -> int:
    """Run ``work`` with the run's client, destinations and progress; write the report
    for every ending, fatal errors and interrupts included."""
    from extractor.run._progress import Progress, summarise, write_report
    from extractor.run._report import RunReport

    report_path = _report_path(args.report)
    client, fetch = _client(args)  # settings first: a typo must not create files
    dests = _destinations(args)
    progress = Progress(total=None, quiet=args.quiet, health=client.health)
    try:
        with client, progress:
            report = work(client, fetch, dests, progress)
    except (ExtractorError, KeyboardInterrupt, Terminated) as exc:
        if report_path is not None:
            ended = progress.report or RunReport(run_key="")
            ended.fatal_error = str(exc) or f"interrupted ({type(exc).__name__})"
            write_report(report_path, ended)
        raise
    summarise(report, quiet=args.quiet)
    if report_path is not None:
        write_report(report_path, report)
    return report.exit_code


def _report_path(name: str | None) -> Path | None:
    """The report's path, checked writable before any work starts."""
    if not name:
        return None
    path = Path(name)
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {path}: {exc.strerror}") from None
    return path


def sync(args: argparse.Namespace) -> int:
    from extractor.run._sources import parse_time
    from extractor.run._sync import run_sync

    def work(
        client: EnOSClient, fetch: FetchConfig, dests: list[Destination], progress: Progress
    ) -> RunReport:
        tz = client.config.timezone
        since = parse_time(args.since, "--since", tz) if args.since else None
        until = parse_time(args.until, "--until", tz) if args.until else datetime.now(UTC)
        return run_sync(
            client=client,
            destinations=dests,
            since=since,
            until=until,
            lookback=timedelta(minutes=args.lookback),
            types=args.types or ALL_TYPES,
            detail=args.detail,
            settle_after=timedelta(days=args.settle_after),
            fetch=fetch,
            on_progress=progress,
        )

    return _run(args, work)


def extract(args: argparse.Namespace) -> int:
    from extractor.run import _sources as sources
    from extractor.run._pipeline import run_extract

    _check_source_flags(args)
    # An IDs file is read through before anything is created: a bad line is a usage error.
    from_file = sources.from_file(args.ids_file) if args.ids_file else None

    def work(
        client: EnOSClient, fetch: FetchConfig, dests: list[Destination], progress: Progress
    ) -> RunReport:
        source = from_file or _id_source(args, client, dests)
        progress.total = source.total
        description = source.run_identity(dests)
        if args.no_resume or args.mode == "replace":
            description = ""  # a resumed replace would empty what the first attempt loaded
        return run_extract(
            source.ids,
            client=client,
            destinations=dests,
            fetch=fetch,
            description=description,
            on_progress=progress,
        )

    return _run(args, work)


def _check_source_flags(args: argparse.Namespace) -> None:
    if not args.from_time:
        for flag, given in (
            ("--to", args.to_time),
            ("--type", args.types),
            ("--status", args.status),
            ("--detail", args.detail != "full"),
        ):
            if given:
                raise ConfigError(f"{flag} goes with --from (it narrows discovery)")


def _id_source(args: argparse.Namespace, client: EnOSClient, dests: list[Destination]) -> IdSource:
    from extractor.run import _sources as sources

    if args.ids:
        return sources.listed(args.ids)
    if args.retry_failed:
        return sources.failed(dests)
    tz = client.config.timezone
    start = sources.parse_time(args.from_time, "--from", tz)
    end = (
        sources.parse_time(args.to_time, "--to", tz)
        if args.to_time
        else datetime.now().astimezone()
    )
    return sources.discovered(
        client,
        start=start,
        end=end,
        types=args.types or ALL_TYPES,
        status=args.status,
        detail=args.detail,
    )


def simulate(args: argparse.Namespace) -> int:
    from extractor.simulator import Faults, build_simulator, describe_simulator

    faults = Faults(
        latency_ms=args.latency_ms,
        latency_jitter_ms=args.jitter_ms,
        rate_limit_rps=args.rate_limit_rps,
        throttle=args.throttle,
        server_error=args.server_error,
        timeout=args.timeout,
        drop=args.drop,
        malformed=args.malformed,
        code_error=args.code_error,
        expire_token_every=args.expire_token_every,
    )
    sim = build_simulator(
        host=args.host,
        port=args.port,
        seed=args.seed,
        flows=args.flows,
        timezone=args.timezone,
        faults=faults,
        service_path=args.service_path,
    )
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    with sim:
        print(describe_simulator(sim), flush=True)
        stopping.wait()
    print("enos-flows: simulator stopped", file=sys.stderr)
    return EXIT_OK


def schema(args: argparse.Namespace) -> int:
    from extractor.load import create_ddl

    sys.stdout.write(
        create_ddl(args.dialect, schema=args.db_schema, table_prefix=args.table_prefix)
    )
    return EXIT_OK


def views(args: argparse.Namespace) -> int:
    from extractor.load import connect
    from extractor.load._views import create_views

    if bool(args.sqlite) == bool(args.db):
        raise ConfigError("name one database: --sqlite PATH or --db URL")
    engine = connect(f"sqlite:///{args.sqlite}" if args.sqlite else args.db)
    try:
        for name in create_views(engine, schema=args.db_schema, table_prefix=args.table_prefix):
            print(name)
    finally:
        engine.dispose()
    return EXIT_OK


def compact(args: argparse.Namespace) -> int:
    from extractor.load import compact_parquet

    result = compact_parquet(args.parquet)
    print(
        f"{args.parquet}: {result.batches} staged batch(es) folded in, "
        f"{result.partitions} partition(s) rewritten in {result.seconds:.1f} s"
    )
    return EXIT_OK


def demo(args: argparse.Namespace) -> int:
    from extractor.run._demo import run_demo

    return run_demo(Path(args.out), instances=args.instances)
