"""EnOSClient: signed calls over an injectable transport, with retries and paging.

Signing and the access token are ``_auth``'s, the bytes on the wire ``_transport``'s, and
what an answer means ``_answers``'."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

import orjson

from extractor.config import FetchConfig, GatewayConfig, parse_timezone
from extractor.errors import (
    ApiError,
    AuthError,
    ConfigError,
    FatalApiError,
    GatewayUnreachableError,
    NotFoundError,
    PermanentApiError,
    ThrottledError,
    TokenExpiredError,
    TransientApiError,
)
from extractor.gateway._answers import INVALID_PARAMETER, classify, flow_insts
from extractor.gateway._auth import TOKEN_PATH, ApimAuth
from extractor.gateway._health import GatewayHealth
from extractor.gateway._rate import RateLimiter
from extractor.gateway._transport import PooledTransport, SessionTransport, Transport

if TYPE_CHECKING:
    import requests

SORT_FIELD = "triggerTime"
"""List Flow Instances' sorter: camelCase, one of createTime, updateTime, startTime,
triggerTime and endTime (any other is error 62102)."""

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


class EnOSClient:
    """A client of the EnOS gateway's Batch Processing Service.

    Requests go through ``transport`` (any object with the ``send`` and ``close`` of
    :class:`~extractor.gateway._transport.Transport`), or through a ``requests.Session`` given as
    ``session`` (its proxies and adapters apply); with neither, through a connection
    pool sized for the workers. Thread-safe: at most ``fetch.workers`` requests in
    flight, one access token shared by all threads (:class:`~extractor.gateway._auth.ApimAuth`),
    one rate budget. Transient failures are retried with exponential backoff and full
    jitter, within ``fetch.max_attempts`` and ``fetch.deadline_s``. The clocks, ``sleep``
    and ``rng`` are injectable so that tests never wait.
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        transport: Transport | None = None,
        session: requests.Session | None = None,
        fetch: FetchConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if transport is not None and session is not None:
            raise ConfigError("give EnOSClient a transport or a requests.Session, not both")
        self.config = config
        self.fetch_config = fetch or FetchConfig()
        pool = max(10, self.fetch_config.workers)
        if transport is None and (session is not None or config.proxies):
            transport = SessionTransport(config, pool_size=pool, session=session)
        self.transport: Transport = transport or PooledTransport(config, pool_size=pool)
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self.limiter = RateLimiter(self.fetch_config.max_rps, clock=clock, sleep=sleep)
        # A request in flight holds a slot; a thread waiting out a backoff or a
        # Retry-After does not, so another ID can use it (see extractor.run._fetch).
        self._slots = threading.BoundedSemaphore(self.fetch_config.workers)
        self.auth = ApimAuth(
            config.app_key,
            config.app_secret,
            self._request_token,
            clock=clock,
            wall_clock=wall_clock,
        )
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

    def __exit__(self, *exc_info: object) -> None:
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
            if exc.api_code != INVALID_PARAMETER or isinstance(exc, FatalApiError):
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
        payload = orjson.dumps(body) if body is not None else None
        url = f"{self.config.base_url}{path}?{urlencode(sorted(params.items()))}"
        content = {"Content-Type": "application/json"} if payload is not None else {}

        def exchange(signed: dict[str, str]) -> Any:
            self.stats.add("calls")
            return self._exchange(method, url, {**signed, **content}, payload)

        policy = self.fetch_config
        deadline = self._clock() + policy.deadline_s
        attempt = 0
        while True:
            attempt += 1
            deadline += self.health.wait()  # an outage is the run's, not this call's time
            try:
                with self._slots:
                    self.limiter.acquire()
                    data = self.auth.send(params, payload, exchange)
            except GatewayUnreachableError as exc:
                self.health.on_unreachable(exc)
                attempt -= 1
                continue
            except TokenExpiredError as exc:
                # A freshly issued token refused too (another thread's renewal may have
                # crossed ours): a failed attempt. A gateway that refuses every fresh
                # token has an authentication problem.
                if attempt >= policy.max_attempts:
                    raise AuthError(
                        "the gateway keeps rejecting freshly issued access tokens"
                    ) from exc
                self.stats.add("retries")
                self._sleep(self._backoff(attempt, None))
                continue
            except ApiError as exc:
                exc.attempts = attempt
                self.stats.error(exc)
                throttled = isinstance(exc, ThrottledError)
                self.limiter.record(throttled=throttled)
                if throttled:
                    self.stats.add("throttled")
                if not isinstance(exc, TransientApiError):
                    raise
                delay = self._backoff(attempt, exc.retry_after_s)
                if attempt >= policy.max_attempts or self._clock() + delay > deadline:
                    raise
                self.stats.add("retries")
                self._sleep(delay)
                continue
            self.limiter.record(throttled=False)
            return data

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None and retry_after > 0:
            # Honour the gateway, but never wait longer than our own longest backoff.
            return min(retry_after, self.fetch_config.backoff_max_s)
        cap = min(self.fetch_config.backoff_max_s, self.fetch_config.backoff_base_s * 2**attempt)
        with self._rng_lock:
            return self._rng.uniform(0, cap)

    def _request_token(self, body: bytes) -> Any:
        self.stats.add("tokens_fetched")
        url = f"{self.config.base_url}{TOKEN_PATH}"
        return self._exchange("POST", url, {"Content-Type": "application/json"}, body)

    def _exchange(
        self, method: Method, url: str, headers: Mapping[str, str], payload: bytes | None
    ) -> Any:
        """Send one request and classify its answer, telling gateway health whether the
        gateway answered."""
        sent_at = self._clock()
        try:
            answer = self.transport.send(method, url, headers, payload)
        except GatewayUnreachableError:
            raise
        except ApiError:
            self.health.on_no_answer()
            raise
        self.health.on_answer(sent_at)
        try:
            return classify(answer, now=self._wall)
        except TokenExpiredError:
            self.stats.add("token_expired")
            raise


__all__ = ["SORT_FIELD", "ClientStats", "EnOSClient"]
