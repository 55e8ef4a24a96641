"""Exit codes of ``enos-flows`` and of a run's report, documented in the README."""

from __future__ import annotations

EXIT_OK = 0
"""Everything loaded."""
EXIT_FATAL = 1
"""A fatal error: bad credentials, an unreachable gateway or destination."""
EXIT_USAGE = 2
"""Bad usage or configuration."""
EXIT_PARTIAL = 3
"""Some IDs failed; they are in ``failed_instances``."""
