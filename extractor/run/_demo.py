"""``make demo``: extract from the bundled simulator into SQLite and Parquet, then summarise."""

from __future__ import annotations

import collections
import sqlite3
import sys
from datetime import datetime, timedelta
from pathlib import Path

from extractor.config import FetchConfig, GatewayConfig
from extractor.gateway._client import EnOSClient
from extractor.load import ParquetDestination, SqlDestination, connect
from extractor.load._views import create_views
from extractor.run._pipeline import Destination, run_extract
from extractor.run._sources import discovered
from extractor.simulator import Population, SimCredentials, Simulator

_SECOND = timedelta(seconds=1)
_SUMMARY_QUERIES = {
    "Instances by status": """
        SELECT status_name, COUNT(*) FROM flow_instances
        GROUP BY status_name ORDER BY COUNT(*) DESC""",
    "Failures by flow (FAIL, INTERNAL_ERROR, TIMEOUT)": """
        SELECT flow_name, COUNT(*) FROM flow_instances
        WHERE status IN (-1, 4, 7) GROUP BY flow_name ORDER BY COUNT(*) DESC, flow_name
        LIMIT 5""",
    "Slowest runs (seconds; task timings are not in the API's payload)": """
        SELECT flow_name || ' ' || instance_id, ROUND(duration_s, 1) FROM flow_instances
        WHERE duration_s IS NOT NULL ORDER BY duration_s DESC LIMIT 5""",
    "Flows with the most tasks": """
        SELECT i.flow_name, MAX(i.task_count) FROM flow_instances i
        GROUP BY i.flow_name ORDER BY MAX(i.task_count) DESC LIMIT 5""",
    "Latest starts (mean start delay, seconds)": """
        SELECT flow_name, ROUND(AVG(start_delay_s), 1) FROM flow_instances
        WHERE start_delay_s IS NOT NULL GROUP BY flow_name
        ORDER BY AVG(start_delay_s) DESC LIMIT 5""",
}


def run_demo(out: Path, *, instances: int = 400) -> int:
    """Run the demo; return the exit code of the extract."""
    out.mkdir(parents=True, exist_ok=True)
    population = Population(seed=42, flows=40)
    creds = SimCredentials()
    with Simulator(population, credentials=creds) as sim:
        gateway = GatewayConfig(
            base_url=sim.url,
            app_key=creds.app_key,
            app_secret=creds.app_secret,
            org_id=creds.org_id,
            user_id=creds.user_id,
        )
        fetch = FetchConfig(workers=8, batch_size=200)
        dests: list[Destination] = [
            SqlDestination(f"sqlite:///{out / 'warehouse.sqlite'}"),
            ParquetDestination(out / "parquet"),
        ]
        print(
            f"simulator on {sim.url}; discovering and extracting {instances} instances",
            file=sys.stderr,
        )
        start, end = _window_of(population, instances)
        with EnOSClient(gateway, fetch=fetch) as client:
            source = discovered(client, start=start, end=end, fetch=fetch)
            report = run_extract(source.ids, client=client, destinations=dests, fetch=fetch)
    print(
        f"\nloaded {report.loaded} instances, {report.rows['task_instances']} task instances, "
        f"{report.rows['flow_dependencies']} dependencies, {report.rows['task_relations']} "
        f"relations, {report.rows['flow_parameters']} parameters; {report.failed} failed; "
        f"{report.seconds:.1f} s",
    )
    engine = connect(f"sqlite:///{out / 'warehouse.sqlite'}")
    views = create_views(engine)
    engine.dispose()
    _print_summary(out / "warehouse.sqlite")
    print(f"\nBI views created in the SQLite database: {', '.join(views)}")
    print(f"\nSQLite: {out / 'warehouse.sqlite'}\nParquet: {out / 'parquet'}/")
    return report.exit_code


def _window_of(population: Population, instances: int) -> tuple[datetime, datetime]:
    """The trigger times that hold the population's first ``instances`` instances, as
    discovery asks for them."""
    last = collections.deque(population.ids(limit=instances), maxlen=1)
    plan = population.plan(last[0]) if last else None
    if plan is None:
        raise ValueError(f"the simulator holds no {instances} instances")
    zone = population.zone
    return population.start.replace(tzinfo=zone), (plan.trigger + _SECOND).replace(tzinfo=zone)


def _print_summary(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        for title, sql in _SUMMARY_QUERIES.items():
            print(f"\n{title}:")
            for label, value in conn.execute(sql):
                print(f"  {value:>10}  {label}")
