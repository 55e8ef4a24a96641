"""Where a run's IDs come from: a list, a file or stdin, the failed IDs of destinations;
times given on the command line; the identity under which a run resumes."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from extractor.errors import ConfigError
from extractor.load import SqlDestination
from extractor.run._pipeline import flatten
from extractor.run._sources import IdSource, failed, from_file, listed, parse_time

PLUS_8 = timezone(timedelta(hours=8))


def write(path: Path, content: bytes) -> str:
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize(
    ("content", "ids"),
    [
        pytest.param(b"a-1\nb-2\n", ["a-1", "b-2"], id="one-per-line"),
        pytest.param(b"a-1\n\n   \nb-2", ["a-1", "b-2"], id="blank-lines-no-final-newline"),
        pytest.param(b"# header\na-1\n  # indented\nb-2\n", ["a-1", "b-2"], id="comments"),
        pytest.param(b"a-1   # retried\n  b-2\t\n", ["a-1", "b-2"], id="inline-comment-spaces"),
        pytest.param(b"a-1\r\nb-2\r\n", ["a-1", "b-2"], id="crlf"),
        pytest.param(b"a-1\nb-2\na-1\n", ["a-1", "b-2", "a-1"], id="duplicates-kept"),
        pytest.param("ü-1\n".encode(), ["ü-1"], id="utf8"),
        pytest.param(b"", [], id="empty"),
    ],
)
def test_from_file_reads_ids_and_counts_them(
    tmp_path: Path, content: bytes, ids: list[str]
) -> None:
    source = from_file(write(tmp_path / "ids.txt", content))
    assert list(source.ids) == ids
    assert source.total == len(ids)


def test_from_file_identity_names_the_file_and_changes_when_it_is_rewritten(
    tmp_path: Path,
) -> None:
    name = write(tmp_path / "ids.txt", b"a-1\n")
    first = from_file(name).identity
    assert first.startswith(f"file:{(tmp_path / 'ids.txt').resolve()}:4:")
    assert from_file(name).identity == first
    write(tmp_path / "ids.txt", b"a-1\nb-2\n")
    assert from_file(name).identity != first


def test_from_file_names_the_line_that_is_not_utf8(tmp_path: Path) -> None:
    name = write(tmp_path / "ids.txt", b"a-1\n# fine\nb-\xff2\n")
    with pytest.raises(ConfigError) as caught:
        from_file(name)
    message = str(caught.value)
    assert f"{name}, line 3: not UTF-8 text (byte 0xff at column 3)" in message


def test_from_file_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .*missing\.txt: No such file"):
        from_file(str(tmp_path / "missing.txt"))


def test_from_file_dash_reads_stdin_without_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"a-1 # first\n\nb-2\n"))
    monkeypatch.setattr(sys, "stdin", stdin)
    source = from_file("-")
    assert (source.total, source.identity) == (None, "")
    assert list(source.ids) == ["a-1", "b-2"]


def test_from_file_dash_names_stdin_in_a_decoding_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a-1\n\xfe\n")))
    with pytest.raises(ConfigError, match="standard input, line 2: not UTF-8"):
        list(from_file("-").ids)


def test_listed_counts_and_names_its_ids() -> None:
    source = listed(["a-1", "b-2"])
    assert list(source.ids) == ["a-1", "b-2"]
    assert (source.total, source.identity) == (2, "ids:a-1,b-2")


def unreadable(instance_id: str) -> dict[str, str]:
    """A record the flattener rejects: its graph is not JSON."""
    return {"instanceId": instance_id, "graph": "{"}


def test_failed_takes_each_failed_id_of_every_destination_once(tmp_path: Path) -> None:
    one = SqlDestination(f"sqlite:///{tmp_path / 'one.db'}")
    two = SqlDestination(f"sqlite:///{tmp_path / 'two.db'}")
    one.write(flatten([unreadable("c-3"), unreadable("a-1")]))
    two.write(flatten([unreadable("a-1"), unreadable("b-2")]))
    source = failed([one, two])
    assert list(source.ids) == ["a-1", "b-2", "c-3"]
    assert (source.total, source.identity) == (3, "")
    one.close()
    two.close()


def test_failed_of_fresh_destinations_is_empty(tmp_path: Path) -> None:
    with SqlDestination(f"sqlite:///{tmp_path / 'empty.db'}") as empty:
        source = failed([empty])
        assert (list(source.ids), source.total) == ([], 0)


class Labelled:
    def __init__(self, label: str) -> None:
        self.label = label


@pytest.mark.parametrize(
    ("identity", "labels", "expected"),
    [
        pytest.param("ids:a", ["sqlite:///x.db"], "ids:a>sqlite:///x.db", id="one"),
        pytest.param("ids:a", ["one", "two"], "ids:a>one|two", id="two-destinations"),
        pytest.param("", ["one"], "", id="stdin-cannot-resume"),
    ],
)
def test_run_identity_adds_the_destinations(
    identity: str, labels: list[str], expected: str
) -> None:
    source = IdSource(iter([]), None, identity)
    destinations = [Labelled(label) for label in labels]
    assert source.run_identity(destinations) == expected  # type: ignore[arg-type]


def test_run_identity_differs_by_destination_order() -> None:
    source = listed(["a"])
    one, two = Labelled("one"), Labelled("two")
    assert source.run_identity([one, two]) != source.run_identity([two, one])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("text", "tz", "expected"),
    [
        pytest.param(
            "2026-01-01T08:00", PLUS_8, datetime(2026, 1, 1, tzinfo=UTC), id="naive-in-zone"
        ),
        pytest.param(
            "2026-01-01 08:00:00", UTC, datetime(2026, 1, 1, 8, tzinfo=UTC), id="space-separator"
        ),
        pytest.param(
            "2026-01-01T08:00+02:00", PLUS_8, datetime(2026, 1, 1, 6, tzinfo=UTC), id="aware-kept"
        ),
        pytest.param("2026-01-01T08:00Z", PLUS_8, datetime(2026, 1, 1, 8, tzinfo=UTC), id="z"),
        pytest.param("2026-01-31", PLUS_8, datetime(2026, 1, 30, 16, tzinfo=UTC), id="date-only"),
    ],
)
def test_parse_time(text: str, tz: timezone, expected: datetime) -> None:
    value = parse_time(text, "--from", tz)
    assert value == expected
    assert value.tzinfo is not None


def test_parse_time_keeps_the_offset_it_was_given() -> None:
    value = parse_time("2026-01-01T08:00+02:00", "--from", PLUS_8)
    assert value.utcoffset() == timedelta(hours=2)


@pytest.fixture
def three_hours_ahead(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local zone three hours ahead of UTC (POSIX spells it UTC-03)."""
    monkeypatch.setenv("TZ", "UTC-03")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("three_hours_ahead")
def test_parse_time_without_a_zone_reads_naive_times_locally() -> None:
    value = parse_time("2026-01-01T08:00", "--to", None)
    assert value == datetime(2026, 1, 1, 5, tzinfo=UTC)
    assert value.utcoffset() == timedelta(hours=3)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("yesterday", id="words"),
        pytest.param("2026-13-01", id="month-13"),
        pytest.param("", id="empty"),
    ],
)
def test_parse_time_names_the_flag_on_bad_text(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_time(text, "--since", UTC)
    assert str(caught.value) == f"--since must be an ISO 8601 time, got {text!r}"
