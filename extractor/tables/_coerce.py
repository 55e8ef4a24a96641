"""The fields the API is known to send, and coercions of its loosely typed values.

The API's documented types and real values disagree (see the README's "API quirks"), so
each coercion accepts every shape seen and raises ``ValueError`` or ``TypeError`` on
anything else. The flattener decides what such an error costs: the instance, or one
element of it.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, tzinfo
from typing import Any

import orjson

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INSTANCE_KEYS = frozenset(
    {
        "instanceId",
        "flowId",
        "flowName",
        "freq",
        "cycle",
        "parameters",
        "doAs",
        "graph",
        "status",
        "statusDesc",
        "triggerTime",
        "startTime",
        "endTime",
        "timestamp",
        "virtual",
        "owner",
        "alertMode",
        "calDt",
        "hasEditPri",
        "hasReadPri",
        "isCancelled",
    }
)
GRAPH_KEYS = frozenset(
    {
        "creator",
        "freq",
        "alertMode",
        "owners",
        "cycle",
        "do_as",
        "doAs",
        "flows",
        "alertTo",
        "name",
        "instId",
        "id",
        "relations",
        "parameters",
        "app_id",
        "tasks",
    }
)
# Get Flow Instance spells a task's name and ID in camelCase, List Flow Instances in
# snake_case (and sends no status).
TASK_KEYS = frozenset(
    {"taskName", "task_name", "taskInstId", "x", "y", "taskId", "task_id", "nodeId", "status"}
)
FLOW_KEYS = frozenset(
    {"flowId", "flowName", "nodeId", "isVirtual", "x", "y", "flowInstId", "status"}
)
# No public example shows a non-empty relation; these are the spellings graph editors use.
EDGE_SPELLINGS = (
    ("source", "target"),
    ("from", "to"),
    ("preNodeId", "nodeId"),
    ("fromNodeId", "toNodeId"),
    ("sourceNodeId", "targetNodeId"),
)
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def canonical_json(value: Any) -> str:
    """Encode JSON canonically: sorted keys, no spaces, UTF-8 text kept as is.

    >>> canonical_json({"b": 1, "a": "风机"})
    '{"a":"风机","b":1}'
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # e.g. integers beyond 64 bits, which the stdlib encodes exactly
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def decode_json(value: Any, name: str, kind: type) -> Any:
    """Decode a JSON-in-JSON field; accept the already-decoded form too.

    >>> decode_json('[{"a": 1}]', "graph", dict)
    {'a': 1}
    >>> decode_json("", "parameters", list) is None
    True
    """
    if value is None or value == "":
        return None
    if isinstance(value, str | bytes):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"{name} is not valid JSON: {exc}") from exc
    if kind is dict and isinstance(value, list) and len(value) == 1:
        value = value[0]  # graph is documented as List<JSONObject>
    if value is None:
        return None
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be a JSON {kind.__name__}, got {type(value).__name__}")
    return value


def as_text(value: Any) -> str | None:
    """Text as is; numbers and booleans as Python writes them.

    >>> as_text(3), as_text(None)
    ('3', None)
    """
    if value is None or type(value) is str or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    raise TypeError(f"expected text, got {type(value).__name__}")


def as_id(value: Any) -> str | None:
    """IDs arrive as strings or integers; store them as strings (empty means none).

    >>> as_id(104452), as_id("")
    ('104452', None)
    """
    if type(value) is str:  # the usual case first: this runs for every element
        return value or None
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected an ID, got {type(value).__name__} {value!r}")


def as_id_or_none(value: Any) -> str | None:
    """Like :func:`as_id`, but None for a value of the wrong type."""
    try:
        return as_id(value)
    except TypeError:
        return None


def as_int(value: Any, name: str) -> int | None:
    """An integer from an integer, an integral float or a numeric string.

    Values beyond 64 bits are refused: no column could store them.

    >>> as_int(" 42", "taskId"), as_int(3.0, "status")
    (42, 3)
    """
    if type(value) is int and INT64_MIN <= value <= INT64_MAX:  # the usual case first
        return value
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            raise ValueError(f"{name} must be an integer, got {value!r}") from None
    else:
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError(f"{name} does not fit in 64 bits: {value!r}")
    return number


def as_float(value: Any, name: str) -> float | None:
    """A float from a number or a numeric string.

    >>> as_float(1, "x"), as_float("0.5", "y")
    (1.0, 0.5)
    """
    if type(value) is float:  # the usual case first
        return value
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f"{name} must be a number, got {value!r}")


def as_bool(value: Any, name: str) -> bool | None:
    """A boolean from a boolean, 0/1, or true/false/yes/no in any case.

    >>> as_bool("False", "virtual"), as_bool(1, "hasReadPri")
    (False, True)
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    raise ValueError(f"{name} must be a boolean, got {value!r}")


def as_local_time(value: Any, name: str) -> datetime | None:
    """Parse a server timestamp: naive ``YYYY-MM-DD HH:MM:SS[.f]``, ISO with offset, or
    epoch milliseconds (which come back UTC-aware).

    >>> as_local_time("2019-07-26 12:39:00.0", "timestamp")
    datetime.datetime(2019, 7, 26, 12, 39)
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{name} is not a valid timestamp: {value!r}") from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"{name} is out of range: {value!r}") from None
    raise TypeError(f"{name} must be a timestamp string, got {type(value).__name__}")


def to_utc(local: datetime | None, tz: tzinfo) -> datetime | None:
    """Read a naive time in ``tz`` (the first occurrence when ambiguous) and return UTC."""
    if local is None:
        return None
    if local.tzinfo is None:
        local = local.replace(tzinfo=tz)
    return local.astimezone(UTC)


def as_date(value: Any, name: str) -> date | None:
    """The date at the start of a ``YYYY-MM-DD[...]`` string.

    >>> as_date("2019-07-25", "calDt")
    datetime.date(2019, 7, 25)
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise ValueError(f"{name} is not a valid date: {value!r}") from None
    raise TypeError(f"{name} must be a date string, got {type(value).__name__}")
