"""EnOS APIM credentials at work: the access token and the signature of each call.

:class:`ApimAuth` keeps a client's one access token (fetched on first use, shared by
every thread, renewed before it expires) and signs each call with it. When the gateway
answers that the token expired (1203), it fetches a new one and sends the call once more.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import orjson

from extractor.errors import TokenExpiredError, TransientApiError

TOKEN_PATH = "/apim-token-service/v2.0/token/get"
_REFRESH_MARGIN = 0.1  # refresh when a tenth of the token's life is left, at most 5 minutes
_REFRESH_MARGIN_MAX_S = 300.0
_DEFAULT_LIFETIME_S = 7200.0

T = TypeVar("T")


def token_encryption(app_key: str, timestamp_ms: int, app_secret: str) -> str:
    """Return the ``encryption`` field of the token request.

    >>> token_encryption("k", 1, "s") == hashlib.sha256(b"k1s").hexdigest()
    True
    """
    return hashlib.sha256(f"{app_key}{timestamp_ms}{app_secret}".encode()).hexdigest()


def params_data(params: Mapping[str, str], body: bytes | str | None = None) -> str:
    """Concatenate query parameters sorted by name, then the exact body.

    The API documentation's own example:

    >>> params_data({"k3": "v3", "k1": "v1", "k2": "v2"}, "B")
    'k1v1k2v2k3v3B'
    """
    text = "".join(f"{k}{params[k]}" for k in sorted(params))
    if body:
        text += body.decode() if isinstance(body, bytes) else body
    return text


def signature(
    token: str,
    params: Mapping[str, str],
    body: bytes | str | None,
    timestamp_ms: int,
    app_secret: str,
) -> str:
    """Return the ``apim-signature`` header of one call."""
    payload = f"{token}{params_data(params, body)}{timestamp_ms}{app_secret}"
    return hashlib.sha256(payload.encode()).hexdigest()


class ApimAuth:
    """One client's access token and the signing of its calls; thread-safe.

    ``request_token`` sends a token request's JSON body to the token service and returns
    the answer's ``data``, raising an :class:`~extractor.errors.ApiError` as any call
    does: the client passes its own sending, so token calls share its transport,
    classification and gateway health.
    """

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        request_token: Callable[[bytes], Any],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._app_key, self._app_secret = app_key, app_secret
        self._request_token = request_token
        self._clock, self._wall = clock, wall_clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0

    def __repr__(self) -> str:
        return f"ApimAuth(app_key={self._app_key!r}, has_token={self._token is not None})"

    def send(
        self,
        params: Mapping[str, str],
        payload: bytes | None,
        exchange: Callable[[dict[str, str]], T],
        *,
        renew: bool = True,
    ) -> T:
        """Sign a call (its query ``params`` and exact ``payload``) and send it through
        ``exchange``, which takes the signing headers. If the gateway says the token
        expired, fetch a new one and send the call once more.

        Raises:
            TokenExpiredError: a freshly fetched token was refused too.
        """
        token = self._current()
        try:
            return exchange(self._headers(token, params, payload))
        except TokenExpiredError:
            with self._lock:
                if self._token == token:  # unless another thread renewed it already
                    self._token = None
            if not renew:
                raise
        return self.send(params, payload, exchange, renew=False)

    def _headers(
        self, token: str, params: Mapping[str, str], payload: bytes | None
    ) -> dict[str, str]:
        stamp = int(self._wall() * 1000)
        return {
            "apim-accesstoken": token,
            "apim-timestamp": str(stamp),
            "apim-signature": signature(token, params, payload, stamp, self._app_secret),
        }

    def _current(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._token, lifetime = self._fetch()
                margin = min(lifetime * _REFRESH_MARGIN, _REFRESH_MARGIN_MAX_S)
                self._refresh_at = self._clock() + lifetime - margin
            return self._token

    def _fetch(self) -> tuple[str, float]:
        # Each token call gets a timestamp of its own: a repeated encryption is refused
        # (1001), so a retried token call must not resend the old one.
        stamp = int(self._wall() * 1000)
        body = {
            "appKey": self._app_key,
            "encryption": token_encryption(self._app_key, stamp, self._app_secret),
            "timestamp": stamp,
        }
        data = self._request_token(orjson.dumps(body))
        if not isinstance(data, Mapping) or not data.get("accessToken"):
            raise TransientApiError("malformed token answer: no accessToken")
        try:
            lifetime = float(data.get("expire", _DEFAULT_LIFETIME_S))
        except (TypeError, ValueError):
            lifetime = _DEFAULT_LIFETIME_S
        return str(data["accessToken"]), lifetime if lifetime >= 1.0 else 1.0


__all__ = ["TOKEN_PATH", "ApimAuth", "params_data", "signature", "token_encryption"]
