"""EnOSClient: one pooled ``requests.Session``, signing, retries, and the one function that
turns an HTTP answer into a result or an exception of :mod:`extractor.errors`."""

from __future__ import annotations

import email.utils
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlencode

import orjson
import requests

from extractor.config import FetchConfig, GatewayConfig, parse_timezone
from extractor.errors import (
    ApiError,
    AuthError,
    FatalApiError,
    GatewayUnreachableError,
    NotFoundError,
    PermanentApiError,
    ThrottledError,
    TokenExpiredError,
    TransientApiError,
    UnexpectedAnswerError,
)
from extractor.gateway._auth import TOKEN_PATH, TokenCache, signature, token_encryption
from extractor.gateway._health import GatewayHealth
from extractor.gateway._rate import RateLimiter
from extractor.gateway._transport import Answer, PooledTransport, SessionTransport, Transport

SORT_FIELD = "triggerTime"
"""List Flow Instances' sorter: camelCase, one of createTime, updateTime, startTime,
triggerTime and endTime (any other is error 62102)."""

TOKEN_EXPIRED = 1203
# Token-service codes that mean the credentials themselves are wrong.
_AUTH_CODES = frozenset({1002, 1003, 1004, 1202})
# Batch Processing Service common codes: 62101 wrong user/org (every call fails),
# 62103 no privilege (this resource), 62109 internal error (try again).
_FATAL_CODES = frozenset({62101})
_INVALID_PARAMETER = 62102
_NO_PRIVILEGE = 62103
_TRANSIENT_CODES = frozenset({1001, 1005, 1204, 62109})
_THROTTLE_CODES = frozenset({429})
_RETRY_AFTER_MAX_S = 60.0

Method = Literal["GET", "POST"]


@dataclass
class ClientStats:
    """Counters across threads: calls, retries, throttles and errors by class."""

    calls: int = 0
    retries: int = 0
    throttled: int = 0
    tokens_fetched: int = 0
    token_expired: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def error(self, exc: BaseException) -> None:
        with self._lock:
            self.errors[type(exc).__name__] += 1


def classify(
    http_status: int,
    body: Any,
    *,
    headers: Mapping[str, str] | None = None,
    now: Callable[[], float] = time.time,
) -> Any:
    """Return the body's ``data`` on success; raise the matching :class:`ApiError` otherwise.

    The one place that decides what an answer means. The token service reports its
    result in ``status`` (once misspelled ``stauts``), the other services in ``code``.

    >>> classify(200, {"code": 0, "msg": "OK", "data": {"timezone": "GMT+8"}})
    {'timezone': 'GMT+8'}
    >>> classify(200, {"code": 62109, "msg": "Server internal exception"})
    Traceback (most recent call last):
    ...
    extractor.errors.TransientApiError: gateway error 62109: Server internal exception
    """
    code: int | None = None
    msg = ""
    if isinstance(body, Mapping):
        raw_code = next((body[k] for k in ("code", "status", "stauts") if k in body), None)
        code = _as_int(raw_code)
        msg = str(body.get("msg") or body.get("message") or "")[:300]
    retry_after = parse_retry_after((headers or {}).get("Retry-After"), now=now)
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
    if code == _INVALID_PARAMETER:
        raise PermanentApiError(f"the gateway refused a parameter ({detail})", **kwargs)
    if http_status >= 500 or http_status == 408 or code in _TRANSIENT_CODES:
        raise TransientApiError(f"gateway error {detail}", retry_after_s=retry_after, **kwargs)
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
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


class EnOSClient:
    """A client of the EnOS gateway's Batch Processing Service.

    Thread-safe: at most ``fetch.workers`` requests in flight over one connection pool
    (see :mod:`extractor.gateway._transport`; an injected ``requests.Session`` replaces it), one
    token shared by all threads, one rate budget. Transient failures are retried with
    exponential backoff and full jitter, within ``fetch.max_attempts`` and
    ``fetch.deadline_s``; an expired token is renewed and the call repeated once.
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        fetch: FetchConfig | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.fetch_config = fetch or FetchConfig()
        pool = max(10, self.fetch_config.workers)
        verify, ca_bundle, timeout = config.verify_tls, config.ca_bundle, config.timeout_s
        self.transport: Transport
        if session is not None or config.proxies:
            via_session = SessionTransport(
                session, pool_size=pool, timeout_s=timeout, verify=verify, ca_bundle=ca_bundle
            )
            if session is None:
                via_session.session.proxies.update(config.proxies)
            self.transport = via_session
        else:
            self.transport = PooledTransport(
                pool_size=pool, timeout_s=timeout, verify=verify, ca_bundle=ca_bundle
            )
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self.limiter = RateLimiter(self.fetch_config.max_rps, clock=clock, sleep=sleep)
        # A request in flight holds a slot; a thread waiting out a backoff or a
        # Retry-After does not, so another ID can use it (see extractor.run._fetch).
        self._slots = threading.BoundedSemaphore(self.fetch_config.workers)
        self.tokens = TokenCache(self._fetch_token, clock=clock)
        self.stats = ClientStats()
        self.health = GatewayHealth(
            outage_timeout_s=self.fetch_config.outage_timeout_s, clock=clock, sleep=sleep
        )
        self._instances = f"/{config.service_path}/flowInstances"
        self._time = f"/{config.service_path}/time"

    def __repr__(self) -> str:
        return f"EnOSClient(base_url={self.config.base_url!r}, org_id={self.config.org_id!r})"

    def __enter__(self) -> EnOSClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def get_flow_instance(self, instance_id: str) -> dict[str, Any]:
        """Return one flow instance's ``data`` object.

        Raises:
            NotFoundError: the gateway has no such instance.
            ApiError: any other failure, after retries where they can help.
        """
        params = {"action": "get", "flowInstId": instance_id, **self._identity()}
        try:
            data = self._call("GET", self._instances, params)
        except ApiError as exc:
            exc.instance_id = instance_id
            raise
        if isinstance(data, list):
            data = data[0] if len(data) == 1 else (data or None)
        if data is None:
            raise NotFoundError(f"no flow instance {instance_id}", instance_id=instance_id)
        if not isinstance(data, dict):
            raise TransientApiError(
                f"malformed answer for {instance_id}: data is {type(data).__name__}",
                instance_id=instance_id,
            )
        return data

    def list_page(
        self,
        *,
        from_ms: int,
        to_ms: int,
        type: int,
        page_no: int = 1,
        page_size: int = 100,
        status: str = "",
        owner: str = "",
        expression: str = "",
    ) -> list[dict[str, Any]]:
        """Return one page of List Flow Instances: whole FlowInstance records.

        ``from_ms`` and ``to_ms`` are epoch milliseconds; the documentation says only
        that trigger times "fall between" them, so callers treat both ends as inclusive.
        Pages are numbered from 1 and sorted by trigger time, oldest first.

        Raises:
            UnexpectedAnswerError: ``data`` is neither ``{"flowInsts": [...]}`` nor a list.
            FatalApiError: the gateway refused a parameter (62102) or the user (62101).
            ApiError: any other failure, after retries where they can help.
        """
        pagination = {
            "pageNo": page_no,
            "pageSize": page_size,
            "sorters": [{"field": SORT_FIELD, "order": "ASC"}],
        }
        body = {
            "type": type,
            "expression": expression,
            "owner": owner,
            "fromTriggerTime": from_ms,
            "toTriggerTime": to_ms,
            "status": status,
            "pagination": pagination,
        }
        params = {"action": "search", **self._identity()}
        try:
            data = self._call("POST", self._instances, params, body)
        except PermanentApiError as exc:
            if exc.api_code != _INVALID_PARAMETER or isinstance(exc, FatalApiError):
                raise
            raise FatalApiError(
                f"List Flow Instances {exc.message} in a request with type {type}, "
                f"status {status!r}, sorters field {SORT_FIELD!r}, pageNo {page_no}, "
                f"pageSize {page_size}",
                http_status=exc.http_status,
                api_code=exc.api_code,
            ) from exc
        return flow_insts(data)

    def get_timezone(self) -> tzinfo:
        """Ask the gateway for the server's time zone (naive timestamps are in it)."""
        data = self._call("GET", self._time, {"action": "getTimeZone"})
        if not isinstance(data, Mapping) or not isinstance(data.get("timezone"), str):
            raise TransientApiError("malformed Get Time Zone answer")
        return parse_timezone(data["timezone"])

    def _identity(self) -> dict[str, str]:
        return {"userId": self.config.user_id, "orgId": self.config.org_id}

    def _call(
        self,
        method: Method,
        path: str,
        params: Mapping[str, str],
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        policy = self.fetch_config
        deadline = self._clock() + policy.deadline_s
        attempt = 0
        renewed = False
        while True:
            attempt += 1
            deadline += self.health.wait()  # an outage is the run's, not this call's time
            try:
                with self._slots:
                    self.limiter.acquire()
                    data = self._send(method, path, params, body)
            except GatewayUnreachableError as exc:
                self.health.on_unreachable(exc)
                attempt -= 1
                continue
            except TokenExpiredError as exc:
                # The first expiry is routine: renew and repeat for free. Fresh tokens
                # expiring again count as failed attempts, and a gateway that rejects
                # every fresh token is an authentication problem.
                self.stats.add("token_expired")
                if not renewed:
                    renewed = True
                    attempt -= 1
                    continue
                if attempt >= policy.max_attempts:
                    raise AuthError(
                        "the gateway keeps rejecting freshly issued access tokens"
                    ) from exc
                self.stats.add("retries")
                self._sleep(self._backoff(attempt, None))
                continue
            except TransientApiError as exc:
                exc.attempts = attempt
                self.stats.error(exc)
                throttled = isinstance(exc, ThrottledError)
                self.limiter.record(throttled=throttled)
                if throttled:
                    self.stats.add("throttled")
                delay = self._backoff(attempt, exc.retry_after_s)
                if attempt >= policy.max_attempts or self._clock() + delay > deadline:
                    raise
                self.stats.add("retries")
                self._sleep(delay)
                continue
            except ApiError as exc:
                exc.attempts = attempt
                self.stats.error(exc)
                self.limiter.record(throttled=False)
                raise
            self.limiter.record(throttled=False)
            return data

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None and retry_after > 0:
            # Honour the gateway, but never wait longer than our own longest backoff.
            return min(retry_after, self.fetch_config.backoff_max_s)
        cap = min(self.fetch_config.backoff_max_s, self.fetch_config.backoff_base_s * 2**attempt)
        with self._rng_lock:
            return self._rng.uniform(0, cap)

    def _send(
        self,
        method: Method,
        path: str,
        params: Mapping[str, str],
        body: Mapping[str, Any] | None,
    ) -> Any:
        payload = orjson.dumps(body) if body is not None else None
        token = self.tokens.get()
        stamp = int(self._wall() * 1000)
        headers = {
            "apim-accesstoken": token,
            "apim-timestamp": str(stamp),
            "apim-signature": signature(token, params, payload, stamp, self.config.app_secret),
        }
        if payload is not None:
            headers["Content-Type"] = "application/json"
        url = f"{self.config.base_url}{path}?{urlencode(sorted(params.items()))}"
        self.stats.add("calls")
        response = self._http(method, url, headers, payload)
        try:
            return self._classify(response)
        except TokenExpiredError:
            self.tokens.invalidate(token)
            raise

    def _http(
        self, method: Method, url: str, headers: Mapping[str, str], payload: bytes | None
    ) -> Answer:
        sent_at = self._clock()
        try:
            answer = self.transport.send(method, url, headers, payload)
        except GatewayUnreachableError:
            raise
        except ApiError:
            self.health.on_no_answer()
            raise
        self.health.on_answer(sent_at)
        return answer

    def _classify(self, answer: Answer) -> Any:
        try:
            body = orjson.loads(answer.content) if answer.content else None
        except orjson.JSONDecodeError:
            if 200 <= answer.status < 300:
                raise TransientApiError(
                    "malformed answer: the body is not valid JSON", http_status=answer.status
                ) from None
            body = None  # an error page; the status code says enough
        return classify(answer.status, body, headers=answer.headers, now=self._wall)

    def _fetch_token(self) -> tuple[str, float]:
        self.stats.add("tokens_fetched")
        stamp = int(self._wall() * 1000)
        body = {
            "appKey": self.config.app_key,
            "encryption": token_encryption(self.config.app_key, stamp, self.config.app_secret),
            "timestamp": stamp,
        }
        response = self._http(
            "POST",
            f"{self.config.base_url}{TOKEN_PATH}",
            {"Content-Type": "application/json"},
            orjson.dumps(body),
        )
        data = self._classify(response)
        if not isinstance(data, Mapping) or not data.get("accessToken"):
            raise TransientApiError("malformed token answer: no accessToken")
        try:
            lifetime = float(data.get("expire", 7200))
        except (TypeError, ValueError):
            lifetime = 7200.0
        return str(data["accessToken"]), max(lifetime, 1.0)


__all__ = ["SORT_FIELD", "ClientStats", "EnOSClient", "classify", "flow_insts", "parse_retry_after"]
