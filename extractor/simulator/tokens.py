"""The gateway's side of APIM authentication: issuing tokens and checking signatures.

Token: ``E = sha256_hex(appKey + str(timestamp) + appSecret)``. Call signature:
``S = sha256_hex(token + paramsData + str(timestamp) + appSecret)``, where
``paramsData`` is every query parameter sorted by name, written ``name1value1...``,
followed by the raw request body.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

CLOCK_SKEW_MS = 5 * 60 * 1000
"""How far a request's timestamp may be from the server's clock."""
_FORGET_S = 86400.0
_HEADERS = ("apim-accesstoken", "apim-timestamp", "apim-signature")


@dataclass(frozen=True, kw_only=True)
class SimCredentials:
    """The one application the simulator knows, and the user it serves."""

    app_key: str = "demo-app-key"
    app_secret: str = field(default="demo-app-secret", repr=False)
    org_id: str = "demo-org"
    user_id: str = "demo-user"


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a request was refused: the body code and message (HTTP 200 or 401)."""

    code: int
    message: str


def params_data(query: Iterable[tuple[str, str]], body: bytes = b"") -> bytes:
    """Return ``paramsData`` for a signature: sorted ``name+value`` pairs, then the body.

    >>> params_data([("k3", "v3"), ("k1", "v1"), ("k2", "v2")], b"B")
    b'k1v1k2v2k3v3B'
    """
    pairs = sorted(query, key=lambda pair: pair[0])
    return "".join(name + value for name, value in pairs).encode() + body


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class TokenService:
    """Issues access tokens and checks the signature of every other call."""

    def __init__(self, credentials: SimCredentials, ttl_s: float) -> None:
        self.credentials = credentials
        self.ttl_s = ttl_s
        self._tokens: dict[str, float] = {}
        self._current: str | None = None
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self, body: object) -> tuple[str, int] | Rejection:
        """Answer a token request body: ``(token, seconds left)`` or a rejection."""
        if not isinstance(body, dict):
            return Rejection(1004, "invalid parameters: the body must be a JSON object")
        app_key, encryption, stamp = (body.get(k) for k in ("appKey", "encryption", "timestamp"))
        if any(v is None or v == "" for v in (app_key, encryption, stamp)):
            return Rejection(1202, "parameter is empty: appKey, encryption and timestamp")
        if not isinstance(app_key, str) or not isinstance(encryption, str):
            return Rejection(1004, "invalid parameters: appKey and encryption are strings")
        try:
            stamp_ms = int(str(stamp))
        except ValueError:
            return Rejection(1004, "invalid parameters: timestamp is not epoch milliseconds")
        if abs(_now_ms() - stamp_ms) > CLOCK_SKEW_MS:
            return Rejection(1004, "invalid parameters: timestamp is more than 5 minutes off")
        secret = self.credentials.app_secret
        if app_key != self.credentials.app_key:
            return Rejection(1002, "appKey does not exist")
        if encryption != hashlib.sha256(f"{app_key}{stamp}{secret}".encode()).hexdigest():
            return Rejection(1003, "invalid encryption")
        now = time.monotonic()
        with self._lock:
            self._seen = {e: t for e, t in self._seen.items() if now - t < 600}
            if encryption in self._seen:
                return Rejection(1001, "repeated request: this encryption was already used")
            self._seen[encryption] = now
            token = self._current
            if token is None or self._tokens.get(token, 0) <= now:
                token = secrets.token_hex(16)
                # Expired tokens stay known for a day, so they keep answering 1203.
                self._tokens = {t: e for t, e in self._tokens.items() if e > now - _FORGET_S}
                self._tokens[token] = now + self.ttl_s
                self._current = token
            return token, max(0, int(self._tokens[token] - now))

    def expire_all(self) -> None:
        """Make every token issued so far expired, as of now."""
        now = time.monotonic()
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, now)

    def check(
        self, headers: Mapping[str, str], query: Iterable[tuple[str, str]], body: bytes
    ) -> Rejection | None:
        """Check one call's APIM headers (names in lower case); return None when it may go on."""
        token, stamp, signature = (headers.get(name) for name in _HEADERS)
        if not token or not stamp or not signature:
            return Rejection(
                1202, "parameter is empty: apim-accesstoken, apim-timestamp, apim-signature"
            )
        expires = self._tokens.get(token)
        if expires is None:
            return Rejection(1002, "access token does not exist")
        if expires <= time.monotonic():
            return Rejection(1203, "access token expired")
        if not stamp.isdigit() or abs(_now_ms() - int(stamp)) > CLOCK_SKEW_MS:
            return Rejection(1004, "invalid parameters: apim-timestamp is not current epoch ms")
        secret = self.credentials.app_secret.encode()
        signed = token.encode() + params_data(query, body) + stamp.encode() + secret
        expected = hashlib.sha256(signed).hexdigest()
        if not secrets.compare_digest(signature, expected):
            return Rejection(1003, "invalid signature")
        return None
