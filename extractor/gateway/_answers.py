"""What the gateway's answers mean: the one classification of an answer into data or an
exception of :mod:`extractor.errors`, ``Retry-After``, and List Flow Instances' records.

Pure: nothing here sends a request, and the wall clock is a parameter.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from extractor.errors import (
    AuthError,
    FatalApiError,
    PermanentApiError,
    ThrottledError,
    TokenExpiredError,
    TransientApiError,
    UnexpectedAnswerError,
)
from extractor.gateway._transport import Answer

TOKEN_EXPIRED = 1203
# Token-service codes that mean the credentials themselves are wrong.
_AUTH_CODES = frozenset({1002, 1003, 1004, 1202})
# Batch Processing Service common codes: 62101 wrong user/org (every call fails),
# 62103 no privilege (this resource), 62109 internal error (try again).
_FATAL_CODES = frozenset({62101})
INVALID_PARAMETER = 62102
_NO_PRIVILEGE = 62103
_TRANSIENT_CODES = frozenset({1001, 1005, 1204, 62109})
_THROTTLE_CODES = frozenset({429})
_RETRY_AFTER_MAX_S = 60.0


def classify(answer: Answer, *, now: Callable[[], float] = time.time) -> Any:
    """Return the ``data`` of a gateway's answer; raise the matching :class:`ApiError`
    otherwise.

    The one place that decides what an answer means. The token service reports its
    result in ``status`` (once misspelled ``stauts``), the other services in ``code``.
    ``now`` is the wall clock that an HTTP-date ``Retry-After`` is read against.

    >>> classify(Answer(200, b'{"code": 0, "msg": "OK", "data": {"timezone": "GMT+8"}}', {}))
    {'timezone': 'GMT+8'}
    >>> classify(Answer(200, b'{"code": 62109, "msg": "Server internal exception"}', {}))
    Traceback (most recent call last):
    ...
    extractor.errors.TransientApiError: gateway error 62109: Server internal exception
    """
    http_status = answer.status
    try:
        body = orjson.loads(answer.content) if answer.content else None
    except orjson.JSONDecodeError:
        if 200 <= http_status < 300:
            raise TransientApiError(
                "malformed answer: the body is not valid JSON", http_status=http_status
            ) from None
        body = None  # an error page; the status code says enough
    code: int | None = None
    msg = ""
    if isinstance(body, Mapping):
        raw_code = next((body[k] for k in ("code", "status", "stauts") if k in body), None)
        code = _as_int(raw_code)
        msg = str(body.get("msg") or body.get("message") or "")[:300]
    retry_after = parse_retry_after(answer.headers.get("Retry-After"), now=now)
    detail = f"{code}: {msg}" if code is not None else f"HTTP {http_status}"
    kwargs: dict[str, Any] = {"http_status": http_status, "api_code": code}
    if http_status == 429 or code in _THROTTLE_CODES:
        raise ThrottledError(
            f"throttled by the gateway ({detail})", retry_after_s=retry_after, **kwargs
        )
    if code == TOKEN_EXPIRED:
        raise TokenExpiredError("access token expired", **kwargs)
    if code in _AUTH_CODES or http_status in (401, 403):
        raise AuthError(f"the gateway refused the credentials ({detail})", **kwargs)
    if code in _FATAL_CODES:
        raise FatalApiError(f"the gateway refused the user or organisation ({detail})", **kwargs)
    if code == _NO_PRIVILEGE:
        raise PermanentApiError(f"no permission ({detail})", **kwargs)
    if code == INVALID_PARAMETER:
        raise PermanentApiError(f"the gateway refused a parameter ({detail})", **kwargs)
    if http_status >= 500 or http_status == 408 or code in _TRANSIENT_CODES:
        raise TransientApiError(f"gateway error {detail}", retry_after_s=retry_after, **kwargs)
    if 300 <= http_status < 400:
        where = answer.headers.get("Location") or "elsewhere"
        raise FatalApiError(
            f"the gateway redirects to {where}: is the gateway URL right?", **kwargs
        )
    if http_status == 404 and code is None:
        raise FatalApiError(
            "the gateway answered 404 Not Found: is the gateway URL right?", **kwargs
        )
    if http_status >= 400:
        raise PermanentApiError(f"request refused ({detail})", **kwargs)
    if not isinstance(body, Mapping):
        raise TransientApiError("malformed answer: not a JSON object", **kwargs)
    if code is None:
        raise TransientApiError("malformed answer: no code in the body", **kwargs)
    if code != 0:
        raise PermanentApiError(f"gateway error {detail}", **kwargs)
    return body.get("data")


def flow_insts(data: Any) -> list[dict[str, Any]]:
    """Return the records of a List Flow Instances ``data``: ``{"flowInsts": [...],
    "count": N}`` as documented, or a bare list.

    Any other shape stops the run: read as "no instances", it would lose data silently.

    >>> flow_insts({"flowInsts": [{"instanceId": "1-2"}], "count": 1})
    [{'instanceId': '1-2'}]
    >>> flow_insts({"data": [], "total": 0})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    extractor.errors.UnexpectedAnswerError: ... an object with keys ['data', 'total'] ...
    """
    records = data.get("flowInsts") if isinstance(data, Mapping) else data
    if isinstance(records, list) and all(isinstance(r, dict) for r in records):
        return records
    if isinstance(data, Mapping) and "flowInsts" in data:
        what = f"flowInsts as {_shape(records)}"
    else:
        what = _shape(data)
    raise UnexpectedAnswerError(
        f"List Flow Instances answered data of an unknown shape: {what} "
        '(expected {"flowInsts": [...], "count": N})'
    )


def _shape(value: Any) -> str:
    if isinstance(value, Mapping):
        return f"an object with keys {sorted(map(str, value))[:10]}"
    if isinstance(value, list):
        kinds = sorted({type(v).__name__ for v in value})
        return f"a list of {', '.join(kinds)}"
    return "null" if value is None else f"a {type(value).__name__}"


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Read ``Retry-After`` (seconds or an HTTP date), clamped to [0, 60] seconds.

    >>> parse_retry_after("3")
    3.0
    >>> parse_retry_after("-5"), parse_retry_after("999999"), parse_retry_after("soon")
    (0.0, 60.0, None)
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412470.0)
    10.0
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), _RETRY_AFTER_MAX_S)


def _as_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(value) if isinstance(value, str) else None
    except ValueError:
        return None


__all__ = ["INVALID_PARAMETER", "TOKEN_EXPIRED", "classify", "flow_insts", "parse_retry_after"]
