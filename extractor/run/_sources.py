"""Where a run's instance IDs come from, and the identity under which it resumes.

A list, a file, standard input, the IDs a destination holds as failed, or discovery
with List Flow Instances over a time window. A source that can be read again the same
way has an identity (the same identity resumes the same run); stdin and the failed IDs
cannot, and have none.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

from extractor.config import FetchConfig
from extractor.errors import ConfigError
from extractor.gateway._client import EnOSClient
from extractor.run._discovery import ALL_TYPES, Detail, as_items, discover, windows
from extractor.run._fetch import Item
from extractor.run._pipeline import Destination


@dataclass(frozen=True)
class IdSource:
    """IDs to fetch, how many when that is cheap to know, and the run's identity
    (empty when the run cannot be resumed)."""

    ids: Iterator[Item]
    total: int | None
    identity: str

    def run_identity(self, destinations: Sequence[Destination]) -> str:
        """The identity of a run from this source into these destinations; empty when
        it cannot be resumed."""
        if not self.identity:
            return ""
        return f"{self.identity}>{'|'.join(d.label for d in destinations)}"


def listed(ids: Sequence[str]) -> IdSource:
    """IDs given on the command line or in code."""
    return IdSource(iter(ids), len(ids), f"ids:{','.join(ids)}")


def failed(destinations: Sequence[Destination]) -> IdSource:
    """The IDs the destinations hold in ``failed_instances``."""
    ids = sorted({i for d in destinations for i in d.failed_ids()})
    return IdSource(iter(ids), len(ids), "")


def from_file(name: str) -> IdSource:
    """One ID per line of a UTF-8 file (``-`` for standard input); blank lines and
    ``#`` comments, whole-line or after an ID, skipped.

    The file is read once before the run starts, to count its IDs and to find any line
    that is not UTF-8. The identity includes its size and time of change, so a
    rewritten file starts a new run.
    """
    if name == "-":
        return IdSource(read_lines(_decoded(sys.stdin.buffer, "standard input")), None, "")
    path = Path(name)
    try:
        stat = path.stat()
        with path.open("rb") as fh:
            total = sum(1 for _ in read_lines(_decoded(fh, str(path))))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    identity = f"file:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return IdSource(_file_lines(path), total, identity)


def discovered(
    client: EnOSClient,
    *,
    start: datetime,
    end: datetime,
    types: Sequence[int] = ALL_TYPES,
    status: str = "",
    detail: Detail = "full",
    fetch: FetchConfig | None = None,
) -> IdSource:
    """The instances List Flow Instances finds triggered in ``[start, end)``, of the
    given instance types and (comma-separated codes) statuses: their IDs to fetch, or
    with ``detail="list"`` the records themselves."""
    if end <= start:
        raise ConfigError("--to must be after --from")
    policy = fetch or client.fetch_config
    queries = windows(start, end, types=types, split=policy.split, at_least=policy.workers)
    found = discover(client, queries, fetch=policy, status=status)
    kinds = ",".join(map(str, sorted(set(types))))
    window = f"{start.isoformat()}:{end.isoformat()}:{kinds}:{status}:{detail}"
    return IdSource(as_items(found, detail), None, f"window:{window}")


def read_lines(lines: Iterable[str]) -> Iterator[str]:
    """The IDs of lines: stripped, without blank lines and ``#`` comments.

    >>> list(read_lines(["1-2\\n", "\\n", "# later\\n", " 3-4  # retried\\n"]))
    ['1-2', '3-4']
    """
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if text:
            yield text


def _decoded(lines: Iterable[bytes], name: str) -> Iterator[str]:
    """Lines of a file as UTF-8 text; a line that is not is a clear error."""
    for number, raw in enumerate(lines, 1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{name}, line {number}: not UTF-8 text (byte {raw[exc.start]:#04x} at "
                f"column {exc.start + 1}); IDs files must be UTF-8"
            ) from None


def parse_time(text: str, flag: str, tz: tzinfo | None) -> datetime:
    """An ISO 8601 time; a naive one is read in ``tz`` (the gateway's zone), else locally.

    >>> from datetime import timezone, timedelta
    >>> parse_time("2026-01-01T08:00", "--from", timezone(timedelta(hours=8))).isoformat()
    '2026-01-01T08:00:00+08:00'
    """
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{flag} must be an ISO 8601 time, got {text!r}") from None
    if value.tzinfo is None:
        value = value.astimezone() if tz is None else value.replace(tzinfo=tz)
    return value


def _file_lines(path: Path) -> Iterator[str]:
    with path.open("rb") as fh:
        yield from read_lines(_decoded(fh, str(path)))
