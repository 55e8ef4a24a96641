"""ApimAuth on its own: the token's lifetime, renewal on 1203, one fetch for all threads."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import pytest
from fakes import FakeTime

from extractor.errors import TokenExpiredError, TransientApiError
from extractor.gateway._auth import ApimAuth, signature, token_encryption

PARAMS = {"action": "get", "flowInstId": "1-2"}


class TokenService:
    """Issues tok-1, tok-2, ... and keeps the bodies of the requests."""

    def __init__(self, *, expire: Any = 7200, pause_s: float = 0.0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.expire, self.pause_s = expire, pause_s

    def __call__(self, body: bytes) -> Any:
        self.requests.append(orjson.loads(body))
        time.sleep(self.pause_s)
        return {"accessToken": f"tok-{len(self.requests)}", "expire": self.expire}


def make_auth(service: TokenService, fake_time: FakeTime) -> ApimAuth:
    return ApimAuth("key", "secret", service, clock=fake_time.clock, wall_clock=fake_time.wall)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def headers_of(auth: ApimAuth, payload: bytes | None = None) -> dict[str, str]:
    return auth.send(PARAMS, payload, lambda headers: headers)


def test_the_token_request_and_the_signature_follow_the_documentation(
    fake_time: FakeTime,
) -> None:
    service = TokenService()
    headers = headers_of(make_auth(service, fake_time), b'{"k": 1}')
    stamp = int(fake_time.wall() * 1000)
    assert service.requests == [
        {
            "appKey": "key",
            "encryption": token_encryption("key", stamp, "secret"),
            "timestamp": stamp,
        }
    ]
    assert headers == {
        "apim-accesstoken": "tok-1",
        "apim-timestamp": str(stamp),
        "apim-signature": signature("tok-1", PARAMS, b'{"k": 1}', stamp, "secret"),
    }


@pytest.mark.parametrize(
    ("expire", "reused_until"),
    [
        pytest.param(7200, 6900, id="margin-at-most-5-minutes"),
        pytest.param(100, 90, id="margin-a-tenth-of-its-life"),
        pytest.param("soon", 6900, id="unreadable-expire-is-the-default"),
        pytest.param(0, 0.9, id="at-least-a-second"),
    ],
)
def test_the_token_is_renewed_before_it_expires(
    fake_time: FakeTime, expire: Any, reused_until: float
) -> None:
    service = TokenService(expire=expire)
    auth = make_auth(service, fake_time)
    start = fake_time.now
    assert headers_of(auth)["apim-accesstoken"] == "tok-1"
    fake_time.now = start + reused_until - 0.01
    assert headers_of(auth)["apim-accesstoken"] == "tok-1"
    fake_time.now = start + reused_until
    assert headers_of(auth)["apim-accesstoken"] == "tok-2"


def test_an_expired_token_is_renewed_and_the_call_sent_once_more(fake_time: FakeTime) -> None:
    auth = make_auth(TokenService(), fake_time)
    used: list[str] = []

    def exchange(headers: dict[str, str]) -> str:
        used.append(headers["apim-accesstoken"])
        if len(used) == 1:
            raise TokenExpiredError("expired", api_code=1203)
        return "answer"

    assert auth.send(PARAMS, None, exchange) == "answer"
    assert used == ["tok-1", "tok-2"]


def test_a_fresh_token_refused_again_is_raised(fake_time: FakeTime) -> None:
    service = TokenService()
    auth = make_auth(service, fake_time)
    used: list[str] = []

    def refuse(headers: dict[str, str]) -> None:
        used.append(headers["apim-accesstoken"])
        raise TokenExpiredError("expired", api_code=1203)

    with pytest.raises(TokenExpiredError):
        auth.send(PARAMS, None, refuse)
    assert used == ["tok-1", "tok-2"]
    headers_of(auth)
    assert len(service.requests) == 3, "the refused token is forgotten too"


def test_every_token_request_has_its_own_timestamp(fake_time: FakeTime) -> None:
    service = TokenService(expire=1)
    auth = make_auth(service, fake_time)
    for _ in range(3):
        headers_of(auth)
        fake_time.now += 1
    stamps = [r["timestamp"] for r in service.requests]
    assert len(set(stamps)) == 3
    assert all(
        r["encryption"] == token_encryption("key", r["timestamp"], "secret")
        for r in service.requests
    )


def test_a_malformed_token_answer_is_transient(fake_time: FakeTime) -> None:
    auth = ApimAuth("key", "secret", lambda body: {"expire": 7200}, clock=fake_time.clock)
    with pytest.raises(TransientApiError, match="no accessToken"):
        headers_of(auth)


def test_threads_share_one_token_fetched_once(fake_time: FakeTime) -> None:
    service = TokenService(pause_s=0.05)
    auth = make_auth(service, fake_time)
    start = threading.Barrier(8)
    seen: list[str] = []

    def work() -> None:
        start.wait()
        seen.append(headers_of(auth)["apim-accesstoken"])

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == ["tok-1"] * 8
    assert len(service.requests) == 1


def test_a_renewal_by_another_thread_is_kept(fake_time: FakeTime) -> None:
    """A 1203 for a token another thread has already replaced forgets nothing."""
    service = TokenService()
    auth = make_auth(service, fake_time)

    def expire_tok_1(headers: dict[str, str]) -> str:
        if headers["apim-accesstoken"] == "tok-1":
            raise TokenExpiredError("expired")
        return headers["apim-accesstoken"]

    used: list[str] = []

    def exchange(headers: dict[str, str]) -> str:
        used.append(headers["apim-accesstoken"])
        if len(used) == 1:
            assert auth.send(PARAMS, None, expire_tok_1) == "tok-2"  # another thread
        return expire_tok_1(headers)

    assert auth.send(PARAMS, None, exchange) == "tok-2"
    assert used == ["tok-1", "tok-2"]
    assert len(service.requests) == 2


def test_the_repr_shows_neither_secret_nor_token(fake_time: FakeTime) -> None:
    auth = make_auth(TokenService(), fake_time)
    headers_of(auth)
    assert "secret" not in repr(auth) and "tok-1" not in repr(auth)
