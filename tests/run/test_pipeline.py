"""run_extract with a client on an in-memory gateway: batches, per-ID failures, exit
codes, resume of an interrupted run, the report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fakes import answer, ok
from gateway_fake import Gateway, client_on, record

from extractor.errors import ConfigError
from extractor.load import SqlDestination
from extractor.load._state import Moving, StateStore
from extractor.run._pipeline import run_extract
from extractor.run._report import EXIT_FATAL, EXIT_OK, EXIT_PARTIAL, RunReport
from extractor.tables._frames import FlowFrames

UNREADABLE = {"instanceId": "bad", "graph": "{"}
"""A record whose graph is not JSON: the flattener rejects it."""
WRONG_USER = answer(200, {"code": 62101, "msg": "user not in the organisation"})
"""An answer that every call would repeat: the run stops."""
TIME = "/batch-processing-service/v2.1/time"
NO_PRIVILEGE = answer(200, {"code": 62103, "msg": "No privilege"})


class Memory:
    """A destination that keeps its batches in memory, its run state (when given one) in
    a real :class:`StateStore`, and counts ``finish`` calls."""

    label = "memory"

    def __init__(self, state: StateStore | None = None) -> None:
        self._state = state
        self.batches: list[FlowFrames] = []
        self.finished = 0
        self.events: list[str] = []

    @property
    def state(self) -> StateStore | None:
        return self._state

    def write(self, frames: FlowFrames) -> None:
        self.batches.append(frames)
        self.events.append("write")

    def finish(self) -> None:
        self.finished += 1
        self.events.append("finish")

    def failed_ids(self) -> list[str]:
        return []

    def terminal_ids(self, ids: list[str]) -> set[str]:
        return set()

    def moving(self) -> dict[str, Moving]:
        return {}

    def loaded(self) -> list[str]:
        """The instance IDs written, in batch order, repeats included."""
        return [
            i for b in self.batches for i in b.tables["flow_instances"]["instance_id"].to_pylist()
        ]

    def failures(self) -> dict[str, dict[str, Any]]:
        return {
            row["instance_id"]: row
            for b in self.batches
            for row in b.tables["failed_instances"].to_pylist()
        }


@pytest.fixture
def state(sqlite_engine: sa.Engine) -> StateStore:
    """Run state in a SQLite file: the fetch threads read checkpoints too."""
    return StateStore(sqlite_engine)


def ids(n: int) -> list[str]:
    return [f"i-{k:02d}" for k in range(n)]


def run(gateway: Gateway, items: list[Any], *destinations: Any, **options: Any) -> RunReport:
    fetch = {k: options.pop(k) for k in ("batch_size", "workers") if k in options}
    with client_on(gateway, **fetch) as client:
        return run_extract(items, client=client, destinations=destinations, **options)


@pytest.mark.parametrize(
    ("count", "batch_size", "sizes"),
    [
        pytest.param(5, 2, [2, 2, 1], id="last-batch-short"),
        pytest.param(6, 3, [3, 3], id="exact"),
        pytest.param(3, 10, [3], id="one-batch"),
        pytest.param(4, 1, [1, 1, 1, 1], id="one-each"),
    ],
)
def test_batches_are_written_every_batch_size(
    count: int, batch_size: int, sizes: list[int]
) -> None:
    gateway = Gateway(*(record(i) for i in ids(count)))
    memory = Memory()
    report = run(gateway, ids(count), memory, batch_size=batch_size)
    assert [b.tables["flow_instances"].num_rows for b in memory.batches] == sizes
    assert sorted(memory.loaded()) == ids(count)
    assert memory.events == ["write"] * len(sizes) + ["finish"]
    assert (report.fetched, report.loaded, report.exit_code) == (count, count, EXIT_OK)


def test_no_ids_still_finishes() -> None:
    memory = Memory()
    report = run(Gateway(), [], memory)
    assert (memory.batches, memory.finished, report.exit_code) == ([], 1, EXIT_OK)


def test_failed_ids_become_rows_and_the_rest_loads() -> None:
    gateway = Gateway(record("ok-1"), record("ok-2"), UNREADABLE)
    gateway.entries["denied"] = NO_PRIVILEGE  # "missing" has no entry: not found
    memory = Memory()
    report = run(gateway, ["ok-1", "missing", "bad", "denied", "ok-2"], memory, batch_size=2)
    assert sorted(memory.loaded()) == ["ok-1", "ok-2"]
    failures = memory.failures()
    assert {i: (r["stage"], r["error_class"]) for i, r in failures.items()} == {
        "missing": ("fetch", "NotFoundError"),
        "bad": ("flatten", "RecordError"),
        "denied": ("fetch", "PermanentApiError"),
    }
    assert failures["missing"]["message"] == "no flow instance missing"
    assert failures["bad"]["message"].startswith("graph")
    assert failures["bad"]["raw_json"] is not None and '"instanceId":"bad"' in failures["bad"][
        "raw_json"
    ].replace(" ", "")
    assert (failures["denied"]["api_code"], failures["denied"]["http_status"]) == (62103, 200)
    assert failures["missing"]["raw_json"] is None
    assert report.exit_code == EXIT_PARTIAL
    assert report.fatal_error is None
    assert memory.finished == 1


def test_failures_land_in_failed_instances_of_a_sql_destination(sqlite_url: str) -> None:
    gateway = Gateway(record("ok-1"), UNREADABLE)
    with SqlDestination(sqlite_url) as destination:
        report = run(gateway, ["ok-1", "missing", "bad"], destination, description="d")
        assert sorted(destination.failed_ids()) == ["bad", "missing"]
        assert destination.terminal_ids(["ok-1", "bad", "missing"]) == {"ok-1"}
        assert destination.state.begin_run(report.run_key, "d") is False  # it finished
    assert report.exit_code == EXIT_PARTIAL


def test_the_report_counts_what_happened() -> None:
    gateway = Gateway(record("a"), record("b"), UNREADABLE)
    memory = Memory()
    report = run(gateway, ["a", "b", " a ", "", "missing", "bad", "b"], memory, batch_size=2)
    summary = report.to_dict()
    assert summary["ids"] == {
        "seen": 6,
        "duplicates": 2,
        "stale_not_rechecked": 0,
        "skipped_already_done": 0,
        "fetched": 3,
        "loaded": 2,
        "failed_fetch": 1,
        "rejected_flatten": 1,
    }
    rows = {name: count for name, count in summary["rows"].items() if count}
    assert rows == {"flow_instances": 2, "task_instances": 2, "failed_instances": 2}
    assert summary["failures_by_reason"] == {"NotFoundError": 1, "RecordError": 1}
    assert summary["exit_code"] == EXIT_PARTIAL
    assert summary["calls"] == 4 == len(gateway.gets())
    assert summary["calls_per_instance"] == 2.0
    assert summary["tokens_fetched"] == 1
    assert (summary["run_key"], summary["resumed"], summary["fatal_error"]) == ("", False, None)
    assert sorted(report.failed_ids_sample) == [
        "bad: RecordError: " + memory.failures()["bad"]["message"],
        "missing: NotFoundError: no flow instance missing",
    ]


def test_listed_records_load_without_a_call() -> None:
    gateway = Gateway()
    memory = Memory()
    report = run(gateway, [record("a"), record("b"), {"instanceId": "a"}], memory)
    assert gateway.gets() == []
    assert sorted(memory.loaded()) == ["a", "b"]
    assert (report.loaded, report.duplicates, report.calls) == (2, 1, 0)


@pytest.mark.parametrize(
    ("entries", "code", "fatal"),
    [
        pytest.param({}, EXIT_OK, None, id="all-loaded"),
        pytest.param({"i-01": None}, EXIT_PARTIAL, None, id="one-not-found"),
        pytest.param(
            {"i-01": UNREADABLE | {"instanceId": "i-01"}}, EXIT_PARTIAL, None, id="one-rejected"
        ),
        pytest.param({"i-01": WRONG_USER}, EXIT_FATAL, "62101", id="fatal"),
        pytest.param({"i-01": answer(404)}, EXIT_FATAL, "404", id="wrong-gateway-url"),
    ],
)
def test_exit_codes(entries: dict[str, Any], code: int, fatal: str | None) -> None:
    gateway = Gateway(*(record(i) for i in ids(3)))
    for key, entry in entries.items():
        if entry is None:
            del gateway.entries[key]
        else:
            gateway.entries[key] = entry
    memory = Memory()
    report = run(gateway, ids(3), memory)
    assert report.exit_code == code
    if fatal is None:
        assert report.fatal_error is None
    else:
        assert report.fatal_error is not None and fatal in report.fatal_error
    assert memory.finished == 1


def test_a_run_that_cannot_learn_the_zone_stops_before_fetching() -> None:
    gateway = Gateway(record("a"))  # Get Time Zone is not scripted: HTTP 404, fatal
    memory = Memory()
    with client_on(gateway, timezone=None) as client:
        report = run_extract(["a"], client=client, destinations=[memory])
    assert report.exit_code == EXIT_FATAL
    assert report.fatal_error is not None and report.fatal_error.startswith("cannot start:")
    assert gateway.gets() == []
    assert (memory.batches, memory.finished) == ([], 0)


def test_a_run_reads_naive_times_in_the_zone_the_gateway_names() -> None:
    gateway = Gateway(record("a", trigger="2026-01-31 08:00:00"))
    gateway.script("GET", TIME, ok({"timezone": "GMT+8"}))
    memory = Memory()
    with client_on(gateway, timezone=None) as client:
        report = run_extract(["a"], client=client, destinations=[memory])
    assert report.exit_code == EXIT_OK
    trigger = memory.batches[0].tables["flow_instances"]["trigger_time"][0].as_py()
    assert trigger == datetime(2026, 1, 31, 0, 0, tzinfo=UTC)


def test_an_interrupted_run_resumes_and_loads_the_rest_exactly_once(state: StateStore) -> None:
    everything = ids(12)
    gateway = Gateway(*(record(i) for i in everything))
    gateway.entries["i-07"] = WRONG_USER
    first = Memory(state)
    interrupted = run(gateway, everything, first, batch_size=2, workers=1, description="d")
    assert interrupted.exit_code == EXIT_FATAL
    assert first.events[-1] == "finish" and first.finished == 1  # what was fetched is visible
    done_first = set(first.loaded())
    assert "i-07" not in done_first
    assert len(first.loaded()) == len(done_first)

    gateway.entries["i-07"] = record("i-07")
    asked_before = len(gateway.gets())
    second = Memory(state)
    resumed = run(gateway, everything, second, batch_size=2, workers=1, description="d")
    assert resumed.resumed is True
    assert resumed.exit_code == EXIT_OK
    assert resumed.skipped == len(done_first)
    assert set(second.loaded()).isdisjoint(done_first)
    assert sorted([*first.loaded(), *second.loaded()]) == everything
    assert set(gateway.gets()[asked_before:]) == set(everything) - done_first
    assert state.begin_run(resumed.run_key, "d") is False  # the run finished


def test_ids_that_failed_are_checkpointed_and_not_asked_again(state: StateStore) -> None:
    gateway = Gateway(record("a"), UNREADABLE, record("z"))
    gateway.entries["stop"] = WRONG_USER
    items = ["missing", "bad", "a", "stop", "z"]
    first = Memory(state)
    interrupted = run(gateway, items, first, workers=1, description="d")
    assert interrupted.exit_code == EXIT_FATAL
    # Everything before the fatal ID was fetched, and is written with its checkpoint.
    assert "a" in first.loaded()
    assert {"missing", "bad"} <= set(first.failures())

    gateway.entries["stop"] = record("stop")
    asked = len(gateway.gets())
    second = Memory(state)
    resumed = run(gateway, items, second, workers=1, description="d")
    again = gateway.gets()[asked:]
    assert {"missing", "bad", "a"}.isdisjoint(again)
    assert "stop" in again
    assert resumed.skipped == len(set(first.loaded()) | set(first.failures()))
    assert second.failures() == {}
    assert sorted(set(first.loaded()) | set(second.loaded())) == ["a", "stop", "z"]


@pytest.mark.parametrize(
    ("description", "with_state"),
    [
        pytest.param("", True, id="no-description"),
        pytest.param("d", False, id="a-destination-without-state"),
    ],
)
def test_no_resume_without_a_description_and_state_everywhere(
    state: StateStore, description: str, with_state: bool
) -> None:
    gateway = Gateway(*(record(i) for i in ids(3)))
    others = [Memory(state)] + ([Memory(state)] if with_state else [Memory()])
    first = run(gateway, ids(3), *others, description=description)
    second = run(gateway, ids(3), *others, description=description)
    assert (first.resumed, second.resumed, second.skipped) == (False, False, 0)
    assert len(gateway.gets()) == 6


def test_progress_is_reported_until_the_end() -> None:
    seen: list[tuple[int, int]] = []
    gateway = Gateway(*(record(i) for i in ids(4)))
    report = run(
        gateway,
        ids(4),
        Memory(),
        batch_size=2,
        on_progress=lambda r: seen.append((r.fetched, r.loaded)),
    )
    assert seen[-1] == (4, 4) == (report.fetched, report.loaded)
    assert (2, 2) in seen
    assert seen == sorted(seen)


def test_a_batch_size_below_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        client_on(Gateway(), batch_size=0)
