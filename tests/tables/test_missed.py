"""Tests for extractor.missed_runs: fires owed by a schedule that left no instance.

Every fire below was worked out by hand from a calendar and the zone's offset rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

import extractor
from extractor import missed_runs
from extractor.errors import ConfigError
from extractor.simulator import Population
from extractor.tables._missed import MISSED_COLUMNS

NEW_YORK = ZoneInfo("America/New_York")


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def _instances(freq: str | None, triggers: Sequence[datetime], flow_id: int = 7) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "flow_id": pd.Series([flow_id] * len(triggers), dtype="int64"),
            "flow_name": [f"flow {flow_id}"] * len(triggers),
            "freq": pd.Series([freq] * len(triggers), dtype="string"),
            "trigger_time": pd.Series(triggers, dtype="datetime64[us, UTC]"),
        }
    )


def _missed_utc(missed: pd.DataFrame) -> list[datetime]:
    return [t.to_pydatetime() for t in missed["fire_time"]]


def test_exported_from_the_package() -> None:
    assert extractor.missed_runs is missed_runs


@pytest.mark.parametrize(
    ("freq", "start", "end", "seen", "missed"),
    [
        pytest.param(
            "0 0 6 L * ? *",
            _utc(2024, 1, 1),
            _utc(2024, 5, 1),
            [_utc(2024, 1, 31, 6), _utc(2024, 3, 31, 6)],
            [_utc(2024, 2, 29, 6), _utc(2024, 4, 30, 6)],
            id="L-last-day-of-month-leap-february",
        ),
        pytest.param(
            # 15 June 2024 is a Saturday (Friday 14th runs), 15 September a Sunday
            # (Monday 16th runs).
            "0 0 9 15W * ? *",
            _utc(2024, 6, 1),
            _utc(2024, 10, 1),
            [_utc(2024, 7, 15, 9), _utc(2024, 8, 15, 9)],
            [_utc(2024, 6, 14, 9), _utc(2024, 9, 16, 9)],
            id="W-nearest-weekday",
        ),
        pytest.param(
            # 1 June 2024 is a Saturday: 1W is Monday the 3rd, as W never leaves the month.
            "0 0 9 1W * ? *",
            _utc(2024, 5, 15),
            _utc(2024, 7, 15),
            [_utc(2024, 7, 1, 9)],
            [_utc(2024, 6, 3, 9)],
            id="1W-stays-in-the-month",
        ),
        pytest.param(
            # Third Friday: 19 Jan, 16 Feb, 15 Mar 2024.
            "0 0 18 ? * 6#3 *",
            _utc(2024, 1, 1),
            _utc(2024, 4, 1),
            [_utc(2024, 2, 16, 18)],
            [_utc(2024, 1, 19, 18), _utc(2024, 3, 15, 18)],
            id="hash-nth-weekday",
        ),
        pytest.param(
            # Once, on 1 January 2025 and 2027; the flow's only instance is 2025's.
            "0 0 12 1 1 ? 2025,2027",
            _utc(2024, 6, 1),
            _utc(2028, 6, 1),
            [_utc(2025, 1, 1, 12)],
            [_utc(2027, 1, 1, 12)],
            id="year-field",
        ),
        pytest.param(
            "0 0 12 1 1 ? 2025/2",
            _utc(2024, 6, 1),
            _utc(2030, 6, 1),
            [_utc(2025, 1, 1, 12), _utc(2029, 1, 1, 12)],
            [_utc(2027, 1, 1, 12)],
            id="year-increment",
        ),
        pytest.param(
            # Start is inclusive, end exclusive: the fires at 00:00 and 02:00 count,
            # the one at 04:00 does not.
            "0 0 0/2 * * ? *",
            _utc(2024, 5, 1, 0),
            _utc(2024, 5, 1, 4),
            [_utc(2024, 5, 1, 2)],
            [_utc(2024, 5, 1, 0)],
            id="half-open-period",
        ),
    ],
)
def test_hand_checked_schedules_in_utc(
    freq: str, start: datetime, end: datetime, seen: list[datetime], missed: list[datetime]
) -> None:
    found = missed_runs(_instances(freq, seen), start, end, timezone=UTC)
    assert _missed_utc(found) == missed


def test_fires_on_the_servers_wall_clock() -> None:
    # First Monday of each month at 08:30 in Shanghai (UTC+8) is 00:30 UTC:
    # 1 January, 5 February and 4 March 2024.
    seen = [_utc(2024, 1, 1, 0, 30), _utc(2024, 3, 4, 0, 30)]
    found = missed_runs(
        _instances("0 30 8 ? * 2#1 *", seen), _utc(2024, 1, 1), _utc(2024, 4, 1), timezone="GMT+8"
    )
    assert _missed_utc(found) == [_utc(2024, 2, 5, 0, 30)]
    assert found["local_fire_time"].tolist() == [pd.Timestamp(2024, 2, 5, 8, 30)]


@pytest.mark.parametrize(
    "zone",
    [
        pytest.param(NEW_YORK, id="column-wise"),
        # Not the zone its key names, so Arrow cannot stand in for it: one at a time.
        pytest.param(ZoneInfo.no_cache("America/New_York"), id="one-by-one"),
    ],
)
def test_spring_forward_gap(zone: ZoneInfo) -> None:
    # New York skips 02:00-03:00 on 10 March 2024. The 02:30 fire of that day is read
    # with the offset from before the gap (EST, -5): 07:30 UTC, when clocks say 03:30.
    found = missed_runs(
        _instances("0 30 2 * * ? *", [_utc(2024, 3, 8, 7, 30)]),
        _utc(2024, 3, 9),
        _utc(2024, 3, 12),
        timezone=zone,
    )
    assert _missed_utc(found) == [
        _utc(2024, 3, 9, 7, 30),
        _utc(2024, 3, 10, 7, 30),
        _utc(2024, 3, 11, 6, 30),
    ]
    assert [t.hour for t in found["local_fire_time"]] == [2, 2, 2]


def test_fires_past_2037_keep_the_zones_rules() -> None:
    # Arrow's tz data stops at 2037; zoneinfo's rule still puts 4 July 2090 in EDT (-4).
    found = missed_runs(
        _instances("0 0 12 4 7 ? 2090", [_utc(2024, 1, 1)]),
        _utc(2090, 1, 1),
        _utc(2091, 1, 1),
        timezone=NEW_YORK,
    )
    assert _missed_utc(found) == [_utc(2090, 7, 4, 16)]


def test_spring_forward_gap_fire_and_the_one_after_it_are_one_run() -> None:
    # 02:30 (in the gap) and 03:30 EDT are the same instant on 10 March 2024.
    found = missed_runs(
        _instances("0 30 2,3 * * ? *", [_utc(2024, 3, 1)]),
        _utc(2024, 3, 10, 5),
        _utc(2024, 3, 10, 12),
        timezone=NEW_YORK,
    )
    assert _missed_utc(found) == [_utc(2024, 3, 10, 7, 30)]


def test_spring_forward_instance_read_by_the_flattener_answers_its_fire() -> None:
    record = {"instanceId": "7-20240310023000", "flowId": 7, "freq": "0 30 2 * * ? *"}
    frames = extractor.flatten(
        [{**record, "triggerTime": "2024-03-10 02:30:00", "status": 1}], source_tz=NEW_YORK
    )
    found = missed_runs(frames.instances, _utc(2024, 3, 10), _utc(2024, 3, 11), timezone=NEW_YORK)
    assert found.empty


@pytest.mark.parametrize(
    ("seen", "missed"),
    [
        pytest.param(
            [_utc(2024, 11, 3, h, m) for h in (4, 5, 7) for m in (0, 30)], [], id="all-six-ran"
        ),
        pytest.param(
            [_utc(2024, 11, 3, h, m) for h in (4, 5, 6, 7) for m in (0, 30)],
            [],
            id="second-pass-instances-are-extra",
        ),
        pytest.param(
            [_utc(2024, 11, 3, h, m) for h, m in ((4, 0), (4, 30), (5, 0), (7, 0), (7, 30))],
            [_utc(2024, 11, 3, 5, 30)],
            id="one-missing",
        ),
    ],
)
def test_fall_back_repeated_hour_fires_once(seen: list[datetime], missed: list[datetime]) -> None:
    # New York repeats 01:00-02:00 on 3 November 2024. From 00:00 EDT (04:00 UTC) to
    # 03:00 EST (08:00 UTC) the wall clock shows 00:00 ... 02:30 every 30 minutes:
    # six fires, 01:00 and 01:30 at their first occurrence (EDT, 05:00 and 05:30 UTC).
    found = missed_runs(
        _instances("0 0/30 * * * ? *", seen),
        _utc(2024, 11, 3, 4),
        _utc(2024, 11, 3, 8),
        timezone=NEW_YORK,
    )
    assert _missed_utc(found) == missed


def test_tolerance() -> None:
    late = _instances("0 0 3 * * ? *", [_utc(2024, 1, 1, 3, 0, 2)])
    window = (_utc(2024, 1, 1), _utc(2024, 1, 2))
    assert len(missed_runs(late, *window, timezone=UTC)) == 1
    assert missed_runs(late, *window, timezone=UTC, tolerance=timedelta(seconds=5)).empty


def test_each_flow_is_judged_by_its_latest_freq() -> None:
    changed = pd.concat(
        [
            _instances("0 0 1 * * ? *", [_utc(2024, 1, 1, 1)]),
            _instances("0 0 2 * * ? *", [_utc(2024, 1, 2, 2)]),
            _instances("0 0 5 * * ? *", [_utc(2024, 1, 2, 5)], flow_id=8),
        ],
        ignore_index=True,
    )
    found = missed_runs(changed, _utc(2024, 1, 1), _utc(2024, 1, 3), timezone=UTC)
    assert list(zip(found["flow_id"], _missed_utc(found), strict=True)) == [
        (7, _utc(2024, 1, 1, 2)),
        (8, _utc(2024, 1, 1, 5)),
    ]
    assert found["freq"].tolist() == ["0 0 2 * * ? *", "0 0 5 * * ? *"]


@pytest.mark.parametrize(
    "freq",
    [
        pytest.param(None, id="no-freq"),
        pytest.param("0 0 0 * * * *", id="invalid-freq"),
        pytest.param("0 0 0 1 1 ? 2020", id="no-fire-in-period"),
    ],
)
def test_flows_that_cannot_owe_a_fire(freq: str | None) -> None:
    found = missed_runs(
        _instances(freq, [_utc(2024, 1, 1)]), _utc(2024, 1, 1), _utc(2024, 2, 1), timezone=UTC
    )
    assert found.empty
    assert tuple(found.columns) == MISSED_COLUMNS


def test_result_is_typed() -> None:
    found = missed_runs(
        _instances("0 0 0 * * ? *", []), _utc(2024, 1, 1), _utc(2024, 1, 2), timezone=UTC
    )
    assert found.empty  # no instance: the flow cannot be judged
    found = missed_runs(
        _instances("0 0 0 * * ? *", [_utc(2023, 1, 1)]),
        _utc(2024, 1, 1),
        _utc(2024, 1, 3),
        timezone=UTC,
    )
    assert found.dtypes.astype(str).to_dict() == {
        "flow_id": "int64",
        "flow_name": "string",
        "freq": "string",
        "fire_time": "datetime64[us, UTC]",
        "local_fire_time": "datetime64[us]",
    }
    assert found["flow_name"].tolist() == ["flow 7", "flow 7"]


def test_without_flow_names() -> None:
    seen = _instances("0 0 0 * * ? *", [_utc(2023, 1, 1)]).drop(columns="flow_name")
    found = missed_runs(seen, _utc(2024, 1, 1), _utc(2024, 1, 2), timezone=UTC)
    assert found["flow_name"].isna().all()
    assert len(found) == 1


@pytest.mark.parametrize(
    ("start", "end", "tolerance", "message"),
    [
        pytest.param(datetime(2024, 1, 1), _utc(2024, 1, 2), timedelta(0), "time zone", id="naive"),
        pytest.param(_utc(2024, 1, 2), _utc(2024, 1, 1), timedelta(0), "before", id="reversed"),
        pytest.param(
            _utc(2024, 1, 1), _utc(2024, 1, 2), timedelta(seconds=-1), "negative", id="tolerance"
        ),
    ],
)
def test_bad_arguments(start: datetime, end: datetime, tolerance: timedelta, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        missed_runs(_instances("0 0 0 * * ? *", []), start, end, timezone=UTC, tolerance=tolerance)


def test_missing_columns_and_unknown_zone() -> None:
    with pytest.raises(ConfigError, match="freq"):
        missed_runs(
            pd.DataFrame({"flow_id": [1], "trigger_time": [_utc(2024, 1, 1)]}),
            _utc(2024, 1, 1),
            _utc(2024, 1, 2),
            timezone=UTC,
        )
    with pytest.raises(ConfigError, match="unknown time zone"):
        missed_runs(
            _instances("0 0 0 * * ? *", []),
            _utc(2024, 1, 1),
            _utc(2024, 1, 2),
            timezone="Mars/Olympus",
        )


def _in_gap(wall: datetime, zone: ZoneInfo) -> bool:
    """Tell whether a wall-clock time never shows on the zone's clocks (spring forward)."""
    return wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York"])
def test_finds_exactly_the_runs_the_simulator_planted(zone: str) -> None:
    # New York's window holds the spring-forward night of 8 March 2026.
    tz = ZoneInfo(zone)
    start, end = datetime(2026, 3, 7), datetime(2026, 3, 10)
    population = Population(seed=5, flows=30, start=start, end=end, timezone=zone, missed_rate=0.03)
    frames = extractor.flatten([population.instance(i) for i in population.ids()], source_tz=tz)
    seen = set(frames.instances["flow_id"])
    planted = [(f, t) for f, t in population.missed() if f in seen]

    found = missed_runs(
        frames.instances, start.replace(tzinfo=tz), end.replace(tzinfo=tz), timezone=zone
    )

    fires = [
        (f, t.to_pydatetime())
        for f, t in zip(found["flow_id"], found["local_fire_time"], strict=True)
    ]
    assert len(planted) > 10

    # The simulator runs 02:11 in New York's one-hour gap and 03:11 after it as two
    # instances at one instant; Quartz runs that instant once, so either answers both.
    def shared(fire: tuple[int, datetime]) -> bool:
        return _in_gap(fire[1], tz) or _in_gap(fire[1] - timedelta(hours=1), tz)

    assert [x for x in fires if not shared(x)] == [x for x in planted if not shared(x)]
    assert {x for x in fires if shared(x)} <= set(planted)
