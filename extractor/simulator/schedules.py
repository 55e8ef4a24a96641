"""Fire times of the simulator's flows: the few Quartz cron shapes the population uses.

Every schedule here fires at second 0 of a set of minutes, in a set of hours, on days
chosen by a day rule, so stepping day by day is exact and cheap. Times are naive
wall-clock times in the server's zone, as the gateway writes them. This is a private
stepper for the simulator; the extractor's own Quartz support lives elsewhere.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

DayRule = Literal["daily", "weekday", "weekdays", "month-day", "month-last"]

_ONE_DAY = timedelta(days=1)
_LOOKBACK_DAYS = 64
"""How far back :meth:`FireTimes.last_at_or_before` looks; covers a monthly schedule."""


def quartz_day_of_week(day: date) -> int:
    """Return Quartz's day-of-week number, 1=SUN .. 7=SAT.

    >>> quartz_day_of_week(date(2026, 1, 5))  # a Monday
    2
    """
    return (day.weekday() + 1) % 7 + 1


@dataclass(frozen=True, slots=True)
class FireTimes:
    """One flow's schedule: its cron text, cycle code and the fire-time sets behind them."""

    freq: str
    cycle: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    day_rule: DayRule = "daily"
    day_value: int = 0
    """Quartz day-of-week for ``weekday``, day of month for ``month-day``."""

    def fires_on(self, day: date) -> bool:
        """Tell whether the schedule fires at all on ``day``."""
        rule = self.day_rule
        if rule == "daily":
            return True
        if rule == "weekday":
            return quartz_day_of_week(day) == self.day_value
        if rule == "weekdays":
            return day.weekday() < 5
        if rule == "month-day":
            return day.day == self.day_value
        return day.day == calendar.monthrange(day.year, day.month)[1]

    def is_fire(self, moment: datetime) -> bool:
        """Tell whether ``moment`` is exactly one of the schedule's fire times."""
        return (
            moment.second == 0
            and moment.microsecond == 0
            and moment.minute in self.minutes
            and moment.hour in self.hours
            and self.fires_on(moment.date())
        )

    def _day_times(self, day: date) -> Iterator[datetime]:
        for hour in self.hours:
            for minute in self.minutes:
                yield datetime.combine(day, time(hour, minute))

    def iter_fires(self, start: datetime, stop: datetime) -> Iterator[datetime]:
        """Yield fire times in ``[start, stop)`` in order."""
        day = start.date()
        while day <= stop.date():
            if self.fires_on(day):
                for moment in self._day_times(day):
                    if moment >= stop:
                        return
                    if moment >= start:
                        yield moment
            day += _ONE_DAY

    def count(self, start: datetime, stop: datetime) -> int:
        """Count fire times in ``[start, stop)`` without listing them."""
        if stop <= start:
            return 0
        first, last = start.date(), stop.date()
        total = sum(
            len(self.hours) * len(self.minutes)
            for offset in range(1, (last - first).days)
            if self.fires_on(first + timedelta(days=offset))
        )
        if self.fires_on(first):
            total += sum(1 for m in self._day_times(first) if start <= m < stop)
        if last != first and self.fires_on(last):
            total += sum(1 for m in self._day_times(last) if m < stop)
        return total

    def last_at_or_before(self, moment: datetime) -> datetime | None:
        """Return the latest fire time at or before ``moment``, looking back two months."""
        day = moment.date()
        for _ in range(_LOOKBACK_DAYS):
            if self.fires_on(day):
                best = None
                for candidate in self._day_times(day):
                    if candidate > moment:
                        break
                    best = candidate
                if best is not None:
                    return best
            day -= _ONE_DAY
        return None
