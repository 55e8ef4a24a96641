"""What a run tells its user: while it goes, a live bar on a terminal or periodic log
lines elsewhere (nothing when quiet); when it ends, a summary and the JSON report."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from extractor.errors import ConfigError
from extractor.gateway._health import GatewayHealth
from extractor.run._report import EXIT_OK, RunReport

log = logging.getLogger("extractor")
_EVERY_S = 1.0


class Progress:
    """Callable given to :func:`extractor.run._pipeline.run_extract` as ``on_progress``.

    The pipeline calls it for every finished ID; it shows at most one update a second
    (a bar on a terminal, log lines elsewhere, nothing when quiet), and a ticker shows
    one every second even while no ID finishes (an outage, a long throttle).
    """

    def __init__(
        self,
        *,
        total: int | None,
        quiet: bool = False,
        stream: TextIO | None = None,
        health: GatewayHealth | None = None,
    ) -> None:
        self._stream = stream or sys.stderr
        self._quiet = quiet
        self._health = health
        self._bar: tqdm[Any] | None = None
        self._last = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.report: RunReport | None = None
        """The run's report as last seen: what it has done so far."""
        if not quiet and self._stream.isatty():
            self._bar = tqdm(total=total, unit="id", file=self._stream, dynamic_ncols=True)
        self.total = total
        if not quiet:
            self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._ticker.start()

    @property
    def total(self) -> int | None:
        """IDs the run will see, when known."""
        return self._total

    @total.setter
    def total(self, value: int | None) -> None:
        self._total = value
        if self._bar is not None:
            self._bar.total = value
            self._bar.refresh()

    def __call__(self, report: RunReport) -> None:
        self.report = report
        if not self._quiet and time.monotonic() - self._last >= _EVERY_S:
            self._show(report)

    def _tick(self) -> None:
        while not self._stop.wait(_EVERY_S):
            report = self.report
            if report is not None and time.monotonic() - self._last >= _EVERY_S:
                self._show(report)

    def _show(self, report: RunReport) -> None:
        with self._lock:
            self._last = time.monotonic()
            done = report.fetched + report.failed + report.skipped
            elapsed = time.monotonic() - report.started_at
            rate = (report.fetched + report.failed) / elapsed if elapsed > 0 else 0.0
            state = "DOWN, paused" if self._health is not None and self._health.is_down else "up"
            if self._bar is not None:
                self._bar.update(done - self._bar.n)
                self._bar.set_postfix(
                    failed=report.failed + report.rejected,
                    retries=report.retries,
                    throttled=report.throttled,
                    gateway=state,
                    refresh=True,
                )
                return
            total = f"/{self._total}" if self._total else ""
            eta = ""
            if self._total and rate > 0:
                eta = f", ETA {max(self._total - done, 0) / rate:.0f} s"
            log.info(
                "progress: %d%s ids done, %d failed, %.0f/s%s, %d retries, %d throttled, "
                "gateway %s",
                done,
                total,
                report.failed + report.rejected,
                rate,
                eta,
                report.retries,
                report.throttled,
                state,
            )

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._bar is not None:
            if self.report is not None:
                self._show(self.report)
            self._bar.close()


def summarise(report: RunReport, *, quiet: bool, stream: TextIO | None = None) -> None:
    """Print what the run did, why IDs failed, and fields this version does not know;
    only a fatal error or failures when ``quiet``."""
    out = stream or sys.stderr
    if report.fatal_error:
        print(f"enos-flows: fatal: {report.fatal_error}", file=out)
    if quiet and report.exit_code == EXIT_OK:
        return
    print(
        f"loaded {report.loaded} instances ({report.rows.get('task_instances', 0)} tasks), "
        f"{report.failed} failed to fetch, {report.rejected} rejected, "
        f"{report.skipped} already done, in {report.seconds:.1f} s "
        f"({report.instances_per_s:.0f}/s)",
        file=out,
    )
    if report.outages:
        print(
            f"the gateway was unreachable {report.outages} time(s), "
            f"{report.outage_seconds:.0f} s in all; no ID was charged for it",
            file=out,
        )
    if report.calls_per_instance is not None:
        print(
            f"{report.calls} gateway calls, {report.calls_per_instance:.3f} per loaded instance",
            file=out,
        )
    if report.failures_by_reason:
        reasons = ", ".join(f"{k}: {v}" for k, v in report.failures_by_reason.most_common())
        print(f"failures by reason: {reasons}", file=out)
        for line in report.failed_ids_sample[:10]:
            print(f"  {line}", file=out)
        print("the failed IDs are in failed_instances; --retry-failed fetches them again", file=out)
    if report.unknown_fields:
        names = ", ".join(sorted(report.unknown_fields))
        print(f"note: fields this version does not know were kept in extra_json: {names}", file=out)


def write_report(path: Path, report: RunReport) -> None:
    """Write the run's report as JSON."""
    try:
        path.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {path}: {exc.strerror}") from None
