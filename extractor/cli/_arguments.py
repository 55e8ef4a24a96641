"""The commands and options of ``enos-flows``, each documented in the README."""

from __future__ import annotations

import argparse

from extractor.cli import _commands as commands
from extractor.run._discovery import ALL_TYPES


def parser() -> argparse.ArgumentParser:
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
    ext.set_defaults(func=commands.extract)

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
    syn.set_defaults(func=commands.sync)

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
    sim.set_defaults(func=commands.simulate)

    sch = sub.add_parser(
        "schema",
        help="print the DDL of every table",
        description="Print CREATE TABLE statements generated from the declared schema.",
    )
    sch.add_argument("--dialect", default="sqlite", choices=("sqlite", "postgresql"))
    sch.add_argument("--schema", dest="db_schema", metavar="NAME")
    sch.add_argument("--table-prefix", default="")
    sch.set_defaults(func=commands.schema)

    views = sub.add_parser(
        "views",
        help="create or replace the BI views in a database",
        description="Create or replace the BI views (extractor/load/sql/views_*.sql) over "
        "loaded tables with their default names, in SQLite or PostgreSQL.",
    )
    views.add_argument("--sqlite", metavar="PATH", help="SQLite database file")
    views.add_argument("--db", metavar="URL", help="PostgreSQL URL")
    views.add_argument(
        "--schema", dest="db_schema", metavar="NAME", help="schema of the tables and views"
    )
    views.add_argument(
        "--table-prefix", default="", metavar="PREFIX", help="prefix of the tables and views"
    )
    views.set_defaults(func=commands.views)

    compact = sub.add_parser(
        "compact",
        help="fold staged batches into a Parquet directory and merge its small files",
        description="Fold into the visible files the batches that interrupted runs left "
        "staged, and rewrite each partition that holds more than one file as one file. "
        "Other writers wait for it on the directory's lock.",
    )
    compact.add_argument("--parquet", metavar="DIR", required=True, help="the directory")
    compact.set_defaults(func=commands.compact)

    demo = sub.add_parser(
        "demo",
        help="extract from the bundled simulator into ./demo",
        description="Start the simulator, extract a few hundred instances "
        "into DIR/warehouse.sqlite and DIR/parquet/, print a summary.",
    )
    demo.add_argument("--out", default="demo", metavar="DIR")
    demo.add_argument("--instances", type=int, default=400)
    demo.set_defaults(func=commands.demo)
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
