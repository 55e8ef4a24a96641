"""Fetch throughput against the bundled simulator on loopback, end to end into SQLite.

Prints instances/s, CPU seconds per 1,000 instances and peak RSS of the client process
for each case. The simulator runs in its own process so it does not share our
interpreter lock; the IDs come from a file, streamed as a user's would be.

    python benchmarks/fetch.py                       # every case but the 1M-ID one
    python benchmarks/fetch.py --case memory --ids 1000000
    python benchmarks/fetch.py --case latency --case ceiling
    python benchmarks/fetch.py --case destinations --ids 10000 --ids 100000

Cases: latency (50 ms, 16 and 64 workers, against the ideal workers/latency rate),
ceiling (zero latency, as many workers as helps), budget (--max-rps 200, 64 workers,
the busiest one-second window), faults (10% transient faults vs none, rows compared),
memory (N IDs in a child process: peak RSS), throttle (a gateway-side limit of 200
calls/s with no --max-rps: the share of the limit reached and of calls throttled; 5%
scattered 429s with a 1 s Retry-After against none, at 50 ms latency), discovery (50 ms
latency, a time window discovered with List Flow Instances and loaded with --detail
full, then list: instances per second and gateway calls per loaded instance),
destinations (N IDs over ~700 days, shuffled, into SQLite and then into Parquet with the
default batch size, each in a child process: instances/s, peak RSS, and for Parquet the
compaction time, the files left and the peak RSS of the loading and of the compaction
apart). The simulator runs in a process of its own, so no peak counts its population.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from extractor.config import FetchConfig, GatewayConfig
from extractor.gateway._client import EnOSClient
from extractor.load import ParquetDestination, SqlDestination
from extractor.load._parquet_files import data_files
from extractor.run._discovery import Detail
from extractor.run._pipeline import Destination, run_extract
from extractor.run._sources import discovered
from extractor.simulator import Faults, Population, SimCredentials, SimulatorProcess

CREDS = SimCredentials()
SEED, FLOWS = 5, 300
END = datetime(2026, 3, 1)


def write_ids(path: Path, count: int) -> datetime:
    """Write ``count`` simulator IDs to ``path``; return the population's start."""
    population = Population(seed=SEED, flows=FLOWS, end=END)
    with path.open("w") as fh:
        for instance_id in population.ids(limit=count):
            fh.write(instance_id + "\n")
    return population.start


def gateway(url: str) -> GatewayConfig:
    return GatewayConfig(
        base_url=url,
        app_key=CREDS.app_key,
        app_secret=CREDS.app_secret,
        org_id=CREDS.org_id,
        user_id=CREDS.user_id,
        timeout_s=10,
    )


def run(
    url: str, ids_path: Path, db: Path, fetch: FetchConfig, dest: Destination | None = None
) -> dict[str, Any]:
    """One extract into a fresh SQLite file (or ``dest``); returns figures and send times."""
    sends: list[float] = []
    dest = dest or SqlDestination(f"sqlite:///{db}")
    with EnOSClient(gateway(url), fetch=fetch) as client:
        acquire = client.limiter.acquire

        def recorded() -> float:
            waited = acquire()
            sends.append(time.monotonic())
            return waited

        client.limiter.acquire = recorded  # type: ignore[method-assign]
        cpu0, wall0 = time.process_time(), time.perf_counter()
        with ids_path.open() as fh:
            report = run_extract(
                (line.strip() for line in fh), client=client, destinations=[dest], fetch=fetch
            )
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    done = report.fetched + report.failed
    return {
        "instances": done,
        "loaded": report.loaded,
        "failed": report.failed,
        "retries": report.retries,
        "throttled": report.throttled,
        "rate": done / wall,
        "cpu_per_1000": cpu / done * 1000 if done else 0.0,
        "wall": wall,
        "sends": sends,
    }


def busiest_second(times: list[float]) -> int:
    times = sorted(times)
    return max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))


def line(label: str, r: dict[str, Any], extra: str = "") -> None:
    print(
        f"  {label:<34} {r['rate']:>8,.0f} inst/s  {r['cpu_per_1000']:>6.2f} CPU s/1000  "
        f"peak RSS {peak_rss_mb():>5.0f} MB  {extra}"
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def snapshot(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {
            t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("flow_instances", "task_instances", "task_relations", "flow_parameters")
        }


def case_latency(tmp: Path, start: datetime) -> None:
    print("50 ms latency (ideal = workers / 0.050 s):")
    ids = tmp / "ids-latency.txt"
    for workers, count, target in ((16, 3000, 0.90), (64, 8000, 0.75)):
        write_ids(ids, count)
        with SimulatorProcess(
            seed=SEED, flows=FLOWS, start=start, end=END, faults=Faults(latency_ms=50)
        ) as sim:
            r = run(sim.url, ids, tmp / f"lat{workers}.sqlite", FetchConfig(workers=workers))
        ideal = workers / 0.050
        line(
            f"{workers} workers",
            r,
            f"{r['rate'] / ideal:.0%} of ideal {ideal:.0f}/s (target {target:.0%})",
        )


def case_ceiling(tmp: Path, start: datetime) -> None:
    print("zero latency, end to end into SQLite (target 1,500 inst/s):")
    ids = tmp / "ids-ceiling.txt"
    write_ids(ids, 20000)
    for workers in (4, 8, 16, 32):
        with SimulatorProcess(seed=SEED, flows=FLOWS, start=start, end=END) as sim:
            r = run(sim.url, ids, tmp / f"ceil{workers}.sqlite", FetchConfig(workers=workers))
        line(f"{workers} workers", r)


def case_budget(tmp: Path, start: datetime) -> None:
    print("--max-rps 200 with 64 workers (never above 200 in any second, within 5% below):")
    ids = tmp / "ids-budget.txt"
    write_ids(ids, 3000)
    with SimulatorProcess(seed=SEED, flows=FLOWS, start=start, end=END) as sim:
        r = run(sim.url, ids, tmp / "budget.sqlite", FetchConfig(workers=64, max_rps=200))
    sends = r["sends"]
    achieved = (len(sends) - 1) / (sends[-1] - sends[0])
    line(
        "64 workers, budget 200",
        r,
        f"sent {achieved:.1f}/s, busiest 1 s window {busiest_second(sends)}",
    )


def case_faults(tmp: Path, start: datetime) -> None:
    print("10% transient faults (5xx, drops, malformed bodies, 62109) vs none:")
    ids = tmp / "ids-faults.txt"
    write_ids(ids, 6000)
    faults = Faults(server_error=0.04, drop=0.02, malformed=0.02, code_error=0.02, fault_attempts=2)
    results = {}
    for label, plan in (("fault-free", Faults()), ("10% faults", faults)):
        with SimulatorProcess(seed=SEED, flows=FLOWS, start=start, end=END, faults=plan) as sim:
            db = tmp / f"{label}.sqlite"
            r = run(sim.url, ids, db, FetchConfig(workers=32, backoff_base_s=0.05))
        results[label] = (r, snapshot(db))
        line(label, r, f"retries {r['retries']}, failed {r['failed']}")
    (clean, clean_rows), (faulty, faulty_rows) = results["fault-free"], results["10% faults"]
    print(
        f"  throughput ratio {faulty['rate'] / clean['rate']:.0%} (target 80%); rows "
        f"{'identical' if clean_rows == faulty_rows else 'DIFFER'}: {faulty_rows}"
    )


def case_memory(tmp: Path, count: int) -> None:
    """Run the extract in a child process so its peak RSS is its own."""
    ids = tmp / f"ids-{count}.txt"
    start = write_ids(ids, count)
    code = (
        "import json,sys,resource; from pathlib import Path; from datetime import datetime;"
        "sys.path.insert(0, 'benchmarks'); import fetch as b;"
        f"from extractor.simulator import SimulatorProcess;"
        f"sim = SimulatorProcess(seed=b.SEED, flows=b.FLOWS, start=datetime.fromisoformat("
        f"'{start.isoformat()}'), end=b.END).start();"
        f"r = b.run(sim.url, Path('{ids}'), Path('{tmp}/mem{count}.sqlite'),"
        f" b.FetchConfig(workers=16)); sim.stop(); r.pop('sends');"
        "r['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024;"
        "print(json.dumps(r))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    r = json.loads(out.strip().splitlines()[-1])
    print(
        f"  {count:>9,} IDs: {r['rate']:,.0f} inst/s, {r['cpu_per_1000']:.2f} CPU s/1000, "
        f"peak RSS {r['peak_rss_mb']:.0f} MB, loaded {r['loaded']:,}, failed {r['failed']}"
    )


def case_throttle(tmp: Path, start: datetime) -> None:
    print("a gateway limit of 200 calls/s, no --max-rps, 16 workers (target >= 80%, <= 10%):")
    ids = tmp / "ids-throttle.txt"
    write_ids(ids, 6000)
    limit = Faults(rate_limit_rps=200)
    with SimulatorProcess(seed=SEED, flows=FLOWS, start=start, end=END, faults=limit) as sim:
        r = run(sim.url, ids, tmp / "limit.sqlite", FetchConfig(workers=16))
        calls = sim.stats().requests.get("get", 0)
    share = r["throttled"] / calls
    line("limit 200/s", r, f"{r['rate'] / 200:.0%} of the limit, {share:.1%} of calls throttled")
    print(
        "5% scattered 429s (Retry-After 1 s) vs none, 50 ms latency, 16 workers "
        "(target: cost <= 30%):"
    )
    write_ids(ids, 3000)
    results = {}
    for label, plan in (
        ("no 429s", Faults(latency_ms=50)),
        ("5% 429s", Faults(latency_ms=50, throttle=0.05, retry_after_s=1.0)),
    ):
        with SimulatorProcess(seed=SEED, flows=FLOWS, start=start, end=END, faults=plan) as sim:
            results[label] = run(sim.url, ids, tmp / f"{label}.sqlite", FetchConfig(workers=16))
        line(label, results[label], f"throttled {results[label]['throttled']}")
    ratio = results["5% 429s"]["rate"] / results["no 429s"]["rate"]
    print(f"  throughput with scattered 429s: {ratio:.0%} of fault-free")


def discover_into(
    url: str, db: Path, fetch: FetchConfig, window: tuple[datetime, datetime], detail: Detail
) -> dict[str, Any]:
    """One discovery run over ``window`` into a fresh SQLite file."""
    dest = SqlDestination(f"sqlite:///{db}")
    with EnOSClient(gateway(url), fetch=fetch) as client:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        source = discovered(client, start=window[0], end=window[1], detail=detail, fetch=fetch)
        report = run_extract(source.ids, client=client, destinations=[dest], fetch=fetch)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {
        "loaded": report.loaded,
        "failed": report.failed + report.rejected,
        "rate": report.loaded / wall,
        "cpu_per_1000": cpu / report.loaded * 1000,
        "calls_per_instance": report.calls_per_instance,
    }


def case_discovery(tmp: Path, start: datetime) -> None:
    print("discovery at 50 ms latency, 16 workers, 100 per page (target: list >= 20x full):")
    zone = Population(seed=SEED, flows=FLOWS, end=END).zone
    base = start.replace(tzinfo=zone)
    fetch = FetchConfig(workers=16, page_size=100)
    results = {}
    for detail, days in (("full", 1), ("list", 10)):
        window = (base, base + timedelta(days=days))
        with SimulatorProcess(
            seed=SEED, flows=FLOWS, start=start, end=END, faults=Faults(latency_ms=50)
        ) as sim:
            r = discover_into(sim.url, tmp / f"disc-{detail}.sqlite", fetch, window, detail)
        results[detail] = r
        line(
            f"--detail {detail} ({days} d, {r['loaded']:,} inst)",
            r,
            f"{r['calls_per_instance']:.4f} calls/instance, failed {r['failed']}",
        )
    ratio = results["list"]["rate"] / results["full"]["rate"]
    print(f"  list / full: {ratio:.1f}x instances per second")


SPREAD_FLOWS, SPREAD_DAYS = 30, 700
"""The destinations case: few flows over many days, so the IDs span hundreds of dates."""


def write_spread_ids(path: Path, count: int) -> datetime:
    """Write ``count`` IDs evenly over :data:`SPREAD_DAYS` days, shuffled; return the start."""
    start = END - timedelta(days=SPREAD_DAYS)
    population = Population(seed=SEED, flows=SPREAD_FLOWS, start=start, end=END)
    stride = max(population.count() // count, 1)
    ids = list(itertools.islice(population.ids(), 0, None, stride))[:count]
    random.Random(SEED).shuffle(ids)
    path.write_text("\n".join(ids) + "\n")
    return start


class _TimedParquet(ParquetDestination):
    """Times the end-of-run compaction and, on Linux, measures its own peak RSS."""

    compact_s = 0.0
    loading_peak_mb = 0.0
    compact_peak_mb = float("nan")

    def finish(self) -> None:
        self.loading_peak_mb = peak_rss_mb()
        clear_refs = Path("/proc/self/clear_refs")
        if clear_refs.exists():
            clear_refs.write_text("5")  # resets the peak resident set (and ru_maxrss)
        started = time.perf_counter()
        super().finish()
        self.compact_s = time.perf_counter() - started
        if clear_refs.exists():
            self.compact_peak_mb = peak_rss_mb()


def destination_run(target: str, url: str, ids: Path, out: Path) -> dict[str, Any]:
    """One extract into ``target`` (sqlite or parquet); figures with this process's peak RSS."""
    dest: Destination
    if target == "sqlite":
        dest = SqlDestination(f"sqlite:///{out / 'flows.sqlite'}")
    else:
        dest = _TimedParquet(out / "parquet")
    r = run(url, ids, out / "unused.sqlite", FetchConfig(workers=16), dest)
    r.pop("sends")
    r["peak_rss_mb"] = peak_rss_mb()
    if isinstance(dest, _TimedParquet):
        r["peak_rss_mb"] = max(dest.loading_peak_mb, r["peak_rss_mb"])
        r["loading_peak_mb"], r["compact_peak_mb"] = dest.loading_peak_mb, dest.compact_peak_mb
        root = out / "parquet"
        tables = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")]
        r["compact_s"] = dest.compact_s
        r["files"] = sum(len(data_files(f)) for t in tables for f in [t, *t.iterdir()])
        r["partitions"] = sum(1 for t in tables for f in t.iterdir() if f.is_dir())
    return r


def case_destinations(tmp: Path, counts: list[int]) -> None:
    """Each count into SQLite, then Parquet: each extract in a child process of its own."""
    for count in counts:
        ids = tmp / f"spread-{count}.txt"
        start = write_spread_ids(ids, count)
        with SimulatorProcess(seed=SEED, flows=SPREAD_FLOWS, start=start, end=END) as sim:
            for target in ("sqlite", "parquet"):
                out = tmp / f"{target}-{count}"
                out.mkdir()
                code = (
                    "import json, sys; from pathlib import Path; sys.path.insert(0, 'benchmarks');"
                    "import fetch as b;"
                    f"r = b.destination_run({target!r}, {sim.url!r}, Path({str(ids)!r}),"
                    f" Path({str(out)!r})); print(json.dumps(r))"
                )
                done = subprocess.run(
                    [sys.executable, "-c", code], check=True, capture_output=True, text=True
                )
                r = json.loads(done.stdout.strip().splitlines()[-1])
                extra = ""
                if target == "parquet":
                    extra = (
                        f", compaction {r['compact_s']:.1f} s, {r['files']:,} files in "
                        f"{r['partitions']:,} partitions; peak RSS while batches load "
                        f"{r['loading_peak_mb']:.0f} MB, during the compaction "
                        f"{r['compact_peak_mb']:.0f} MB"
                    )
                print(
                    f"  {count:>9,} IDs into {target:<7} {r['rate']:>6,.0f} inst/s, "
                    f"{r['cpu_per_1000']:.2f} CPU s/1000, peak RSS {r['peak_rss_mb']:.0f} MB, "
                    f"loaded {r['loaded']:,}{extra}"
                )


CASES = (
    "latency",
    "ceiling",
    "budget",
    "faults",
    "memory",
    "discovery",
    "throttle",
    "destinations",
)


def main() -> None:
    parser = argparse.ArgumentParser(description="Fetch throughput against the simulator.")
    parser.add_argument("--case", action="append", choices=CASES)
    parser.add_argument(
        "--ids", type=int, action="append", help="ID counts for memory and destinations"
    )
    args = parser.parse_args()
    cases = args.case or CASES
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        start = write_ids(tmp / "ids-probe.txt", 20000)
        if "latency" in cases:
            case_latency(tmp, start)
        if "ceiling" in cases:
            case_ceiling(tmp, start)
        if "budget" in cases:
            case_budget(tmp, start)
        if "faults" in cases:
            case_faults(tmp, start)
        if "discovery" in cases:
            case_discovery(tmp, start)
        if "throttle" in cases:
            case_throttle(tmp, start)
        if "memory" in cases:
            print("peak RSS of the whole client process by number of IDs:")
            for count in args.ids or [100_000]:
                case_memory(tmp, count)
        if "destinations" in cases:
            print("SQLite and Parquet in the same run, IDs over ~700 days (default batch size):")
            case_destinations(tmp, args.ids or [10_000, 100_000])


if __name__ == "__main__":
    main()
