"""How bytes reach the gateway: the :class:`Transport` seam, and its two implementations.

A client takes any object with :class:`Transport`'s two methods (tests give it one that
answers from memory). Without one, it uses :class:`PooledTransport`, whose per-call cost
is lowest: measured on loopback, one signed Get Flow Instance costs about 270 µs of
client CPU through urllib3's pool and about 700-900 µs through ``requests`` (whose
per-request environment and hook handling dominate). :class:`SessionTransport` carries
a ``requests.Session`` the user brings (proxies, adapters, requests-mock), or one of its
own when the environment names a proxy for the gateway, which requests handles fully.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import certifi
import requests
import urllib3
from requests.adapters import HTTPAdapter

from extractor.config import GatewayConfig
from extractor.errors import ApiError, FatalApiError, GatewayUnreachableError, TransientApiError


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer, whatever carried it."""

    status: int
    content: bytes
    headers: Mapping[str, str]


class Transport(Protocol):
    """Sends one request; raises an ``ApiError`` for anything short of an answer."""

    def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Answer: ...

    def close(self) -> None: ...


class PooledTransport:
    """Keep-alive connections from a urllib3 pool sized for the worker threads."""

    def __init__(self, config: GatewayConfig, *, pool_size: int) -> None:
        self._timeout_s = timeout_s = config.timeout_s
        self._timeout = urllib3.Timeout(connect=_connect_timeout(timeout_s), read=timeout_s)
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=pool_size,
            block=False,
            cert_reqs="CERT_REQUIRED" if config.verify_tls else "CERT_NONE",
            ca_certs=(config.ca_bundle or certifi.where()) if config.verify_tls else None,
        )

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> Answer:
        try:
            r = self._pool.request(
                method,
                url,
                headers=dict(headers),
                body=body,
                timeout=self._timeout,
                retries=False,
                redirect=False,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise translate(exc, self._timeout_s) from exc
        return Answer(r.status, r.data, r.headers)

    def close(self) -> None:
        self._pool.clear()


class SessionTransport:
    """A ``requests.Session``: the user's own, or one of ours for a proxied gateway.

    A session given is used as it is (its proxies, adapters and TLS settings) and left
    open; one made here is set up from ``config`` and closed with the transport.
    """

    def __init__(
        self, config: GatewayConfig, *, pool_size: int, session: requests.Session | None = None
    ) -> None:
        self._owns = session is None
        self.session = session or requests.Session()
        if self._owns:
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)
            self.session.verify = (config.ca_bundle or True) if config.verify_tls else False
            self.session.proxies.update(config.proxies)
        self._timeout_s = config.timeout_s

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> Answer:
        try:
            r = self.session.request(
                method,
                url,
                headers=headers,
                data=body,
                timeout=(_connect_timeout(self._timeout_s), self._timeout_s),
                allow_redirects=False,
            )
        except (requests.exceptions.RequestException, OSError) as exc:
            raise translate(exc, self._timeout_s) from exc
        return Answer(r.status_code, r.content, r.headers)

    def close(self) -> None:
        if self._owns:
            self.session.close()


_CONNECT_TIMEOUT_MAX_S = 10.0
"""A gateway that has not accepted a connection in this long is down, not slow."""


def _connect_timeout(timeout_s: float) -> float:
    return min(timeout_s, _CONNECT_TIMEOUT_MAX_S)


def translate(exc: BaseException, timeout_s: float) -> ApiError:
    """The one mapping of a transport's exception (urllib3, requests, the socket) to
    this package's errors.

    No connection at all (refused, unknown host, no answer to connecting) says the
    gateway is down, whichever ID was asked for: :class:`GatewayUnreachableError`. A
    connection that broke or went quiet after the request was sent is that call's
    misfortune: :class:`TransientApiError`. A TLS failure will not heal by retrying.

    >>> translate(ConnectionRefusedError(111, "Connection refused"), 30).message
    'cannot connect to the gateway: [Errno 111] Connection refused'
    >>> type(translate(TimeoutError("timed out"), 30)).__name__
    'TransientApiError'
    """
    causes = list(_chain(exc))
    if any(isinstance(c, ssl.SSLError | urllib3.exceptions.SSLError) for c in causes):
        return FatalApiError(f"TLS verification failed for the gateway: {_reason(exc)}")
    if any(isinstance(c, _NO_CONNECTION) for c in causes):
        return GatewayUnreachableError(f"cannot connect to the gateway: {_reason(exc)}")
    if any(isinstance(c, TimeoutError | urllib3.exceptions.TimeoutError) for c in causes):
        return TransientApiError(f"the gateway did not answer within {timeout_s:g} s")
    return TransientApiError(f"connection failed: {_reason(exc)}")


_NO_CONNECTION = (
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.ConnectTimeoutError,
    requests.exceptions.ConnectTimeout,
    ConnectionRefusedError,
    socket.gaierror,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and what requests and urllib3 wrap."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
        todo += [a for a in current.args if isinstance(a, BaseException)]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)


def _reason(exc: BaseException) -> str:
    """The innermost cause of a connection error, short, without the URL's query."""
    inner = exc
    while (outer := inner.__cause__ or inner.__context__) is not None:
        inner = outer
    return (str(inner) or type(inner).__name__)[:200]


__all__ = ["Answer", "PooledTransport", "SessionTransport", "Transport", "translate"]
