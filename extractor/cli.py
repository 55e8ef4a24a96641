"""The ``enos-flows`` command line: parsing, progress and exit codes; the work is elsewhere."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from extractor.config import FetchConfig, load_gateway_config
from extractor.discovery import ALL_TYPES
from extractor.errors import ConfigError, ExtractorError
from extractor.exits import EXIT_FATAL, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from extractor.client import EnOSClient
    from extractor.pipeline import Destination, RunReport
    from extractor.progress import Progress
    from extractor.sources import IdSource

    Work = Callable[[EnOSClient, FetchConfig, list[Destination], Progress], RunReport]

# The heavy modules (pandas, pyarrow, SQLAlchemy, requests) are imported by the commands
# that use them, so that --help and the light commands start at once.
log = logging.getLogger("extractor")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"enos-flows: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ExtractorError as exc:
        print(f"enos-flows: error: {exc}", file=sys.stderr)
        return EXIT_FATAL
    except (KeyboardInterrupt, Terminated) as exc:
        name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        print(
            f"enos-flows: interrupted by {name}; run the same command again to resume",
            file=sys.stderr,
        )
        return 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return code


class Terminated(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C, so that the report is written on the way."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enos-flows",
        description="Extract EnOS Batch Processing flow instances into SQL and Parquet tables.",
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    ext = sub.add_parser(
        "extract",
        help="fetch flow instances and load them",
        description="Fetch flow instances by ID (or discover them) and load them into "
        "SQLite, any SQLAlchemy database and/or Parquet. Exit codes: 0 all loaded, "
        "3 some IDs failed (see failed_instances), 1 fatal error, 2 bad usage.",
    )
    src = ext.add_argument_group("which instances (one of)")
    one = src.add_mutually_exclusive_group(required=True)
    one.add_argument("--ids-file", metavar="FILE", help="one ID per line; '-' reads stdin")
    one.add_argument("--ids", nargs="+", metavar="ID", help="IDs on the command line")
    one.add_argument(
        "--from",
        dest="from_time",
        metavar="TIME",
        help="discover instances triggered at or after TIME (ISO 8601)",
    )
    one.add_argument(
        "--retry-failed",
        action="store_true",
        help="fetch again the IDs in the destination's failed_instances",
    )
    src.add_argument(
        "--to",
        dest="to_time",
        metavar="TIME",
        help="with --from: trigger time upper bound, exclusive (default now)",
    )
    _add_type_arg(src, "with --from: ")
    src.add_argument(
        "--status",
        default="",
        metavar="CODES",
        help="with --from: comma-separated status codes, e.g. -1,1",
    )
    _add_detail_arg(src, "with --from: ")
    _add_destination_args(ext)
    _add_gateway_args(ext)
    _add_fetch_args(ext)
    ext.add_argument("--report", metavar="FILE", help="write a JSON run report")
    ext.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    ext.add_argument(
        "--no-resume", action="store_true", help="start afresh even if the same run was interrupted"
    )
    ext.set_defaults(func=_cmd_extract)

    syn = sub.add_parser(
        "sync",
        help="incremental load: new, still-moving and failed instances",
        description="Discover instances triggered since the stored watermark (or --since), "
        "fetch those not yet loaded in a final status, re-fetch loaded instances that are "
        "still moving (RUNNING, WAIT, READY, INIT, SUSPEND, RERUN) and failed IDs, then "
        "move the watermark. State lives in the destination, so any machine can run it "
        "every few minutes. Same exit codes as extract.",
    )
    syn.add_argument(
        "--since",
        metavar="TIME",
        help="window start (ISO 8601); default: stored watermark - lookback",
    )
    syn.add_argument("--until", metavar="TIME", help="window end, exclusive (default now)")
    syn.add_argument(
        "--lookback",
        type=float,
        default=60.0,
        metavar="MIN",
        help="minutes to re-scan before the watermark (default 60)",
    )
    syn.add_argument(
        "--settle-after",
        type=float,
        default=7.0,
        metavar="DAYS",
        help="instances triggered longer ago than this and still not final are re-checked "
        "once a day, not on every sync (default 7)",
    )
    _add_type_arg(syn, "")
    _add_detail_arg(syn, "")
    _add_destination_args(syn, modes=False)  # sync re-loads instances as they change
    _add_gateway_args(syn)
    _add_fetch_args(syn)
    syn.add_argument("--report", metavar="FILE", help="write a JSON run report")
    syn.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    syn.set_defaults(func=_cmd_sync)

    sim = sub.add_parser(
        "simulate",
        help="run the bundled EnOS gateway simulator",
        description="Serve a deterministic EnOS gateway on loopback until "
        "interrupted (Ctrl-C or SIGTERM). It prints its URL, credentials, time zone "
        "and the trigger times its instances span, with a command that extracts from "
        "it. --port 0 takes a free port.",
    )
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8089)
    sim.add_argument("--seed", type=int, default=42)
    sim.add_argument("--flows", type=int, default=200)
    sim.add_argument("--timezone", default="Asia/Shanghai")
    sim.add_argument(
        "--service-path",
        default="batch-processing-service/v2.1",
        help="the path to serve the Batch Processing Service at",
    )
    f = sim.add_argument_group("fault injection (shares are 0..1 of Get Flow Instance calls)")
    f.add_argument("--latency-ms", type=float, default=0.0)
    f.add_argument("--jitter-ms", type=float, default=0.0)
    f.add_argument("--rate-limit-rps", type=float, default=0.0, help="server-side limit")
    for name in ("throttle", "server-error", "timeout", "drop", "malformed", "code-error"):
        f.add_argument(f"--{name}", type=float, default=0.0, metavar="SHARE")
    f.add_argument("--expire-token-every", type=int, default=0, metavar="N")
    sim.set_defaults(func=_cmd_simulate)

    sch = sub.add_parser(
        "schema",
        help="print the DDL of every table",
        description="Print CREATE TABLE statements generated from the declared schema.",
    )
    sch.add_argument("--dialect", default="sqlite", choices=("sqlite", "postgresql"))
    sch.add_argument("--schema", dest="db_schema", metavar="NAME")
    sch.add_argument("--table-prefix", default="")
    sch.set_defaults(func=_cmd_schema)

    views = sub.add_parser(
        "views",
        help="create or replace the BI views in a database",
        description="Create or replace the BI views (sql/views_*.sql) over loaded tables "
        "with their default names, in SQLite or PostgreSQL.",
    )
    views.add_argument("--sqlite", metavar="PATH", help="SQLite database file")
    views.add_argument("--db", metavar="URL", help="PostgreSQL URL")
    views.add_argument(
        "--schema", dest="db_schema", metavar="NAME", help="schema of the tables and views"
    )
    views.add_argument(
        "--table-prefix", default="", metavar="PREFIX", help="prefix of the tables and views"
    )
    views.set_defaults(func=_cmd_views)

    compact = sub.add_parser(
        "compact",
        help="fold staged batches into a Parquet directory and merge its small files",
        description="Fold into the visible files the batches that interrupted runs left "
        "staged, and rewrite each partition that holds more than one file as one file. "
        "Other writers wait for it on the directory's lock.",
    )
    compact.add_argument("--parquet", metavar="DIR", required=True, help="the directory")
    compact.set_defaults(func=_cmd_compact)

    demo = sub.add_parser(
        "demo",
        help="extract from the bundled simulator into ./demo",
        description="Start the simulator, extract a few hundred instances "
        "into DIR/warehouse.sqlite and DIR/parquet/, print a summary.",
    )
    demo.add_argument("--out", default="demo", metavar="DIR")
    demo.add_argument("--instances", type=int, default=400)
    demo.set_defaults(func=_cmd_demo)
    return parser


def _add_type_arg(p: argparse._ActionsContainer, prefix: str) -> None:
    p.add_argument(
        "--type",
        dest="types",
        type=int,
        action="append",
        choices=ALL_TYPES,
        help=f"{prefix}instance type to discover: 0 manual, 1 scheduled, 2 temporary; "
        "repeatable (default all three)",
    )


def _add_detail_arg(p: argparse._ActionsContainer, prefix: str) -> None:
    p.add_argument(
        "--detail",
        default="full",
        choices=("full", "list"),
        help=f"{prefix}full (default) fetches each discovered instance with Get Flow "
        "Instance; list loads the records of the list pages, with no call per instance "
        "and no task status",
    )


def _add_destination_args(p: argparse.ArgumentParser, *, modes: bool = True) -> None:
    g = p.add_argument_group("where to load (at least one)")
    g.add_argument("--sqlite", metavar="PATH", help="SQLite database file")
    g.add_argument("--db", metavar="URL", help="SQLAlchemy URL, e.g. postgresql+psycopg://...")
    g.add_argument("--parquet", metavar="DIR", help="directory of Parquet datasets")
    if modes:
        g.add_argument(
            "--mode",
            default="upsert",
            choices=("upsert", "append", "replace"),
            help="upsert (default) replaces re-loaded instances with their children",
        )
    else:
        p.set_defaults(mode="upsert")
    g.add_argument("--schema", dest="db_schema", metavar="NAME", help="database schema")
    g.add_argument("--table-prefix", default="", metavar="PREFIX")


def _add_gateway_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "gateway (else ENOS_GATEWAY, ENOS_APP_KEY, ENOS_APP_SECRET, ENOS_ORG_ID, "
        "ENOS_USER_ID, or a TOML file; the secret is never a flag)"
    )
    g.add_argument("--config", metavar="FILE", help="TOML file with a [gateway] table")
    g.add_argument("--gateway", metavar="URL")
    g.add_argument("--app-key")
    g.add_argument("--org-id")
    g.add_argument("--user-id")
    g.add_argument(
        "--timezone", metavar="TZ", help="zone of the API's timestamps (default: ask Get Time Zone)"
    )
    g.add_argument(
        "--service-path",
        metavar="PATH",
        help="the Batch Processing Service's path (default batch-processing-service/v2.1; "
        "dataflow-batch-service/v2.0 on platforms before EnOS 2.1.2)",
    )
    g.add_argument("--timeout", type=float, metavar="S", help="per request (default 30)")
    g.add_argument(
        "--insecure", action="store_true", default=None, help="do not verify TLS certificates"
    )


def _add_fetch_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("fetching")
    g.add_argument("--workers", type=int, default=16, help="concurrent requests (default 16)")
    g.add_argument("--max-rps", type=float, metavar="N", help="never more than N requests/s")
    g.add_argument("--max-attempts", type=int, default=6, help="per ID (default 6)")
    g.add_argument(
        "--deadline",
        type=float,
        default=120.0,
        metavar="S",
        help="give up retrying an ID after S seconds (default 120)",
    )
    g.add_argument("--batch-size", type=int, default=2000, help="instances per load batch")
    g.add_argument(
        "--page-size",
        type=int,
        default=100,
        metavar="N",
        help="instances per List Flow Instances page (default 100)",
    )
    g.add_argument(
        "--outage-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="how long every worker waits for an unreachable gateway before the run stops "
        "with its progress kept (default 300)",
    )
    g.add_argument(
        "--max-wait",
        type=float,
        default=30.0,
        metavar="S",
        help="longest single wait between attempts, Retry-After included (default 30)",
    )


def _destinations(args: argparse.Namespace) -> list[Destination]:
    from extractor.destinations import ParquetDestination, SqlDestination

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
    from extractor.client import EnOSClient

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
    from extractor.pipeline import RunReport
    from extractor.progress import Progress, summarise, write_report

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


def _cmd_sync(args: argparse.Namespace) -> int:
    from extractor.sources import parse_time
    from extractor.sync import run_sync

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


def _cmd_extract(args: argparse.Namespace) -> int:
    from extractor import sources
    from extractor.pipeline import run_extract

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
    from extractor import sources

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


def _cmd_simulate(args: argparse.Namespace) -> int:
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


def _cmd_schema(args: argparse.Namespace) -> int:
    from extractor.loaders import create_ddl

    sys.stdout.write(
        create_ddl(args.dialect, schema=args.db_schema, table_prefix=args.table_prefix)
    )
    return EXIT_OK


def _cmd_views(args: argparse.Namespace) -> int:
    from extractor.loaders import connect
    from extractor.views import create_views

    if bool(args.sqlite) == bool(args.db):
        raise ConfigError("name one database: --sqlite PATH or --db URL")
    engine = connect(f"sqlite:///{args.sqlite}" if args.sqlite else args.db)
    try:
        for name in create_views(engine, schema=args.db_schema, table_prefix=args.table_prefix):
            print(name)
    finally:
        engine.dispose()
    return EXIT_OK


def _cmd_compact(args: argparse.Namespace) -> int:
    from extractor.loaders import compact_parquet

    result = compact_parquet(args.parquet)
    print(
        f"{args.parquet}: {result.batches} staged batch(es) folded in, "
        f"{result.partitions} partition(s) rewritten in {result.seconds:.1f} s"
    )
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from extractor.demo import run_demo

    return run_demo(Path(args.out), instances=args.instances)
