"""In-memory stand-ins for the client's seams: a transport that answers from a script and
records what was sent, and clocks that move only when the client sleeps."""

from __future__ import annotations

import copy
import json
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from extractor.errors import ApiError
from extractor.gateway._transport import Answer

TOKEN_PATH = "/apim-token-service/v2.0/token/get"


def answer(status: int = 200, body: Any = None, headers: Mapping[str, str] | None = None) -> Answer:
    """An answer whose body is ``body`` as JSON (bytes are sent as they are)."""
    content = (
        body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    )
    return Answer(status, content, dict(headers or {}))


def ok(data: Any) -> Answer:
    """A successful answer of the Batch Processing Service carrying ``data``."""
    return answer(200, {"code": 0, "msg": "OK", "data": data})


def token(value: str = "tok-1", expire: int = 7200) -> Answer:
    """A successful answer of the token service."""
    return answer(
        200, {"status": 0, "msg": "SUCCESS", "data": {"accessToken": value, "expire": expire}}
    )


@dataclass(frozen=True)
class Sent:
    """One request as the transport received it."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query))

    def json(self) -> Any:
        assert self.body is not None
        return json.loads(self.body)


Script = Answer | ApiError


class FakeTransport:
    """Answers each request from a script kept per (method, path); the last entry of a
    script repeats. An entry that is an exception is raised, as a transport raises an
    :class:`ApiError` for anything short of an answer. The token service answers
    :func:`token` unless scripted otherwise."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.closed = False
        self._scripts: dict[tuple[str, str], deque[Script]] = {
            ("POST", TOKEN_PATH): deque([token()])
        }
        self._lock = threading.Lock()

    def script(self, method: str, path: str, *entries: Script) -> None:
        """Answer requests to ``path`` with ``entries``, in order, then the last again."""
        self._scripts[(method, path)] = deque(entries)

    def send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> Answer:
        request = Sent(method, url, dict(headers), body)
        with self._lock:
            self.sent.append(request)
            entries = self._scripts.get((method, request.path))
            if not entries:
                return answer(404)
            entry = entries.popleft() if len(entries) > 1 else entries[0]
        if isinstance(entry, ApiError):
            raise copy.copy(entry)  # a fresh exception each time, as a transport raises
        return entry

    def close(self) -> None:
        self.closed = True

    def to(self, path: str) -> list[Sent]:
        """The requests sent to ``path``."""
        return [r for r in self.sent if r.path == path]


class FakeTime:
    """Monotonic and wall clocks that only move when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_700_000_000.0 + self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
