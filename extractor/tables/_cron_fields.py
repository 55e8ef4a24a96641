"""Parse the fields of a Quartz cron expression into sorted value sets and day rules.

Quartz's CronExpression is the reference for what is accepted and what it means:
day-of-week runs 1=SUN..7=SAT, ``?`` stands in exactly one of day-of-month and
day-of-week, ranges whose end is below their start wrap around (``22-2``, ``FRI-MON``),
``a/n`` runs from ``a`` to the field's maximum, and ``L``, ``W`` and ``#`` may not be
mixed with lists. Where Quartz silently ignores trailing text (``MONDAY`` read as
``MON``) this parser rejects it instead.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left
from dataclasses import dataclass
from datetime import date
from typing import Protocol

MIN_YEAR = 1970
MAX_YEAR = 2099

_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_LAST_DAY = re.compile(r"L(?:-(\d+))?(W?)")


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()

    def value(self, token: str) -> int:
        if token.isascii() and token.isdigit():
            number = int(token)
        elif token in self.names:
            number = self.names.index(token) + self.low
        elif not token:
            raise ValueError(f"missing {self.name} value")
        else:
            raise ValueError(f"invalid {self.name} value {token!r}")
        if not self.low <= number <= self.high:
            raise ValueError(f"{self.name} value {number} is out of range {self.low}-{self.high}")
        return number


SECOND = _Field("second", 0, 59)
MINUTE = _Field("minute", 0, 59)
HOUR = _Field("hour", 0, 23)
DAY_OF_MONTH = _Field("day-of-month", 1, 31)
MONTH = _Field("month", 1, 12, _MONTH_NAMES)
DAY_OF_WEEK = _Field("day-of-week", 1, 7, _DAY_NAMES)
YEAR = _Field("year", MIN_YEAR, MAX_YEAR)


def parse_values(text: str, field: _Field) -> tuple[int, ...]:
    """Expand a list of ``*``, ``a``, ``a-b`` and ``/n`` items into sorted values.

    >>> parse_values("22-2", HOUR)
    (0, 1, 2, 22, 23)
    >>> parse_values("FRI-MON", DAY_OF_WEEK)
    (1, 2, 6, 7)
    """
    if "?" in text:
        raise ValueError("'?' is only allowed in day-of-month or day-of-week")
    values: set[int] = set()
    for item in text.upper().split(","):
        values.update(_expand_item(item, field))
    return tuple(sorted(values))


def _expand_item(item: str, field: _Field) -> range | list[int]:
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not (step_text.isascii() and step_text.isdigit()):
            raise ValueError(f"'/' must be followed by a number in {field.name} item {item!r}")
        step = int(step_text)
        if step < 1:
            raise ValueError(f"{field.name} increment must be at least 1, got {step}")
        # Quartz caps the increment at the field's maximum, except for the year.
        if step > field.high and field is not YEAR:
            raise ValueError(f"{field.name} increment must be at most {field.high}, got {step}")
        # Quartz drops whatever follows a name, so it reads "JAN/3" as plain "JAN".
        if any(c.isalpha() for c in base):
            raise ValueError(f"increments cannot follow a name: {item!r}")
    # Quartz reads a bare "/n" as "*/n".
    if base == "*" or (slash and not base):
        return range(field.low, field.high + 1, step)
    if not base:
        raise ValueError(f"empty item in {field.name} field")
    start_text, dash, end_text = base.partition("-")
    start = field.value(start_text)
    if dash:
        end = field.value(end_text)
    elif slash:
        end = field.high
    else:
        end = start
    if end >= start:
        return range(start, end + 1, step)
    if field is YEAR:
        raise ValueError(f"year range {base!r} must not run backwards")
    size = field.high - field.low + 1
    return [field.low + (v - field.low) % size for v in range(start, end + size + 1, step)]


def month_length(year: int, month: int) -> int:
    """Return the number of days in a month of the Gregorian calendar."""
    return _MONTH_DAYS[month] + (month == 2 and calendar.isleap(year))


def _python_weekday(quartz_day: int) -> int:
    """Map Quartz's 1=SUN..7=SAT to Python's 0=MON..6=SUN."""
    return (quartz_day + 5) % 7


class DayRule(Protocol):
    """Which days of a month fire."""

    def first_day(self, year: int, month: int, day: int) -> int | None:
        """Return the first firing day >= ``day`` in the month, or None."""


@dataclass(frozen=True, slots=True)
class DaysOfMonth:
    """Day-of-month values such as ``*``, ``1,15`` or ``28-3`` (day-of-week is ``?``)."""

    days: tuple[int, ...]

    def first_day(self, year: int, month: int, day: int) -> int | None:
        i = bisect_left(self.days, day)
        if i < len(self.days) and self.days[i] <= month_length(year, month):
            return self.days[i]
        return None


@dataclass(frozen=True, slots=True)
class DaysOfWeek:
    """Day-of-week values such as ``MON-FRI`` (day-of-month is ``?``)."""

    days: tuple[int, ...]  # Quartz numbering, 1=SUN..7=SAT
    skip: tuple[int, ...]  # by Python weekday: days to wait for the next firing weekday

    @classmethod
    def of(cls, days: tuple[int, ...]) -> DaysOfWeek:
        firing = {_python_weekday(d) for d in days}
        skip = tuple(
            next(k for k in range(7) if (weekday + k) % 7 in firing) for weekday in range(7)
        )
        return cls(days, skip)

    def first_day(self, year: int, month: int, day: int) -> int | None:
        length = month_length(year, month)
        if day > length:
            return None
        day += self.skip[date(year, month, day).weekday()]
        return day if day <= length else None


@dataclass(frozen=True, slots=True)
class MonthDay:
    """``L``, ``L-n`` (``from_end``: a day counted back from the month's end) or a day
    ``n``, moved to the nearest weekday within the month for ``LW``, ``L-nW`` and ``nW``."""

    day: int
    from_end: bool
    is_nearest_weekday: bool

    def first_day(self, year: int, month: int, day: int) -> int | None:
        length = month_length(year, month)
        target = length - self.day if self.from_end else self.day
        # Like a plain day 31, "31W" does not fire in months too short to have a 31st.
        if not 1 <= target <= length:
            return None
        if self.is_nearest_weekday:
            target = _nearest_weekday(year, month, target, length)
        return target if target >= day else None


def _nearest_weekday(year: int, month: int, day: int, length: int) -> int:
    weekday = date(year, month, day).weekday()
    if weekday == 5:
        return day + 2 if day == 1 else day - 1
    if weekday == 6:
        return day - 2 if day == length else day + 1
    return day


@dataclass(frozen=True, slots=True)
class WeekdayOfMonth:
    """``n#k``: the k-th such weekday of the month, with no fire in months without one;
    ``nL`` (``nth`` None): the last such weekday of the month."""

    weekday: int  # Python numbering
    nth: int | None

    def first_day(self, year: int, month: int, day: int) -> int | None:
        length = month_length(year, month)
        if self.nth is None:
            target = length - (date(year, month, length).weekday() - self.weekday) % 7
        else:
            target = 1 + (self.weekday - date(year, month, 1).weekday()) % 7 + 7 * (self.nth - 1)
        return target if day <= target <= length else None


def parse_day_of_month(text: str) -> DayRule | None:
    """Parse day-of-month into a rule; None for ``?``."""
    if text == "?":
        return None
    upper = text.upper()
    if "L" in upper:
        match = _LAST_DAY.fullmatch(upper)
        if match is None:
            raise ValueError(f"'L' in day-of-month must be L, L-n, LW or L-nW, got {text!r}")
        offset = int(match.group(1) or 0)
        if offset > 30:
            raise ValueError(f"offset from the last day must be at most 30, got {offset}")
        return MonthDay(offset, from_end=True, is_nearest_weekday=bool(match.group(2)))
    if "W" in upper:
        day_text = upper.removesuffix("W")
        if not (day_text.isascii() and day_text.isdigit()):
            raise ValueError(f"'W' must follow a single day of the month: {text!r}")
        return MonthDay(DAY_OF_MONTH.value(day_text), from_end=False, is_nearest_weekday=True)
    return DaysOfMonth(parse_values(upper, DAY_OF_MONTH))


def parse_day_of_week(text: str) -> DayRule | None:
    """Parse day-of-week into a rule; None for ``?``."""
    if text == "?":
        return None
    upper = text.upper()
    if "," in upper and ("#" in upper or "L" in upper):
        raise ValueError("'L' and '#' cannot be combined with other days of the week")
    if "#" in upper:
        day_text, _, nth_text = upper.partition("#")
        if nth_text not in ("1", "2", "3", "4", "5"):
            raise ValueError(f"'#' must be followed by a number 1-5: {text!r}")
        day = DAY_OF_WEEK.value(day_text)
        return WeekdayOfMonth(_python_weekday(day), int(nth_text))
    if upper == "L":
        return DaysOfWeek.of((7,))
    if upper.endswith("L"):
        return WeekdayOfMonth(_python_weekday(DAY_OF_WEEK.value(upper[:-1])), None)
    return DaysOfWeek.of(parse_values(upper, DAY_OF_WEEK))
