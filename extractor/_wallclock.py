"""Read whole columns of the server's wall-clock times as UTC, the way zoneinfo reads one.

The flattener's reference path reads each naive time with
``datetime.replace(tzinfo=tz).astimezone(UTC)``: fold=0, so an ambiguous time is its first
occurrence and a time in a spring-forward gap keeps the offset from before the gap
(02:30 on a spring-forward day in New York is 07:30 UTC). Arrow's ``assume_timezone``
agrees on ambiguous times but, for a gap, gives the last instant before it or the first
after it. So a column is converted in two steps: ``assume_timezone`` with
``nonexistent="earliest"`` finds an instant whose offset is the one in force before any
gap, and that offset is subtracted from the wall-clock time. Both libraries read the
same tz database files; Arrow ignores the rule that extends them past 2037, so this
module only takes years 1900-2037 and leaves the rest to the reference path.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

LOCAL = pa.timestamp("us")
UTC_TYPE = pa.timestamp("us", tz="UTC")
MIN_YEAR, MAX_YEAR = 1900, 2037
# Texts that Arrow's cast and datetime.fromisoformat read alike; other ISO spellings,
# offsets and surrounding spaces go the reference way.
_WALL_CLOCK = r"^(19\d\d|20[0-2]\d|203[0-7])-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?$"

Shift = Callable[[pa.Array], pa.Array]
"""Naive ``timestamp[us]`` wall-clock times -> ``timestamp[us, UTC]``."""


def shift_for(tz: tzinfo) -> Shift | None:
    """Return the column-wise reading of wall-clock times in ``tz``; None if Arrow can't.

    >>> from datetime import timedelta
    >>> shift = shift_for(timezone(timedelta(hours=8)))
    >>> shift(pa.array([datetime(2019, 7, 26, 12, 39)], LOCAL)).to_pylist()[0].hour
    4
    """
    if isinstance(tz, timezone):
        offset = tz.utcoffset(None)
        offset_us = offset.days * 86_400_000_000 + offset.seconds * 1_000_000 + offset.microseconds
        return lambda local: _minus(local, offset_us)
    if isinstance(tz, ZoneInfo) and tz.key:
        key = tz.key
        try:
            if ZoneInfo(key) is not tz:  # not the zone its key names (read from a file?)
                return None
            pc.assume_timezone(pa.array([0], LOCAL), timezone=key)
        except (ValueError, KeyError, pa.ArrowNotImplementedError, TypeError):
            return None  # no tz database for Arrow, or not this zone in it
        return lambda local: _zone_shift(local, key)
    return None


def _minus(local: pa.Array, offset_us: pa.Array | int) -> pa.Array:
    utc = pc.subtract(local.cast(pa.int64()), offset_us)
    return utc.cast(UTC_TYPE)


def _zone_shift(local: pa.Array, key: str) -> pa.Array:
    instant = pc.assume_timezone(local, timezone=key, ambiguous="earliest", nonexistent="earliest")
    offset_us = pc.subtract(pc.local_timestamp(instant).cast(pa.int64()), instant.cast(pa.int64()))
    return _minus(local, offset_us)


def parse_wall_clock(strings: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Parse naive ``YYYY-MM-DD HH:MM:SS[.f]`` texts; return the times and which failed.

    A failed text's time is null; ``None`` texts are null without failing.

    >>> texts = pa.array(["2019-07-26 12:39:00.5", None, "2019-02-30 10:00:00"])
    >>> times, failed = parse_wall_clock(texts)
    >>> times.to_pylist()[0], failed.tolist()
    (datetime.datetime(2019, 7, 26, 12, 39, 0, 500000), [False, False, True])
    """
    matched = pc.match_substring_regex(strings, _WALL_CLOCK)
    failed = pc.invert(matched.fill_null(True)).to_numpy(zero_copy_only=False)
    if failed.any():
        strings = pc.if_else(matched, strings, None)
    try:
        return strings.cast(LOCAL), failed
    except pa.ArrowInvalid:  # a day the month does not have, an hour past 23, ...
        pass
    failed = failed.copy()
    texts = strings.to_pylist()
    for check in (datetime.fromisoformat, _arrow_parse):
        for i, text in enumerate(texts):
            if text is not None and not failed[i]:
                try:
                    check(text)
                except (ValueError, pa.ArrowInvalid):
                    failed[i] = True
        strings = pc.if_else(pa.array(failed), None, strings)
        try:
            return strings.cast(LOCAL), failed
        except pa.ArrowInvalid:  # Arrow refused what Python took: ask Arrow one by one
            pass
    raise AssertionError("unreachable: every text Arrow refuses is marked")


def _arrow_parse(text: str) -> None:
    pa.array([text], pa.string()).cast(LOCAL)
