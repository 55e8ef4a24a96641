"""Progress: a live bar on a terminal, periodic log lines elsewhere, nothing when quiet."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

from extractor.pipeline import RunReport

log = logging.getLogger("extractor")
_LOG_EVERY_S = 10.0


class Progress:
    """Callable given to :func:`extractor.pipeline.run_extract` as ``on_progress``."""

    def __init__(
        self, *, total: int | None, quiet: bool = False, stream: TextIO | None = None
    ) -> None:
        self._stream = stream or sys.stderr
        self._quiet = quiet
        self._bar: tqdm[Any] | None = None
        self._last_log = 0.0
        self._total = total
        if not quiet and self._stream.isatty():
            self._bar = tqdm(total=total, unit="id", file=self._stream, dynamic_ncols=True)

    def __call__(self, report: RunReport) -> None:
        done = report.fetched + report.failed + report.skipped
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
            self._bar.set_postfix(
                failed=report.failed + report.rejected,
                retries=report.retries,
                rate=f"{report.instances_per_s:.0f}/s",
                refresh=False,
            )
        elif not self._quiet and time.monotonic() - self._last_log >= _LOG_EVERY_S:
            self._last_log = time.monotonic()
            total = f"/{self._total}" if self._total else ""
            log.info(
                "progress: %d%s ids done, %d failed, %d retries, %.0f instances/s",
                done,
                total,
                report.failed + report.rejected,
                report.retries,
                report.instances_per_s,
            )

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
