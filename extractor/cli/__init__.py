"""The ``enos-flows`` command line: parsing, progress and exit codes; the work is elsewhere.

``_arguments`` declares the commands and options; ``_commands`` turns parsed options into
settings, a client and destinations and hands them to :mod:`extractor.run`. The heavy
libraries (pandas, pyarrow, SQLAlchemy, requests) are imported by the commands that use
them, so that ``--help`` and the light commands start at once.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence

from extractor.cli._arguments import parser
from extractor.cli._commands import Terminated, terminate
from extractor.errors import ConfigError, ExtractorError
from extractor.run._report import EXIT_FATAL, EXIT_USAGE

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser_ = parser()
    args = parser_.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    previous = signal.signal(signal.SIGTERM, terminate)
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
