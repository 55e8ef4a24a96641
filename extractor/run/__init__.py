"""A run: IDs from a source, fetched, flattened and loaded, with progress and a report.

``_sources`` gives the IDs (a list, a file, the failed ones, or List Flow Instances
through ``_discovery``); ``_fetch`` fetches them concurrently; ``_pipeline`` flattens and
loads them in batches, resumably; ``_sync`` keeps loaded tables current; ``_progress``
shows the run and ``_report`` says what it did and how it ended (exit codes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from extractor._lazy import exports

__all__ = [
    "EXIT_FATAL",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "Destination",
    "IdSource",
    "RunReport",
    "discover",
    "extract",
    "flatten",
    "run_extract",
    "run_sync",
]

__getattr__, __dir__ = exports(globals(), __all__)

if TYPE_CHECKING:
    from extractor.run._discovery import discover
    from extractor.run._pipeline import Destination, extract, flatten, run_extract
    from extractor.run._report import EXIT_FATAL, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, RunReport
    from extractor.run._sources import IdSource
    from extractor.run._sync import run_sync
