"""Tests for extractor.tables._schedule: Quartz cron fields, validation, descriptions, next fires.

Every expected fire time below was worked out by hand from a calendar.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from extractor.tables import _schedule as schedule
from extractor.tables._schedule import CronFields, Schedule, next_fire, parse_cron


def test_exported_names() -> None:
    assert sorted(schedule.__all__) == ["CronFields", "Schedule", "next_fire", "parse_cron"]


@pytest.mark.parametrize(
    ("expression", "fields"),
    [
        pytest.param(
            "0 1/1 * * * ? *",
            CronFields("0", "1/1", "*", "*", "*", "?", "*"),
            id="seven-fields",
        ),
        pytest.param(
            "0 30 9 ? * MON-FRI",
            CronFields("0", "30", "9", "?", "*", "MON-FRI", None),
            id="six-fields-no-year",
        ),
        pytest.param(
            "  0\t0  12 ? * mon  ",
            CronFields("0", "0", "12", "?", "*", "mon", None),
            id="extra-whitespace-and-case-kept",
        ),
        pytest.param(
            "0 0 0 * * * *",
            CronFields("0", "0", "0", "*", "*", "*", "*"),
            id="invalid-but-splits",
        ),
        pytest.param("0 0 0 * *", None, id="five-fields"),
        pytest.param("0 0 0 * * ? * 1", None, id="eight-fields"),
        pytest.param("", None, id="empty"),
    ],
)
def test_fields(expression: str, fields: CronFields | None) -> None:
    assert parse_cron(expression).fields == fields


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        pytest.param("", "empty expression", id="empty"),
        pytest.param("   ", "empty expression", id="blank"),
        pytest.param("garbage", "expected 6 or 7 fields, got 1", id="garbage"),
        pytest.param("0 0 0 * *", "expected 6 or 7 fields, got 5", id="unix-five-fields"),
        pytest.param(
            "0 0 0 ? * ? *", "day-of-month and day-of-week cannot both be '?'", id="both-?"
        ),
        pytest.param(
            "0 0 0 * * * *",
            "day-of-month and day-of-week cannot both be specified",
            id="neither-?",
        ),
        pytest.param(
            "0 0 0 1 * 2 *",
            "day-of-month and day-of-week cannot both be specified",
            id="both-days-given",
        ),
        pytest.param(
            "? 0 0 * * ? *", "'?' is only allowed in day-of-month or day-of-week", id="?-in-second"
        ),
        pytest.param("60 0 0 * * ? *", "second value 60 is out of range 0-59", id="second-60"),
        pytest.param("0 60 0 * * ? *", "minute value 60 is out of range 0-59", id="minute-60"),
        pytest.param("0 0 24 * * ? *", "hour value 24 is out of range 0-23", id="hour-24"),
        pytest.param("0 0 0 0 * ? *", "day-of-month value 0 is out of range 1-31", id="day-0"),
        pytest.param("0 0 0 32 * ? *", "day-of-month value 32 is out of range 1-31", id="day-32"),
        pytest.param("0 0 0 * 13 ? *", "month value 13 is out of range 1-12", id="month-13"),
        pytest.param("0 0 0 ? * 0 *", "day-of-week value 0 is out of range 1-7", id="weekday-0"),
        pytest.param("0 0 0 ? * 8 *", "day-of-week value 8 is out of range 1-7", id="weekday-8"),
        pytest.param("0 0 0 * FOO ? *", "invalid month value 'FOO'", id="bad-month-name"),
        pytest.param(
            "0 0 0 ? * MONDAY *", "invalid day-of-week value 'MONDAY'", id="long-day-name"
        ),
        pytest.param("0 0 0 ? * JAN *", "invalid day-of-week value 'JAN'", id="month-name-as-day"),
        pytest.param(
            "0 0 0 1 1 ? 2100", "year value 2100 is out of range 1970-2099", id="year-2100"
        ),
        pytest.param(
            "0 0 0 1 1 ? 1969", "year value 1969 is out of range 1970-2099", id="year-1969"
        ),
        pytest.param(
            "0 0 0 1 1 ? 2030-2020",
            "year range '2030-2020' must not run backwards",
            id="year-range-backwards",
        ),
        pytest.param("0 0 0 ? * 6#6 *", "'#' must be followed by a number 1-5: '6#6'", id="#6"),
        pytest.param("0 0 0 ? * 6#0 *", "'#' must be followed by a number 1-5: '6#0'", id="#0"),
        pytest.param(
            "0 0 0 ? * 2#1,6#3 *",
            "'L' and '#' cannot be combined with other days of the week",
            id="two-#",
        ),
        pytest.param(
            "0 0 0 ? * 6L,2 *",
            "'L' and '#' cannot be combined with other days of the week",
            id="L-in-weekday-list",
        ),
        pytest.param(
            "0 0 0 L,15 * ? *",
            "'L' in day-of-month must be L, L-n, LW or L-nW, got 'L,15'",
            id="L-in-day-list",
        ),
        pytest.param(
            "0 0 0 L-31 * ? *",
            "offset from the last day must be at most 30, got 31",
            id="L-offset-31",
        ),
        pytest.param(
            "0 0 0 1-5W * ? *", "'W' must follow a single day of the month: '1-5W'", id="W-range"
        ),
        pytest.param(
            "0 0 0 15W,20 * ? *",
            "'W' must follow a single day of the month: '15W,20'",
            id="W-in-list",
        ),
        pytest.param("0 0 0 32W * ? *", "day-of-month value 32 is out of range 1-31", id="32W"),
        pytest.param(
            "*/0 * * * * ? *", "second increment must be at least 1, got 0", id="increment-0"
        ),
        pytest.param(
            "*/60 * * * * ? *", "second increment must be at most 59, got 60", id="increment-60"
        ),
        pytest.param(
            "0 0 0 * JAN/3 ? *", "increments cannot follow a name: 'JAN/3'", id="name-increment"
        ),
        pytest.param("1,,2 0 0 * * ? *", "empty item in second field", id="empty-list-item"),
        pytest.param("1- 0 0 * * ? *", "missing second value", id="open-range"),
        pytest.param("０ 0 0 * * ? *", "invalid second value '０'", id="full-width-digit"),
    ],
)
def test_invalid(expression: str, error: str) -> None:
    parsed = parse_cron(expression)
    assert (parsed.is_valid, parsed.error) == (False, error)
    assert (parsed.description, parsed.interval_s) == (None, None)
    assert parsed.next_fire(datetime(2024, 1, 1)) is None


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("0 0 12 ? * mon-fri *", id="lower-case-names"),
        pytest.param("0 0 0 lw * ? *", id="lower-case-LW"),
        pytest.param("0 0 0 ? * FRI#3 *", id="name-with-#"),
        pytest.param("0 0 0 ? * FRIL *", id="name-with-L"),
        pytest.param("/5 * * * * ? *", id="bare-increment"),
        pytest.param("0 0 22-2 * * ? *", id="wrapping-hours"),
        pytest.param("0 0 0 L-0W * ? *", id="L-0W"),
        pytest.param("0 0 0 1 1 ? 2099", id="year-2099"),
    ],
)
def test_valid(expression: str) -> None:
    parsed = parse_cron(expression)
    assert (parsed.is_valid, parsed.error) == (True, None)


@pytest.mark.parametrize(
    ("expression", "description"),
    [
        pytest.param("0 0 0 * * ? *", "At 00:00", id="daily"),
        pytest.param("59 59 23 * * ? *", "At 23:59:59", id="with-seconds"),
        pytest.param("0 1 * * * ? *", "At 1 minute past the hour", id="hourly-singular"),
        pytest.param("0 1/1 * * * ? *", "Minutes 1 through 59 past the hour", id="1/1-is-a-range"),
        pytest.param("0 0/15 * * * ? *", "Every 15 minutes", id="quarter-hourly"),
        pytest.param("0 0 3 ? * 2 *", "At 03:00, only on Monday", id="2-is-monday"),
        pytest.param("0 30 9 ? * MON-FRI", "At 09:30, Monday through Friday", id="weekdays"),
        pytest.param("0 0 12 ? * L *", "At 12:00, only on Saturday", id="L-is-saturday"),
        pytest.param(
            "0 0 12 ? * 6L *", "At 12:00, on the last Friday of the month", id="last-friday"
        ),
        pytest.param(
            "0 0 12 ? * 2#1 *", "At 12:00, on the first Monday of the month", id="first-monday"
        ),
        pytest.param(
            "0 0 12 ? * 6/2 *", "At 12:00, only on Friday", id="weekday-increment-is-not-weeks"
        ),
        pytest.param(
            "0 0 12 ? * */2 *",
            "At 12:00, only on Sunday, Tuesday, Thursday, and Saturday",
            id="every-other-weekday",
        ),
        pytest.param(
            "0 0 12 LW * ? *", "At 12:00, on the last weekday of the month", id="last-weekday"
        ),
        pytest.param(
            "0 0 12 L-2W * ? *",
            "At 12:00, on the weekday nearest 2 days before the last day of the month",
            id="L-2W-keeps-W",
        ),
        pytest.param(
            "0 0 12 15W * ? *",
            "At 12:00, on the weekday nearest day 15 of the month",
            id="nearest-weekday",
        ),
        pytest.param(
            "0 0 0 1 1 ? 2020/5",
            "At 00:00, on day 1 of the month, only in January, every 5 years, 2020 through 2099",
            id="year-increment-ends-2099",
        ),
    ],
)
def test_description(expression: str, description: str) -> None:
    assert parse_cron(expression).description == description


def test_description_falls_back_when_the_describer_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise ValueError("describer bug")

    monkeypatch.setattr(schedule, "ExpressionDescriptor", broken)
    # Written nowhere else, so the cache cannot hold a description made before the patch.
    parsed = parse_cron("7 7 7 ? * 7#2")
    assert parsed.is_valid
    assert parsed.description == (
        "second 7, minute 7, hour 7, day-of-month ?, month *, day-of-week 7#2, year *"
    )


@pytest.mark.parametrize(
    ("expression", "interval_s"),
    [
        pytest.param("0 1/1 * * * ? *", None, id="1/1-skips-minute-0"),
        pytest.param("0 * * * * ? *", 60, id="every-minute"),
        pytest.param("* * * * * ? *", 1, id="every-second"),
        pytest.param("0 0/15 * * * ? *", 900, id="every-15-minutes"),
        pytest.param("5/15 * * * * ? *", 15, id="offset-seconds"),
        pytest.param("*/7 * * * * ? *", None, id="7-does-not-divide-60"),
        pytest.param("30 15 * * * ? *", 3600, id="hourly"),
        pytest.param("0 0 */6 * * ? *", 21_600, id="every-6-hours"),
        pytest.param("0 0 */5 * * ? *", None, id="5-does-not-divide-24"),
        pytest.param("0 0 20-16/4 * * ? *", 14_400, id="wrapping-hour-range"),
        pytest.param("0 0 8-17 * * ? *", None, id="office-hours"),
        pytest.param("0 0 0 * * ? *", 86_400, id="daily"),
        pytest.param("0 0 0 1-31 * ? *", 86_400, id="every-day-of-month"),
        pytest.param("0 0 12 ? * * *", 86_400, id="every-weekday-star"),
        pytest.param("0 0/30 * ? * 1-7 *", 1800, id="every-weekday-range"),
        pytest.param("0 0 3 ? * 2 *", 604_800, id="weekly"),
        pytest.param("0 0 12 ? * L *", 604_800, id="weekly-saturday-L"),
        pytest.param("0 0 0,12 ? * 2 *", None, id="twice-on-one-weekday"),
        pytest.param("0 0 12 ? * MON,WED *", None, id="two-weekdays"),
        pytest.param("0 0 1 1 * ? *", None, id="monthly"),
        pytest.param("0 0 0 L * ? *", None, id="last-day"),
        pytest.param("0 0 0 * 1-6 ? *", None, id="some-months"),
        pytest.param("0 0 0 * * ? 2024", None, id="one-year"),
        pytest.param("0 0 0 * * * *", None, id="invalid"),
    ],
)
def test_interval_s(expression: str, interval_s: int | None) -> None:
    assert parse_cron(expression).interval_s == interval_s


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # Strictly after, whole seconds.
        pytest.param(
            "0 0 0 * * ? *",
            datetime(2024, 3, 10, 0, 0, 0),
            datetime(2024, 3, 11, 0, 0, 0),
            id="after-a-fire-gives-the-next",
        ),
        pytest.param(
            "* * * * * ? *",
            datetime(2024, 3, 10, 12, 0, 0),
            datetime(2024, 3, 10, 12, 0, 1),
            id="every-second",
        ),
        pytest.param(
            "* * * * * ? *",
            datetime(2024, 3, 10, 12, 0, 0, 500_000),
            datetime(2024, 3, 10, 12, 0, 1),
            id="microseconds",
        ),
        pytest.param(
            "*/7 * * * * ? *",
            datetime(2024, 3, 10, 12, 0, 56),
            datetime(2024, 3, 10, 12, 1, 0),
            id="seconds-wrap-to-next-minute",
        ),
        pytest.param(
            "0 1/1 * * * ? *",
            datetime(2024, 3, 10, 12, 59, 0),
            datetime(2024, 3, 10, 13, 1, 0),
            id="1/1-skips-minute-0",
        ),
        pytest.param(
            "0 0/15 * * * ? *",
            datetime(2024, 3, 10, 23, 50, 0),
            datetime(2024, 3, 11, 0, 0, 0),
            id="day-rollover",
        ),
        pytest.param(
            "59 59 23 * * ? *",
            datetime(2024, 12, 31, 23, 59, 59),
            datetime(2025, 1, 1, 23, 59, 59),
            id="year-rollover",
        ),
        pytest.param(
            "0 0 22-2 * * ? *",
            datetime(2024, 6, 4, 2, 30),
            datetime(2024, 6, 4, 22, 0),
            id="wrapping-hours",
        ),
        # Month ends and leap years.
        pytest.param(
            "0 0 12 31 * ? *",
            datetime(2024, 4, 1),
            datetime(2024, 5, 31, 12, 0),
            id="31st-skips-april",
        ),
        pytest.param(
            "0 0 0 30 * ? *",
            datetime(2024, 2, 1),
            datetime(2024, 3, 30),
            id="30th-skips-february",
        ),
        pytest.param("0 0 0 29 2 ? *", datetime(2023, 6, 1), datetime(2024, 2, 29), id="leap-day"),
        pytest.param(
            "0 0 0 29 2 ? *", datetime(2024, 3, 1), datetime(2028, 2, 29), id="next-leap-day"
        ),
        pytest.param(
            "0 0 0 29 2 ? *", datetime(2096, 2, 29), None, id="2100-is-no-leap-year-anyway"
        ),
        pytest.param("0 0 0 31 2 ? *", datetime(2024, 1, 1), None, id="never-fires"),
        # L, L-n, LW, L-nW in day-of-month.
        pytest.param(
            "0 0 0 L * ? *", datetime(2024, 2, 1), datetime(2024, 2, 29), id="L-leap-february"
        ),
        pytest.param(
            "0 0 0 L * ? *", datetime(2025, 2, 10), datetime(2025, 2, 28), id="L-february"
        ),
        pytest.param(
            "0 0 0 L * ? *", datetime(2023, 2, 28), datetime(2023, 3, 31), id="L-after-a-fire"
        ),
        pytest.param("0 0 0 L-3 * ? *", datetime(2024, 2, 1), datetime(2024, 2, 26), id="L-3"),
        pytest.param(
            "0 0 0 L-3 * ? *",
            datetime(2024, 2, 26),
            datetime(2024, 3, 28),
            id="L-3-next-month",
        ),
        pytest.param(
            "0 0 0 LW * ? *",
            datetime(2024, 8, 1),
            datetime(2024, 8, 30),
            id="LW-31st-is-saturday",
        ),
        pytest.param(
            "0 0 0 LW * ? *",
            datetime(2024, 3, 1),
            datetime(2024, 3, 29),
            id="LW-31st-is-sunday",
        ),
        pytest.param(
            "0 0 0 LW * ? *",
            datetime(2025, 2, 1),
            datetime(2025, 2, 28),
            id="LW-last-day-is-friday",
        ),
        pytest.param(
            "0 0 0 L-1W * ? *",
            datetime(2024, 6, 1),
            datetime(2024, 6, 28),
            id="L-1W-29th-is-saturday",
        ),
        # nW: nearest weekday, never leaving the month.
        pytest.param(
            "0 0 12 15W * ? *",
            datetime(2024, 8, 1),
            datetime(2024, 8, 15, 12),
            id="15W-thursday",
        ),
        pytest.param(
            "0 0 12 15W * ? *",
            datetime(2024, 6, 1),
            datetime(2024, 6, 14, 12),
            id="15W-saturday-to-friday",
        ),
        pytest.param(
            "0 0 12 15W * ? *",
            datetime(2024, 9, 1),
            datetime(2024, 9, 16, 12),
            id="15W-sunday-to-monday",
        ),
        pytest.param(
            "0 0 12 15W * ? *",
            datetime(2024, 6, 14, 12),
            datetime(2024, 7, 15, 12),
            id="15W-after-its-fire",
        ),
        pytest.param(
            "0 0 0 1W * ? *",
            datetime(2024, 5, 31),
            datetime(2024, 6, 3),
            id="1W-saturday-to-monday-3rd",
        ),
        pytest.param(
            "0 0 0 1W * ? *",
            datetime(2024, 8, 31),
            datetime(2024, 9, 2),
            id="1W-sunday-to-monday-2nd",
        ),
        pytest.param(
            "0 0 0 31W * ? *",
            datetime(2024, 3, 1),
            datetime(2024, 3, 29),
            id="31W-sunday-to-friday",
        ),
        pytest.param(
            "0 0 0 30W * ? *",
            datetime(2024, 2, 1),
            datetime(2024, 3, 29),
            id="30W-skips-february",
        ),
        # Day-of-week: numbers 1=SUN..7=SAT, names, L, nL, n#k.
        pytest.param(
            "0 0 3 ? * 2 *", datetime(2024, 6, 4), datetime(2024, 6, 10, 3), id="2-is-monday"
        ),
        pytest.param(
            "0 0 0 ? * L *", datetime(2024, 6, 4), datetime(2024, 6, 8), id="L-is-saturday"
        ),
        pytest.param(
            "0 0 12 ? * MON-FRI",
            datetime(2024, 6, 7, 12),
            datetime(2024, 6, 10, 12),
            id="weekdays-skip-weekend",
        ),
        pytest.param(
            "0 0 12 ? * FRI-MON *",
            datetime(2024, 6, 4),
            datetime(2024, 6, 7, 12),
            id="wrapping-days-tuesday",
        ),
        pytest.param(
            "0 0 12 ? * FRI-MON *",
            datetime(2024, 6, 8, 12),
            datetime(2024, 6, 9, 12),
            id="wrapping-days-saturday",
        ),
        pytest.param(
            "0 0 12 ? * 6L *",
            datetime(2024, 8, 1),
            datetime(2024, 8, 30, 12),
            id="6L-last-friday",
        ),
        pytest.param(
            "0 0 12 ? * 6L *",
            datetime(2024, 11, 29, 12),
            datetime(2024, 12, 27, 12),
            id="6L-after-its-fire",
        ),
        pytest.param(
            "0 0 9 ? * 2#1 *",
            datetime(2024, 9, 1),
            datetime(2024, 9, 2, 9),
            id="2#1-first-monday",
        ),
        pytest.param(
            "0 0 9 ? * 2#1 *",
            datetime(2024, 9, 2, 9),
            datetime(2024, 10, 7, 9),
            id="2#1-next-month",
        ),
        pytest.param(
            "0 0 0 ? * 6#5 *",
            datetime(2024, 1, 1),
            datetime(2024, 3, 29),
            id="6#5-skips-months-with-four-fridays",
        ),
        pytest.param(
            "0 0 0 ? * 6#5 *",
            datetime(2024, 3, 29),
            datetime(2024, 5, 31),
            id="6#5-skips-april",
        ),
        # Months and years.
        pytest.param(
            "0 0 0 1 JAN,JUL ? *", datetime(2024, 2, 1), datetime(2024, 7, 1), id="month-names"
        ),
        pytest.param(
            "0 0 0 1 1 ? 2025", datetime(2024, 6, 1), datetime(2025, 1, 1), id="single-year"
        ),
        pytest.param("0 0 0 1 1 ? 2025", datetime(2025, 1, 1), None, id="single-year-spent"),
        pytest.param(
            "0 0 0 1 1 ? 2020/5", datetime(2021, 1, 1), datetime(2025, 1, 1), id="year-increment"
        ),
        pytest.param(
            "0 0 0 1 1 ? *", datetime(1960, 5, 5), datetime(1970, 1, 1), id="starts-at-1970"
        ),
        pytest.param(
            "59 59 23 31 12 ? *",
            datetime(2099, 12, 31, 23, 59, 58),
            datetime(2099, 12, 31, 23, 59, 59),
            id="last-second-of-2099",
        ),
        pytest.param(
            "59 59 23 31 12 ? *", datetime(2099, 12, 31, 23, 59, 59), None, id="none-after-2099"
        ),
        pytest.param("0 0 0 1 1 ? *", datetime(2099, 1, 1), None, id="no-2100"),
    ],
)
def test_next_fire(expression: str, after: datetime, expected: datetime | None) -> None:
    assert parse_cron(expression).next_fire(after) == expected
    assert next_fire(expression, after=after) == expected


_EPOCH = datetime(1970, 1, 1)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


_VARIED = [
    "0 1/1 * * * ? *",
    "0 0/30 9-17 ? * MON-FRI",
    "0 0 8 ? * MON-FRI *",
    "15,45 10 6,18 * * ?",
    "0 0 0 1 * ?",
    "0 0 12 L * ?",
    "0 0 12 L-3W * ?",
    "0 0 12 15W * ?",
    "0 0 12 31 * ?",
    "0 0 12 ? * 6L",
    "0 0 12 ? * 2#5",
    "0 0 0 29 2 ? *",
    "0 0 0 1 1 ? 2024,2031",
    "0 0 0 ? * SUN 2099",
    "*/20 * 23 * * ?",
]
"""Schedules of every field form, for checks of one way of finding fires against another."""


@pytest.mark.parametrize("expression", _VARIED)
def test_fires_between_agrees_with_next_fire(expression: str) -> None:
    schedule = parse_cron(expression)
    rng = random.Random(expression)
    for _ in range(5):
        start = datetime(rng.randint(1969, 2099), rng.randint(1, 12), rng.randint(1, 28), 11)
        stop = start + timedelta(days=rng.choice((1, 3, 40)), seconds=rng.randint(0, 59))
        expected, fire = [], schedule.next_fire(start - timedelta(microseconds=1))
        while fire is not None and fire < stop:
            expected.append(fire)
            fire = schedule.next_fire(fire)

        fires = schedule.fires_between(start, stop)

        assert [_EPOCH + timedelta(microseconds=f) for f in fires.tolist()] == expected


def test_fires_between_an_empty_or_invalid_window_is_empty() -> None:
    daily = parse_cron("0 0 0 * * ? *")
    assert daily.fires_between(datetime(2024, 1, 2), datetime(2024, 1, 2)).tolist() == []
    assert daily.fires_between(datetime(2024, 1, 2), datetime(2024, 1, 1)).tolist() == []
    assert (
        parse_cron("0 0 0 * * * *").fires_between(datetime(2024, 1, 1), datetime(2025, 1, 1)).size
        == 0
    )
    assert daily.fires_between(datetime(2100, 1, 1), datetime(2101, 1, 1)).size == 0


def test_no_fire_outside_the_years_of_a_cron() -> None:
    schedule = parse_cron("0 0 8 ? * MON-FRI")
    assert schedule.next_fire(datetime(1950, 6, 1)) == datetime(1970, 1, 1, 8)
    for after in (datetime(2099, 12, 31, 9), datetime(2150, 1, 1), datetime(9999, 12, 31)):
        assert schedule.next_fire(after) is None


def test_next_fire_keeps_the_time_zone_of_after() -> None:
    after = datetime(2024, 1, 1, tzinfo=UTC)
    assert next_fire("0 0 0 * * ? *", after=after) == datetime(2024, 1, 2, tzinfo=UTC)


def test_parse_cron_shares_one_compiled_schedule() -> None:
    first = parse_cron("0 0 4 * * ? *")
    assert isinstance(first, Schedule)
    assert parse_cron("0 0 4 * * ? *") is first
