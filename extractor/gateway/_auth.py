"""EnOS APIM credentials -> request headers: the access token and the request signature."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

TOKEN_PATH = "/apim-token-service/v2.0/token/get"
_REFRESH_MARGIN = 0.1  # refresh when a tenth of the token's life is left, at most 5 minutes
_REFRESH_MARGIN_MAX_S = 300.0


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


@dataclass
class Token:
    """An access token and when to stop using it (``time.monotonic`` seconds)."""

    value: str = field(repr=False)
    refresh_at: float


class TokenCache:
    """Holds the current token; thread-safe, fetched lazily, refreshed before expiry.

    ``fetch`` asks the gateway for a token and returns ``(token, lifetime_s)``.
    """

    def __init__(
        self,
        fetch: Callable[[], tuple[str, float]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Token | None = None

    def get(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._token.refresh_at:
                value, lifetime = self._fetch()
                margin = min(lifetime * _REFRESH_MARGIN, _REFRESH_MARGIN_MAX_S)
                self._token = Token(value, self._clock() + lifetime - margin)
            return self._token.value

    def invalidate(self, value: str) -> None:
        """Forget ``value`` (expired); a token another thread already renewed is kept."""
        with self._lock:
            if self._token is not None and self._token.value == value:
                self._token = None

    def __repr__(self) -> str:
        return f"TokenCache(has_token={self._token is not None})"
