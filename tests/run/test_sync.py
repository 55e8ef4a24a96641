"""run_sync's decisions against an in-memory gateway and a fixed ``now``: the watermark
stored and advanced, what is fetched again (moving, failed) and what is not (settled,
or old and recently checked)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fakes import answer, ok
from gateway_fake import Gateway, client_on, record

from extractor.errors import ConfigError
from extractor.load import SqlDestination
from extractor.run._pipeline import flatten
from extractor.run._report import EXIT_FATAL, EXIT_OK, RunReport
from extractor.run._sync import run_sync

UNTIL = datetime(2026, 2, 1, tzinfo=UTC)
SINCE = UNTIL - timedelta(days=1)
NOW = UNTIL + timedelta(minutes=5)
RUNNING, SUCCESS = 2, 1
WRONG_USER = answer(200, {"code": 62101, "msg": "user not in the organisation"})


def at(when: datetime) -> str:
    """A trigger time as the gateway writes it (here in UTC)."""
    return when.strftime("%Y-%m-%d %H:%M:%S")


IN_WINDOW = at(UNTIL - timedelta(hours=6))
YOUNG = at(UNTIL - timedelta(days=2))
OLD = at(UNTIL - timedelta(days=20))


@pytest.fixture
def destination(sqlite_url: str) -> Iterator[SqlDestination]:
    with SqlDestination(sqlite_url) as destination:
        yield destination


def seed(destination: SqlDestination, *records: dict[str, Any], extracted_at: datetime) -> None:
    """Load ``records`` as if an earlier run had fetched them at ``extracted_at``."""
    destination.write(flatten(records, source_tz=UTC, extracted_at=extracted_at))


def sync(gateway: Gateway, *destinations: SqlDestination, **options: Any) -> RunReport:
    with client_on(gateway) as client:
        return run_sync(
            client=client, destinations=destinations, until=options.pop("until", UNTIL), **options
        )


def loaded_ids(destination: SqlDestination) -> list[str]:
    frames = destination.read()
    return sorted(frames.tables["flow_instances"]["instance_id"].to_pylist())


def test_the_first_sync_loads_the_window_and_stores_the_watermark(
    destination: SqlDestination,
) -> None:
    gateway = Gateway(
        record("new-1", trigger=IN_WINDOW),
        record("new-2", status=RUNNING, trigger=IN_WINDOW),
        record("before", trigger=YOUNG),
        record("at-until", trigger=at(UNTIL)),  # [since, until): not yet
    )
    report = sync(gateway, destination, since=SINCE)
    assert report.exit_code == EXIT_OK
    assert sorted(gateway.gets()) == ["new-1", "new-2"]
    assert loaded_ids(destination) == ["new-1", "new-2"]
    assert destination.state.watermark("sync") == UNTIL


def test_the_next_sync_starts_at_the_watermark_less_the_lookback(
    destination: SqlDestination,
) -> None:
    destination.state.set_watermark("sync", SINCE)
    gateway = Gateway(record("late", trigger=at(SINCE - timedelta(minutes=30))))
    report = sync(gateway, destination, lookback=timedelta(hours=2))
    searched_from = min(q["fromTriggerTime"] for q in gateway.searches())
    assert searched_from == int((SINCE - timedelta(hours=2)).timestamp() * 1000)
    assert gateway.gets() == ["late"]  # appeared late, caught by the lookback
    assert destination.state.watermark("sync") == UNTIL
    assert report.exit_code == EXIT_OK

    later = UNTIL + timedelta(hours=1)
    sync(gateway, destination, until=later)
    assert destination.state.watermark("sync") == later


def test_the_earliest_watermark_of_the_destinations_is_used(sqlite_url: str, tmp_path: Any) -> None:
    with (
        SqlDestination(sqlite_url) as behind,
        SqlDestination(f"sqlite:///{tmp_path / 'ahead.db'}") as ahead,
    ):
        behind.state.set_watermark("sync", SINCE - timedelta(days=2))
        ahead.state.set_watermark("sync", SINCE)
        gateway = Gateway()
        sync(gateway, behind, ahead, lookback=timedelta(0))
        searched_from = min(q["fromTriggerTime"] for q in gateway.searches())
        assert searched_from == int((SINCE - timedelta(days=2)).timestamp() * 1000)
        assert behind.state.watermark("sync") == ahead.state.watermark("sync") == UNTIL


@pytest.mark.parametrize(
    ("now", "rechecked", "stale"),
    [
        pytest.param(NOW, set(), 1, id="old-and-checked-an-hour-ago"),
        pytest.param(NOW + timedelta(days=1), {"old-seen"}, 0, id="old-and-checked-a-day-ago"),
    ],
)
def test_what_is_fetched_again(
    destination: SqlDestination, now: datetime, rechecked: set[str], stale: int
) -> None:
    seed(
        destination,
        record("done", trigger=IN_WINDOW),
        record("young", status=RUNNING, trigger=YOUNG),
        record("old-seen", status=RUNNING, trigger=OLD),
        extracted_at=NOW - timedelta(hours=1),
    )
    seed(destination, record("old-unseen", status=RUNNING, trigger=OLD), extracted_at=SINCE)
    seed(destination, {"instanceId": "broken", "graph": "{"}, extracted_at=SINCE)
    assert destination.failed_ids() == ["broken"]
    gateway = Gateway(
        record("done", trigger=IN_WINDOW),
        record("fresh", trigger=IN_WINDOW),
        record("young", trigger=YOUNG),
        record("old-seen", trigger=OLD),
        record("old-unseen", trigger=OLD),
        record("broken", trigger=YOUNG),
    )
    report = sync(
        gateway,
        destination,
        since=SINCE,
        settle_after=timedelta(days=7),
        recheck_every=timedelta(days=1),
        now=now,
    )
    assert sorted(gateway.gets()) == sorted({"fresh", "young", "old-unseen", "broken"} | rechecked)
    assert report.stale == stale
    assert destination.failed_ids() == []
    assert set(destination.moving()) == {"old-seen"} - rechecked
    assert report.exit_code == EXIT_OK


def test_an_instance_that_moved_on_leaves_the_moving_set(destination: SqlDestination) -> None:
    seed(destination, record("job", status=RUNNING, trigger=YOUNG), extracted_at=SINCE)
    gateway = Gateway(record("job", status=RUNNING, trigger=YOUNG))
    sync(gateway, destination, since=SINCE)
    assert set(destination.moving()) == {"job"}
    gateway.entries["job"] = record("job", status=SUCCESS, trigger=YOUNG)
    sync(gateway, destination, until=UNTIL + timedelta(hours=1))
    assert destination.moving() == {}
    assert destination.terminal_ids(["job"]) == {"job"}
    assert gateway.gets() == ["job", "job"]


def test_a_failed_sync_keeps_the_watermark(destination: SqlDestination) -> None:
    destination.state.set_watermark("sync", SINCE)
    seed(destination, {"instanceId": "broken", "graph": "{"}, extracted_at=SINCE)
    gateway = Gateway(record("fresh", trigger=IN_WINDOW))
    gateway.entries["broken"] = WRONG_USER
    report = sync(gateway, destination, lookback=timedelta(0))
    assert report.exit_code == EXIT_FATAL
    assert "broken" in gateway.gets()
    assert destination.state.watermark("sync") == SINCE


def test_the_list_detail_loads_pages_and_gets_only_what_they_miss(
    destination: SqlDestination,
) -> None:
    seed(
        destination,
        record("young", status=RUNNING, trigger=YOUNG),
        record("gone", status=RUNNING, trigger=YOUNG),
        extracted_at=SINCE,
    )
    seed(destination, {"instanceId": "broken", "graph": "{"}, extracted_at=SINCE)
    gateway = Gateway(
        record("fresh", trigger=IN_WINDOW),
        record("young", trigger=YOUNG),
        record("broken", trigger=YOUNG),
    )
    gateway.entries["gone"] = ok(record("gone", trigger=YOUNG))  # answered, never listed
    report = sync(gateway, destination, since=SINCE, detail="list")
    assert sorted(gateway.gets()) == ["broken", "gone"]
    assert loaded_ids(destination) == ["broken", "fresh", "gone", "young"]
    assert destination.moving() == {}
    assert report.exit_code == EXIT_OK


def test_each_set_of_types_has_its_own_watermark(destination: SqlDestination) -> None:
    gateway = Gateway(record("new-1", trigger=IN_WINDOW))
    sync(gateway, destination, since=SINCE, types=[1])
    assert destination.state.watermark("sync:types=1") == UNTIL
    assert destination.state.watermark("sync") is None
    assert {q["type"] for q in gateway.searches()} == {1}
    with pytest.raises(ConfigError, match="no stored watermark"):
        sync(gateway, destination)
    sync(gateway, destination, types=[1], until=UNTIL + timedelta(hours=1))
    assert destination.state.watermark("sync:types=1") == UNTIL + timedelta(hours=1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({}, "no stored watermark yet: give --since", id="first-sync-without-since"),
        pytest.param({"since": datetime(2026, 1, 31)}, "must be time-zone aware", id="naive-since"),
        pytest.param(
            {"since": SINCE, "until": datetime(2026, 2, 1)},
            "must be time-zone aware",
            id="naive-until",
        ),
        pytest.param({"since": UNTIL}, "nothing to sync", id="empty-window"),
        pytest.param({"since": UNTIL + timedelta(hours=1)}, "nothing to sync", id="backwards"),
    ],
)
def test_refuses(destination: SqlDestination, options: dict[str, Any], message: str) -> None:
    gateway = Gateway()
    with pytest.raises(ConfigError, match=message):
        sync(gateway, destination, **options)
    assert gateway.sent == []
    assert destination.state.watermark("sync") is None


def test_refuses_when_one_destination_has_no_watermark(sqlite_url: str, tmp_path: Any) -> None:
    with (
        SqlDestination(sqlite_url) as synced,
        SqlDestination(f"sqlite:///{tmp_path / 'new.db'}") as new,
    ):
        synced.state.set_watermark("sync", SINCE)
        with pytest.raises(ConfigError, match="no stored watermark"):
            sync(Gateway(), synced, new)
