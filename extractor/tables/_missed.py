"""Missed runs: the fires a flow's Quartz schedule owed in a period that left no instance.

Quartz fires on the server's wall clock, so each flow's fires are found in wall-clock
time with :meth:`~extractor.tables._schedule.Schedule.fires_between` and then read in the
server's zone exactly as the flattener reads ``triggerTime``: a time the clocks go back
over is its first occurrence, and a time in a spring-forward gap keeps the offset from
before the gap (02:30 on a spring-forward day in New York is 07:30 UTC, when the clocks
say 03:30), which is also where Quartz's lenient calendar puts that fire. So a fire and
the instance it started carry the same UTC ``trigger_time``, whatever the zone does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

import numpy as np
import pandas as pd

from extractor.config import parse_timezone
from extractor.errors import ConfigError
from extractor.tables._coerce import to_utc
from extractor.tables._schedule import parse_cron

__all__ = ["MISSED_COLUMNS", "missed_runs"]

_DTYPES = {
    "flow_id": "int64",
    "flow_name": "string",
    "freq": "string",
    "fire_time": "datetime64[us, UTC]",
    "local_fire_time": "datetime64[us]",
}
MISSED_COLUMNS = tuple(_DTYPES)
"""The columns :func:`missed_runs` returns."""

_NEEDED = ("flow_id", "freq", "trigger_time")
_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_MARGIN = timedelta(days=1)
"""Wall-clock slack around the period: more than any zone's offset changes a day."""


def missed_runs(
    instances: pd.DataFrame,
    start: datetime,
    end: datetime,
    *,
    timezone: tzinfo | str,
    tolerance: timedelta = timedelta(0),
) -> pd.DataFrame:
    """Return the fires in ``[start, end)`` that no instance of their flow answers.

    Each flow's schedule is the ``freq`` of its latest instance in ``instances``; a
    flow with no instance there, or with no valid ``freq``, cannot be judged and is
    left out. A fire counts as run when an instance of the same flow has a
    ``trigger_time`` within ``tolerance`` of it (EnOS writes the fire time itself, so
    the default asks for the same second). Instances off the schedule (reruns of
    other days, manual runs) answer nothing and are not reported.

    Args:
        instances: ``flow_instances`` rows (e.g. ``read_sql(...).instances``) with at
            least ``flow_id``, ``freq`` and ``trigger_time`` (UTC); ``flow_name`` is
            carried over when present.
        start: First moment of the period (inclusive); time-zone aware.
        end: End of the period (exclusive); time-zone aware.
        timezone: The gateway's zone, in which Quartz fires: a tzinfo, an IANA name or
            Get Time Zone's ``GMT+8``.

    Returns:
        One row per missed fire, by ``fire_time`` then ``flow_id``, with the columns
        of :data:`MISSED_COLUMNS`: ``fire_time`` in UTC and ``local_fire_time`` the
        naive wall-clock time on the server, as the instance ID would have spelled it.

    Raises:
        ConfigError: A naive or reversed period, a negative tolerance, an unknown zone
            or a column missing from ``instances``.

    >>> seen = pd.DataFrame({
    ...     "flow_id": [7, 7], "freq": ["0 0 2 ? * MON-FRI *"] * 2,
    ...     "trigger_time": pd.to_datetime(["2024-06-03 18:00", "2024-06-05 18:00"], utc=True),
    ... })
    >>> missed = missed_runs(seen, datetime(2024, 6, 3, tzinfo=UTC),
    ...                      datetime(2024, 6, 8, tzinfo=UTC), timezone="Asia/Shanghai")
    >>> [str(t) for t in missed.local_fire_time]
    ['2024-06-05 02:00:00', '2024-06-07 02:00:00']
    """
    zone = parse_timezone(timezone) if isinstance(timezone, str) else timezone
    if start.tzinfo is None or end.tzinfo is None:
        raise ConfigError("give start and end with a time zone (e.g. tzinfo=UTC)")
    if end < start:
        raise ConfigError(f"end {end} is before start {start}")
    if tolerance < timedelta(0):
        raise ConfigError(f"tolerance must not be negative, got {tolerance}")
    absent = [name for name in _NEEDED if name not in instances.columns]
    if absent:
        raise ConfigError(f"instances lack the column(s) {', '.join(absent)}")
    fires = _fires(_schedules(instances), start, end, zone)
    if fires.empty:
        return fires
    seen = instances.loc[instances["trigger_time"].notna(), ["flow_id", "trigger_time"]]
    seen = seen.astype({"flow_id": "int64", "trigger_time": "datetime64[us, UTC]"})
    matched = pd.merge_asof(
        fires.sort_values("fire_time"),
        seen.rename(columns={"trigger_time": "answered"}).sort_values("answered"),
        left_on="fire_time",
        right_on="answered",
        by="flow_id",
        direction="nearest",
        tolerance=pd.Timedelta(tolerance),
    )
    missed = matched.loc[matched["answered"].isna(), list(MISSED_COLUMNS)]
    return missed.sort_values(["fire_time", "flow_id"], kind="stable").reset_index(drop=True)


def _schedules(instances: pd.DataFrame) -> pd.DataFrame:
    """Return each flow's ID, name and the ``freq`` of its latest instance."""
    rows = instances[instances["flow_id"].notna() & instances["freq"].notna()]
    latest = rows.sort_values("trigger_time", kind="stable", na_position="first")
    latest = latest.drop_duplicates("flow_id", keep="last")
    names = latest["flow_name"] if "flow_name" in latest.columns else None
    return pd.DataFrame(
        {
            "flow_id": latest["flow_id"].astype("int64"),
            "flow_name": pd.Series(names, dtype="string", index=latest.index),
            "freq": latest["freq"].astype("string"),
        }
    )


def _fires(flows: pd.DataFrame, start: datetime, end: datetime, zone: tzinfo) -> pd.DataFrame:
    """Return every fire of every flow in ``[start, end)``: UTC and wall-clock times."""
    first = start.astimezone(zone).replace(tzinfo=None) - _MARGIN
    stop = end.astimezone(zone).replace(tzinfo=None) + _MARGIN
    low, high = _micros(start), _micros(end)
    parts = []
    for flow_id, name, freq in flows.itertuples(index=False):
        wall = parse_cron(str(freq)).fires_between(first, stop)
        # Two wall-clock fires can read as one instant (02:30 in a spring-forward gap
        # and 03:30 after it); Quartz runs that instant once.
        utc, keep = np.unique(_utc_micros(wall, zone), return_index=True)
        inside = (utc >= low) & (utc < high)
        count = int(inside.sum())
        parts.append(
            pd.DataFrame(
                {
                    "flow_id": [flow_id] * count,
                    "flow_name": [name] * count,
                    "freq": [freq] * count,
                    "fire_time": pd.to_datetime(utc[inside], unit="us", utc=True),
                    "local_fire_time": pd.to_datetime(wall[keep][inside], unit="us"),
                }
            ).astype(_DTYPES)
        )
    if not parts:
        return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in _DTYPES.items()})
    return pd.concat(parts, ignore_index=True)


def _micros(moment: datetime) -> int:
    return (moment.astimezone(UTC).replace(tzinfo=None) - _EPOCH) // _MICROSECOND


def _utc_micros(wall: np.ndarray, zone: tzinfo) -> np.ndarray:
    """Read wall-clock microseconds in ``zone`` as the flattener reads trigger times."""
    utc = (to_utc(_EPOCH + timedelta(microseconds=w), zone) for w in wall.tolist())
    return np.array([_micros(moment) for moment in utc if moment is not None], np.int64)
