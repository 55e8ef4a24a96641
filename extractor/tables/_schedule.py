"""Quartz cron expressions: fields, validity, a description, regularity and next fires.

EnOS flows carry ``freq``, a Quartz CronTrigger expression of six or seven fields:
``second minute hour day-of-month month day-of-week [year]``. Everything here is pure
and works on wall-clock time (no time zones, no DST).
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_left
from dataclasses import astuple, dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise

import numpy as np
from cron_descriptor import ExpressionDescriptor, Options

from extractor.tables._cron_fields import (
    HOUR,
    MAX_YEAR,
    MIN_YEAR,
    MINUTE,
    MONTH,
    SECOND,
    YEAR,
    DayRule,
    DaysOfMonth,
    DaysOfWeek,
    parse_day_of_month,
    parse_day_of_week,
    parse_values,
)

__all__ = ["CronFields", "Schedule", "next_fire", "parse_cron"]

_SECONDS_PER_DAY = 86_400
_SECONDS_PER_WEEK = 7 * _SECONDS_PER_DAY
_ALL_YEARS = tuple(range(MIN_YEAR, MAX_YEAR + 1))
_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_DAY_US = 86_400_000_000
_FIRST_DAY = (datetime(MIN_YEAR, 1, 1) - _EPOCH).days
_LAST_DAY = (datetime(MAX_YEAR, 12, 31) - _EPOCH).days


@dataclass(frozen=True, slots=True)
class CronFields:
    """The seven fields of a Quartz cron as written; ``year`` is None when absent."""

    second: str
    minute: str
    hour: str
    day_of_month: str
    month: str
    day_of_week: str
    year: str | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    times: tuple[int, ...]  # the fires' times of day, in seconds since midnight
    days: DayRule
    months: tuple[int, ...]
    years: tuple[int, ...]


@dataclass(frozen=True)
class Schedule:
    """A parsed Quartz cron expression.

    Attributes:
        fields: The fields as written; None when the text is not 6 or 7 fields.
        is_valid: Whether Quartz would accept the expression.
        error: Why it is invalid; None when valid.
        description: The schedule in plain English; None when invalid.
        interval_s: Seconds between any two consecutive fires when that gap never
            varies; None when it does (or when invalid).
    """

    expression: str
    fields: CronFields | None
    is_valid: bool
    error: str | None
    description: str | None
    interval_s: int | None
    _compiled: _Compiled | None = field(default=None, repr=False, compare=False)
    _memo: dict[int, tuple[int, ...]] = field(default_factory=dict, repr=False, compare=False)

    def next_fire(self, after: datetime) -> datetime | None:
        """Return the first fire strictly after ``after``, or None (invalid, or none by 2099).

        Only the wall-clock fields of ``after`` count; the result carries its ``tzinfo``.

        >>> daily = parse_cron("0 0 0 * * ? *")
        >>> daily.next_fire(datetime(2024, 2, 28, 0, 0))
        datetime.datetime(2024, 2, 29, 0, 0)
        """
        compiled = self._compiled
        if compiled is None:
            return None
        years, months, times = compiled.years, compiled.months, compiled.times
        first_day = compiled.days.first_day
        year, month, day = after.year, after.month, after.day
        # Fires fall on whole seconds, so the first candidate is the next whole second.
        time = after.hour * 3600 + after.minute * 60 + after.second + 1
        while True:
            i = bisect_left(years, year)
            if i == len(years):
                return None
            if years[i] != year:
                year, month, day, time = years[i], 1, 1, 0
            j = bisect_left(months, month)
            if j == len(months):
                year, month, day, time = year + 1, 1, 1, 0
                continue
            if months[j] != month:
                month, day, time = months[j], 1, 0
            fire_day = first_day(year, month, day)
            if fire_day is None:
                month, day, time = month + 1, 1, 0
                continue
            if fire_day != day:
                day, time = fire_day, 0
            k = bisect_left(times, time)
            if k == len(times):
                day, time = day + 1, 0
                continue
            hour, rest = divmod(times[k], 3600)
            return datetime(year, month, day, hour, *divmod(rest, 60), tzinfo=after.tzinfo)

    def fires_between(self, start: datetime, stop: datetime) -> np.ndarray:
        """Return every fire in ``[start, stop)``, in order, as wall-clock microseconds
        since 1970-01-01 (``int64``); none for an invalid schedule.

        Only the wall-clock fields of ``start`` and ``stop`` count. The fires are the
        firing days of a calendar built a month at a time (kept between calls) crossed
        with the times of day.

        >>> s = parse_cron("0 0 12 LW * ? *")  # noon on the last weekday of the month
        >>> fires = s.fires_between(datetime(2024, 3, 1), datetime(2024, 7, 1))
        >>> [str(np.datetime64(int(f), "us").astype("datetime64[D]")) for f in fires]
        ['2024-03-29', '2024-04-30', '2024-05-31', '2024-06-28']
        """
        low = (start.replace(tzinfo=None) - _EPOCH) // _MICROSECOND
        high = (stop.replace(tzinfo=None) - _EPOCH) // _MICROSECOND
        first, last = max(low // _DAY_US, _FIRST_DAY), min((high - 1) // _DAY_US, _LAST_DAY)
        if self._compiled is None or last < first:
            return np.zeros(0, np.int64)
        days = self._firing_days(first, last)
        times_us = np.array(self._compiled.times, np.int64) * 1_000_000
        fires: np.ndarray = (days[:, None] * _DAY_US + times_us).ravel()
        return fires[(fires >= low) & (fires < high)]

    def _firing_days(self, first: int, last: int) -> np.ndarray:
        """The days from ``first`` to ``last`` that fire, as days since 1970-01-01."""
        start, end = _EPOCH.date() + timedelta(first), _EPOCH.date() + timedelta(last)
        found: list[int] = []
        for month in range(start.year * 12 + start.month - 1, end.year * 12 + end.month):
            days = self._memo.get(month)
            if days is None:
                days = self._memo[month] = self._days_of_month(*divmod(month, 12))
            found += (day for day in days if first <= day <= last)
        return np.array(found, np.int64)

    def _days_of_month(self, year: int, month: int) -> tuple[int, ...]:
        """The days of a month (counted from 0) that fire, as days since 1970-01-01."""
        c = self._compiled
        assert c is not None
        month += 1
        if year not in c.years or month not in c.months:
            return ()
        before = (date(year, month, 1) - _EPOCH.date()).days - 1
        days = []
        day = c.days.first_day(year, month, 1)
        while day is not None:
            days.append(before + day)
            day = c.days.first_day(year, month, day + 1)
        return tuple(days)


# Flows share a handful of expressions, so one compile serves thousands of instances;
# Schedule is immutable, which makes sharing the cached object safe.
@functools.lru_cache(maxsize=4096)
def parse_cron(expression: str) -> Schedule:
    """Parse a Quartz cron expression; never raises for bad input.

    >>> s = parse_cron("0 0/15 * * * ? *")
    >>> s.is_valid, s.description, s.interval_s
    (True, 'Every 15 minutes', 900)
    >>> parse_cron("0 0 0 * * * *").error
    'day-of-month and day-of-week cannot both be specified'
    """
    parts = expression.split()
    if len(parts) not in (6, 7):
        error = "empty expression" if not parts else f"expected 6 or 7 fields, got {len(parts)}"
        return Schedule(expression, None, False, error, None, None)
    second, minute, hour, day_of_month, month, day_of_week = parts[:6]
    year = parts[6] if len(parts) == 7 else None
    fields = CronFields(second, minute, hour, day_of_month, month, day_of_week, year)
    try:
        compiled = _compile(fields)
    except ValueError as exc:
        return Schedule(expression, fields, False, str(exc), None, None)
    return Schedule(
        expression,
        fields,
        True,
        None,
        _describe(fields, compiled.days),
        _interval_s(compiled),
        compiled,
    )


def next_fire(expression: str, *, after: datetime) -> datetime | None:
    """Return the first fire of ``expression`` strictly after ``after``.

    >>> next_fire("0 0 12 ? * 6L *", after=datetime(2024, 5, 1))
    datetime.datetime(2024, 5, 31, 12, 0)
    >>> next_fire("not a cron", after=datetime(2024, 5, 1)) is None
    True
    """
    return parse_cron(expression).next_fire(after)


def _compile(fields: CronFields) -> _Compiled:
    seconds = parse_values(fields.second, SECOND)
    minutes = parse_values(fields.minute, MINUTE)
    hours = parse_values(fields.hour, HOUR)
    by_month_day = parse_day_of_month(fields.day_of_month)
    months = parse_values(fields.month, MONTH)
    by_week_day = parse_day_of_week(fields.day_of_week)
    years = _ALL_YEARS if fields.year is None else parse_values(fields.year, YEAR)
    if by_month_day is not None and by_week_day is not None:
        raise ValueError("day-of-month and day-of-week cannot both be specified")
    days = by_month_day or by_week_day
    if days is None:
        raise ValueError("day-of-month and day-of-week cannot both be '?'")
    times = tuple(h * 3600 + m * 60 + s for h in hours for m in minutes for s in seconds)
    return _Compiled(times, days, months, years)


def _even_step(values: tuple[int, ...], period: int) -> int | None:
    """Return the step when ``values`` repeat at one step that also wraps the period."""
    step, remainder = divmod(period, len(values))
    if remainder or any(b - a != step for a, b in pairwise(values)):
        return None
    return step


def _interval_s(compiled: _Compiled) -> int | None:
    """Return the constant gap between fires, derived from the expanded field sets.

    Regular schedules repeat daily or weekly with months and years unrestricted. The
    times of day must be an even grid that wraps the day. Weekly regularity needs one
    weekday and one time of day: 7 is prime, so no other weekday subset is evenly spaced.
    """
    c = compiled
    if len(c.months) != 12 or c.years != _ALL_YEARS:
        return None
    daily = _even_step(c.times, _SECONDS_PER_DAY)
    days = c.days
    is_daily = (isinstance(days, DaysOfMonth) and len(days.days) == 31) or (
        isinstance(days, DaysOfWeek) and len(days.days) == 7
    )
    if is_daily:
        return daily
    if isinstance(days, DaysOfWeek) and len(days.days) == 1 and daily == _SECONDS_PER_DAY:
        return _SECONDS_PER_WEEK
    return None


_LAST_DAY_OFFSET = re.compile(r"L-(\d+)(W?)")
_SINGULAR_ONE = re.compile(r"\b1 (second|minute|hour|day|month|year)s\b")
_FIELD_NAMES = ("second", "minute", "hour", "day-of-month", "month", "day-of-week", "year")


def _describe(fields: CronFields, days: DayRule) -> str:
    """Describe a valid expression in English with cron-descriptor, mending its gaps.

    cron-descriptor knows Quartz's fields but not all of its readings, so it is given a
    rewritten copy:

    * the year is always present (a 6-field text could pass for "minute ... year");
    * a bare ``/n`` becomes ``*/n`` (it would print "starting at  seconds");
    * a list holding ``*`` becomes ``*`` (it crashes on it);
    * ``a/1`` becomes ``a-max`` (it would print "every 1 minutes");
    * a year increment stops at 2099 (it would say "through 9999");
    * ``L`` alone in day-of-week becomes 7, Saturday (it crashes on it);
    * a day-of-week with ``/`` becomes its list of days (it reads ``FRI/2`` as "every
      2 weeks, only on Friday", while Quartz fires every Friday).

    Its output then gets back the ``W`` it drops from ``L-nW``, and "1 minutes" becomes
    "1 minute". Lists of several increments can still crash it; those expressions get a
    field-by-field text instead.
    """
    second, minute, hour, day_of_month, month, day_of_week, year = (
        _plain_field(text.upper(), high)
        for text, high in (
            (fields.second, SECOND.high),
            (fields.minute, MINUTE.high),
            (fields.hour, HOUR.high),
            (fields.day_of_month, None),
            (fields.month, MONTH.high),
            (fields.day_of_week, None),
            (fields.year or "*", MAX_YEAR),
        )
    )
    if day_of_week == "L":
        day_of_week = "7"
    elif "/" in day_of_week and isinstance(days, DaysOfWeek):
        day_of_week = ",".join(map(str, days.days))
    offset = _LAST_DAY_OFFSET.fullmatch(day_of_month)
    if offset and offset.group(1) == "0":
        day_of_month, offset = "L" + offset.group(2), None
    elif offset:
        day_of_month = f"L-{offset.group(1)}"
    text = " ".join((second, minute, hour, day_of_month, month, day_of_week, year))
    options = Options(
        locale_code="en_US", use_24hour_time_format=True, day_of_week_start_index_zero=False
    )
    try:
        description: str = ExpressionDescriptor(text, options).get_description()
    except Exception:
        # The schedule is valid; a describer bug must not cost the row its description.
        written = (*astuple(fields)[:6], fields.year or "*")
        return ", ".join(f"{n} {v}" for n, v in zip(_FIELD_NAMES, written, strict=True))
    if offset and offset.group(2):
        before = f"{offset.group(1)} days before the last day of the month"
        description = description.replace(before, f"on the weekday nearest {before}")
    return _SINGULAR_ONE.sub(r"1 \1", description)


def _plain_field(text: str, high: int | None) -> str:
    items = [_plain_item(item, high) for item in text.split(",")]
    return "*" if "*" in items else ",".join(items)


def _plain_item(item: str, high: int | None) -> str:
    """Rewrite one list item into the form cron-descriptor words as Quartz means it."""
    if item.startswith("/"):
        item = "*" + item
    start, slash, step = item.partition("/")
    if not (slash and start.isdigit()) or high is None:
        return item
    if step == "1":
        return f"{start}-{high}"
    # Left alone, a year increment would be described as running on to 9999.
    return f"{start}-{high}/{step}" if high == MAX_YEAR else item
