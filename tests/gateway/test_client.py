"""EnOSClient on an in-memory transport: signing, tokens, classification, retries and
backoff on a fake clock, Retry-After, gateway outages, paging; then the same client over
an injected ``requests.Session`` with requests-mock."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests
import requests_mock
from fakes import TOKEN_PATH, FakeTime, FakeTransport, Sent, answer, ok, token

from extractor.config import FetchConfig, GatewayConfig
from extractor.errors import (
    ApiError,
    AuthError,
    ConfigError,
    FatalApiError,
    NotFoundError,
    PermanentApiError,
    ThrottledError,
    TokenExpiredError,
    TransientApiError,
    UnexpectedAnswerError,
)
from extractor.gateway._answers import classify
from extractor.gateway._auth import signature, token_encryption
from extractor.gateway._client import EnOSClient
from extractor.gateway._transport import PooledTransport, SessionTransport, translate

INSTANCES = "/batch-processing-service/v2.1/flowInstances"
TIME = "/batch-processing-service/v2.1/time"
BASE = "https://gateway.test"
SECRET = "s3cr3t-value-never-printed"
INSTANCE = {"instanceId": "2809-20190808093200", "flowId": 2809}
REFUSED = translate(ConnectionRefusedError(111, "Connection refused"), 30)


class LongestBackoff(random.Random):
    """Full jitter that always draws its cap, so backoffs can be asserted exactly."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
def gateway() -> GatewayConfig:
    return GatewayConfig(
        base_url=BASE, app_key="key-1", app_secret=SECRET, org_id="o1", user_id="u1"
    )


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport()


@pytest.fixture
def client(gateway: GatewayConfig, transport: FakeTransport, fake_time: FakeTime) -> EnOSClient:
    return make_client(gateway, transport, fake_time)


def make_client(
    gateway: GatewayConfig, transport: FakeTransport, fake_time: FakeTime, **fetch: Any
) -> EnOSClient:
    return EnOSClient(
        gateway,
        transport=transport,
        fetch=FetchConfig(**{"max_attempts": 4, "deadline_s": 60.0, **fetch}),
        clock=fake_time.clock,
        wall_clock=fake_time.wall,
        sleep=fake_time.sleep,
        rng=LongestBackoff(),
    )


def assert_signed(call: Sent, token_value: str = "tok-1") -> None:
    headers = call.headers
    assert headers["apim-accesstoken"] == token_value
    stamp = int(headers["apim-timestamp"])
    assert headers["apim-signature"] == signature(
        token_value, call.params, call.body, stamp, SECRET
    )


# Signing and the access token.


def test_every_call_is_signed_as_documented(
    client: EnOSClient, transport: FakeTransport, fake_time: FakeTime
) -> None:
    transport.script("GET", INSTANCES, ok(INSTANCE))
    assert client.get_flow_instance("2809-20190808093200") == INSTANCE
    token_request, call = transport.sent
    sent = token_request.json()
    assert sent == {
        "appKey": "key-1",
        "encryption": token_encryption("key-1", sent["timestamp"], SECRET),
        "timestamp": int(fake_time.wall() * 1000),
    }
    assert call.params == {
        "action": "get",
        "flowInstId": "2809-20190808093200",
        "userId": "u1",
        "orgId": "o1",
    }
    assert call.body is None and "Content-Type" not in call.headers
    assert_signed(call)


def test_post_signature_covers_the_exact_body(client: EnOSClient, transport: FakeTransport) -> None:
    transport.script("POST", INSTANCES, ok({"flowInsts": [], "count": 0}))
    assert client.list_page(from_ms=1767225600000, to_ms=1767311999999, type=1) == []
    call = transport.sent[-1]
    assert call.headers["Content-Type"] == "application/json"
    assert_signed(call)
    assert call.json()["fromTriggerTime"] == 1767225600000


def test_token_is_reused_then_refreshed_before_expiry(
    client: EnOSClient, transport: FakeTransport, fake_time: FakeTime
) -> None:
    transport.script("GET", INSTANCES, ok(INSTANCE))
    client.get_flow_instance("a")
    client.get_flow_instance("b")
    assert len(transport.to(TOKEN_PATH)) == 1
    fake_time.now += 7200 - 300 + 1  # inside the refresh margin
    client.get_flow_instance("c")
    assert len(transport.to(TOKEN_PATH)) == 2


def test_expired_token_is_renewed_once_and_the_call_repeated(
    client: EnOSClient, transport: FakeTransport
) -> None:
    transport.script("POST", TOKEN_PATH, token("tok-1"), token("tok-2"))
    transport.script("GET", INSTANCES, answer(401, {"code": 1203, "msg": "expired"}), ok(INSTANCE))
    assert client.get_flow_instance("x") == INSTANCE
    first, second = transport.to(INSTANCES)
    assert_signed(first, "tok-1")
    assert_signed(second, "tok-2")
    assert (client.stats.token_expired, client.stats.tokens_fetched, client.stats.retries) == (
        1,
        2,
        0,
    )


def test_fresh_tokens_expiring_again_are_retried_then_an_auth_error(
    gateway: GatewayConfig, transport: FakeTransport, fake_time: FakeTime
) -> None:
    transport.script("GET", INSTANCES, answer(401, {"code": 1203, "msg": "expired"}))
    with pytest.raises(AuthError, match="keeps rejecting"):
        make_client(gateway, transport, fake_time, max_attempts=3).get_flow_instance("x")
    # Each attempt renews once: three attempts of two calls, two backoffs between them.
    assert len(transport.to(INSTANCES)) == 6
    assert len(fake_time.sleeps) == 2


@pytest.mark.parametrize(
    "refusal",
    [
        pytest.param(answer(503), id="503"),
        pytest.param(answer(200, {"status": 1001, "msg": "repeated request"}), id="1001"),
    ],
)
def test_a_retried_token_call_carries_a_fresh_timestamp(
    client: EnOSClient, transport: FakeTransport, refusal: Any
) -> None:
    transport.script("POST", TOKEN_PATH, refusal, token())
    transport.script("GET", INSTANCES, ok(INSTANCE))
    assert client.get_flow_instance("x") == INSTANCE
    first, second = (r.json() for r in transport.to(TOKEN_PATH))
    assert second["timestamp"] > first["timestamp"]
    assert second["encryption"] == token_encryption("key-1", second["timestamp"], SECRET)


def test_bad_credentials_stop_without_retry(client: EnOSClient, transport: FakeTransport) -> None:
    transport.script("POST", TOKEN_PATH, answer(200, {"status": 1002, "msg": "no appKey"}))
    with pytest.raises(AuthError, match="1002") as info:
        client.get_flow_instance("x")
    assert len(transport.sent) == 1
    assert SECRET not in str(info.value)


# What an answer means.


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        pytest.param(429, {"code": 429, "msg": "slow down"}, ThrottledError, id="429"),
        pytest.param(503, None, TransientApiError, id="503-no-body"),
        pytest.param(502, b"<html>Bad Gateway</html>", TransientApiError, id="502-html"),
        pytest.param(502, {"code": 502, "msg": "bad gateway"}, TransientApiError, id="502"),
        pytest.param(200, {"code": 62109, "msg": "internal"}, TransientApiError, id="62109"),
        pytest.param(200, b'{"code": 0, "da', TransientApiError, id="truncated"),
        pytest.param(
            200, {"code": 62103, "msg": "no privilege"}, PermanentApiError, id="no-privilege"
        ),
        pytest.param(200, {"code": 62101, "msg": "bad org"}, FatalApiError, id="bad-org"),
        pytest.param(401, {"code": 1003, "msg": "bad signature"}, AuthError, id="signature"),
        pytest.param(403, None, AuthError, id="403"),
        pytest.param(401, {"code": 1203}, TokenExpiredError, id="expired"),
        pytest.param(404, None, FatalApiError, id="wrong-url"),
        pytest.param(301, b"<html>Moved</html>", FatalApiError, id="redirect"),
        pytest.param(400, {"code": 62102, "msg": "bad param"}, PermanentApiError, id="400"),
        pytest.param(200, {"code": 77777, "msg": "new"}, PermanentApiError, id="unknown-code"),
        pytest.param(200, ["not", "an", "object"], TransientApiError, id="not-object"),
        pytest.param(200, {"msg": "no code"}, TransientApiError, id="no-code"),
        pytest.param(200, {"stauts": 1003, "msg": "typo"}, AuthError, id="token-typo"),
    ],
)
def test_classification(status: int, body: Any, error: type[ApiError]) -> None:
    with pytest.raises(error) as info:
        classify(answer(status, body))
    assert type(info.value) is error
    assert info.value.http_status == status


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(answer(429, {"code": 429, "msg": "slow down"}), id="429"),
        pytest.param(answer(500), id="500"),
        pytest.param(answer(503, b"Service Unavailable"), id="503"),
        pytest.param(answer(200, {"code": 62109, "msg": "internal"}), id="62109"),
        pytest.param(answer(200, {"code": 1005, "msg": "internal"}), id="1005"),
        pytest.param(answer(200, b"{trunc"), id="malformed"),
        pytest.param(translate(TimeoutError("timed out"), 30), id="read-timeout"),
    ],
)
def test_transient_failures_are_retried(
    client: EnOSClient, transport: FakeTransport, failure: Any
) -> None:
    transport.script("GET", INSTANCES, failure, ok(INSTANCE))
    assert client.get_flow_instance("x") == INSTANCE
    assert len(transport.to(INSTANCES)) == 2 and client.stats.retries == 1


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        pytest.param(answer(200, {"code": 62103}), PermanentApiError, id="no-privilege"),
        pytest.param(answer(200, {"code": 62102}), PermanentApiError, id="invalid-parameter"),
        pytest.param(answer(200, {"code": 62101}), FatalApiError, id="bad-org"),
        pytest.param(answer(200, {"code": 77777}), PermanentApiError, id="unknown-code"),
        pytest.param(answer(404), FatalApiError, id="wrong-url"),
        pytest.param(answer(302, headers={"Location": "https://x"}), FatalApiError, id="redirect"),
        pytest.param(answer(400, {"code": 400}), PermanentApiError, id="bad-request"),
        pytest.param(answer(403), AuthError, id="ip-not-allowed"),
    ],
)
def test_permanent_failures_are_not_retried(
    client: EnOSClient, transport: FakeTransport, failure: Any, error: type[ApiError]
) -> None:
    transport.script("GET", INSTANCES, failure, ok(INSTANCE))
    with pytest.raises(error) as info:
        client.get_flow_instance("x")
    assert type(info.value) is error
    assert (info.value.attempts, info.value.instance_id) == (1, "x")
    assert len(transport.to(INSTANCES)) == 1 and client.stats.retries == 0


# Retries, backoff and Retry-After, on the fake clock.


def test_backoff_doubles_up_to_its_longest_wait(
    gateway: GatewayConfig, transport: FakeTransport, fake_time: FakeTime
) -> None:
    transport.script("GET", INSTANCES, *[answer(503)] * 5, ok(INSTANCE))
    policy = {"max_attempts": 6, "backoff_base_s": 0.5, "backoff_max_s": 5.0}
    client = make_client(gateway, transport, fake_time, **policy)
    assert client.get_flow_instance("x") == INSTANCE
    assert fake_time.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]  # the caps of full jitter
    assert client.stats.retries == 5


def test_backoff_is_jittered_below_its_cap(
    gateway: GatewayConfig, transport: FakeTransport, fake_time: FakeTime
) -> None:
    transport.script("GET", INSTANCES, *[answer(503)] * 3, ok(INSTANCE))
    client = EnOSClient(
        gateway,
        transport=transport,
        fetch=FetchConfig(backoff_base_s=0.5),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        rng=random.Random(7),
    )
    client.get_flow_instance("x")
    caps = [1.0, 2.0, 4.0]
    assert all(0 <= s <= cap for s, cap in zip(fake_time.sleeps, caps, strict=True))
    assert fake_time.sleeps != caps


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("3", 3.0, id="seconds"),
        pytest.param("2.5", 2.5, id="fraction"),
        pytest.param("Tue, 14 Nov 2023 22:30:02 GMT", 2.0, id="http-date"),
        pytest.param("100000", 30.0, id="absurd-clamped-to-max-wait"),
        pytest.param("Fri, 31 Dec 9999 23:59:59 GMT", 30.0, id="far-date-clamped"),
    ],
)
@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(
    client: EnOSClient,
    transport: FakeTransport,
    fake_time: FakeTime,
    header: str,
    expected: float,
    status: int,
) -> None:
    # the fake wall clock reads 1_700_001_000 = Tue, 14 Nov 2023 22:30:00 GMT
    transport.script(
        "GET", INSTANCES, answer(status, headers={"Retry-After": header}), ok(INSTANCE)
    )
    client.get_flow_instance("x")
    assert fake_time.sleeps == [pytest.approx(expected)]
    assert client.stats.throttled == (status == 429)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Retry-After": "0"}, id="zero"),
        pytest.param({"Retry-After": "-5"}, id="negative"),
        pytest.param({"Retry-After": "soon"}, id="garbage"),
        pytest.param({"Retry-After": "Tue, 14 Nov 2023 22:29:00 GMT"}, id="date-past"),
        pytest.param({"Retry-After": "Tue, 14 Nov 2023 22:30:02"}, id="date-without-zone"),
        pytest.param({"Retry-After": "nan"}, id="nan"),
        pytest.param({}, id="none"),
    ],
)
def test_useless_retry_after_falls_back_to_backoff(
    gateway: GatewayConfig, transport: FakeTransport, fake_time: FakeTime, headers: dict[str, str]
) -> None:
    transport.script("GET", INSTANCES, answer(429, headers=headers), ok(INSTANCE))
    make_client(gateway, transport, fake_time, backoff_base_s=0.5).get_flow_instance("x")
    assert fake_time.sleeps == [1.0]


def test_attempts_are_bounded(
    gateway: GatewayConfig, transport: FakeTransport, fake_time: FakeTime
) -> None:
    transport.script("GET", INSTANCES, answer(500))
    with pytest.raises(TransientApiError) as info:
        make_client(gateway, transport, fake_time, max_attempts=3).get_flow_instance("x")
    assert info.value.attempts == 3
    assert info.value.instance_id == "x"
    assert len(transport.to(INSTANCES)) == 3


def test_total_deadline_bounds_retries(
    gateway: GatewayConfig, transport: FakeTransport, fake_time: FakeTime
) -> None:
    transport.script("GET", INSTANCES, answer(429, headers={"Retry-After": "20"}))
    client = make_client(gateway, transport, fake_time, max_attempts=50, deadline_s=50.0)
    with pytest.raises(ThrottledError) as info:
        client.get_flow_instance("x")
    assert info.value.attempts == 3  # sleeps of 20 + 20; a third would pass 50 s
    assert fake_time.sleeps == [20, 20]


# Gateway outages: no answer at all costs no ID an attempt.


def test_an_unreachable_gateway_at_start_is_fatal_within_the_grace(
    gateway: GatewayConfig, transport: FakeTransport, fake_time: FakeTime
) -> None:
    transport.script("POST", TOKEN_PATH, REFUSED)
    client = make_client(gateway, transport, fake_time, max_attempts=2)
    started = fake_time.now
    with pytest.raises(FatalApiError, match=r"cannot reach the gateway .*Connection refused"):
        client.get_flow_instance("x")
    assert 15 <= fake_time.now - started <= 30
    assert client.stats.retries == 0, "probes spend no attempts"


def test_an_outage_mid_run_costs_the_id_no_attempts(
    gateway: GatewayConfig, transport: FakeTransport, fake_time: FakeTime
) -> None:
    transport.script("GET", INSTANCES, ok(INSTANCE), *[REFUSED] * 8, ok(INSTANCE))
    client = make_client(gateway, transport, fake_time, max_attempts=2)
    assert client.get_flow_instance("a") == INSTANCE
    assert client.get_flow_instance("b") == INSTANCE
    assert client.stats.retries == 0
    assert client.health.outages == 1 and client.health.outage_seconds > 10
    assert not client.health.is_down


def test_an_outage_longer_than_the_timeout_stops_the_run(
    gateway: GatewayConfig, transport: FakeTransport, fake_time: FakeTime
) -> None:
    transport.script("GET", INSTANCES, ok(INSTANCE), REFUSED)
    client = make_client(gateway, transport, fake_time, outage_timeout_s=60)
    client.get_flow_instance("a")
    with pytest.raises(FatalApiError, match=r"unreachable for 6[0-9] s .* resume"):
        client.get_flow_instance("b")


# The calls.


@pytest.mark.parametrize("data", [None, []], ids=["null", "empty-list"])
def test_not_found_is_permanent_and_not_retried(
    client: EnOSClient, transport: FakeTransport, data: Any
) -> None:
    transport.script("GET", INSTANCES, ok(data))
    with pytest.raises(NotFoundError):
        client.get_flow_instance("nope")
    assert len(transport.to(INSTANCES)) == 1


def test_data_as_list_of_one_is_unwrapped(client: EnOSClient, transport: FakeTransport) -> None:
    transport.script("GET", INSTANCES, ok([INSTANCE]))
    assert client.get_flow_instance("x") == INSTANCE


def test_list_page_sends_the_documented_body(client: EnOSClient, transport: FakeTransport) -> None:
    records = [{"instanceId": "1-a"}, {"instanceId": "1-b"}]
    transport.script("POST", INSTANCES, ok({"flowInsts": records, "count": 2}))
    found = client.list_page(from_ms=10, to_ms=20, type=2, page_no=3, page_size=2, status="1,-1")
    assert found == records
    call = transport.sent[-1]
    assert call.params == {"action": "search", "userId": "u1", "orgId": "o1"}
    assert call.json() == {
        "type": 2,
        "expression": "",
        "owner": "",
        "fromTriggerTime": 10,
        "toTriggerTime": 20,
        "status": "1,-1",
        "pagination": {
            "pageNo": 3,
            "pageSize": 2,
            "sorters": [{"field": "triggerTime", "order": "ASC"}],
        },
    }


def test_list_pages_follow_one_another(client: EnOSClient, transport: FakeTransport) -> None:
    pages = [[{"instanceId": f"1-{n}"} for n in range(k, k + 2)] for k in (0, 2)]
    transport.script("POST", INSTANCES, *(ok({"flowInsts": p, "count": 2}) for p in pages))
    got = [client.list_page(from_ms=0, to_ms=1, type=1, page_no=n, page_size=2) for n in (1, 2)]
    assert got == pages
    assert [r.json()["pagination"]["pageNo"] for r in transport.to(INSTANCES)] == [1, 2]


def test_list_page_accepts_a_bare_list(client: EnOSClient, transport: FakeTransport) -> None:
    transport.script("POST", INSTANCES, ok([{"instanceId": "1-a"}]))
    assert client.list_page(from_ms=0, to_ms=1, type=1) == [{"instanceId": "1-a"}]


@pytest.mark.parametrize(
    ("data", "named"),
    [
        pytest.param({"data": [], "total": 0}, "keys ['data', 'total']", id="old-reading"),
        pytest.param(None, "null", id="null"),
        pytest.param({"flowInsts": None, "count": 0}, "flowInsts as null", id="flowinsts-null"),
        pytest.param({"flowInsts": "[]"}, "flowInsts as a str", id="flowinsts-text"),
        pytest.param([1, 2], "a list of int", id="list-of-numbers"),
        pytest.param("OK", "a str", id="text"),
    ],
)
def test_an_unknown_list_answer_fails_loudly(
    client: EnOSClient, transport: FakeTransport, data: Any, named: str
) -> None:
    transport.script("POST", INSTANCES, ok(data))
    with pytest.raises(UnexpectedAnswerError, match="unknown shape") as caught:
        client.list_page(from_ms=0, to_ms=1, type=1)
    assert named in caught.value.message
    assert isinstance(caught.value, FatalApiError)


def test_a_refused_sorter_names_the_field(client: EnOSClient, transport: FakeTransport) -> None:
    refusal = answer(200, {"code": 62102, "msg": "The sorters field parameter is invalid"})
    transport.script("POST", INSTANCES, refusal)
    with pytest.raises(FatalApiError, match="sorters field 'triggerTime'") as caught:
        client.list_page(from_ms=0, to_ms=1, type=1)
    assert caught.value.api_code == 62102
    assert len(transport.to(INSTANCES)) == 1


def test_service_path_is_configurable(transport: FakeTransport, fake_time: FakeTime) -> None:
    v20 = GatewayConfig(
        base_url=BASE,
        app_key="key-1",
        app_secret=SECRET,
        org_id="o1",
        user_id="u1",
        service_path="/dataflow-batch-service/v2.0/",
    )
    transport.script("GET", "/dataflow-batch-service/v2.0/flowInstances", ok(INSTANCE))
    assert make_client(v20, transport, fake_time).get_flow_instance("x") == INSTANCE


def test_timezone(client: EnOSClient, transport: FakeTransport) -> None:
    transport.script("GET", TIME, ok({"timezone": "GMT+8"}))
    tz = client.get_timezone()
    assert datetime(2026, 1, 1, tzinfo=tz).utcoffset() == timedelta(hours=8)
    assert tz == timezone(timedelta(hours=8))
    assert transport.sent[-1].params == {"action": "getTimeZone"}


def test_secrets_stay_out_of_reprs(
    gateway: GatewayConfig, client: EnOSClient, transport: FakeTransport
) -> None:
    transport.script("GET", INSTANCES, ok(INSTANCE))
    client.get_flow_instance("x")
    for text in (repr(gateway), repr(client), repr(client.auth)):
        assert SECRET not in text and "tok-1" not in text


# Choosing the transport.


def test_the_client_closes_its_transport(client: EnOSClient, transport: FakeTransport) -> None:
    with client:
        pass
    assert transport.closed


def test_a_transport_and_a_session_together_are_refused(gateway: GatewayConfig) -> None:
    with pytest.raises(ConfigError, match="not both"):
        EnOSClient(gateway, transport=FakeTransport(), session=requests.Session())


def test_the_default_transport_is_pooled_unless_a_proxy_or_session_is_given(
    gateway: GatewayConfig,
) -> None:
    with EnOSClient(gateway) as pooled:
        assert isinstance(pooled.transport, PooledTransport)
    session = requests.Session()
    with EnOSClient(gateway, session=session) as given:
        assert isinstance(given.transport, SessionTransport)
        assert given.transport.session is session
    proxied = GatewayConfig(
        base_url=BASE,
        app_key="k",
        app_secret="s",
        org_id="o",
        user_id="u",
        proxies={"https": "http://proxy.test:3128"},
    )
    with EnOSClient(proxied) as via_proxy:
        assert isinstance(via_proxy.transport, SessionTransport)
        assert via_proxy.transport.session.proxies == {"https": "http://proxy.test:3128"}


# The same client over a requests.Session, as users with their own sessions run it.


@pytest.fixture
def mock() -> Any:
    with requests_mock.Mocker() as m:
        m.post(f"{BASE}{TOKEN_PATH}", json={"status": 0, "data": {"accessToken": "tok-1"}})
        yield m


def session_client(gateway: GatewayConfig, fake_time: FakeTime) -> EnOSClient:
    return EnOSClient(
        gateway,
        session=requests.Session(),
        fetch=FetchConfig(max_attempts=3),
        clock=fake_time.clock,
        wall_clock=fake_time.wall,
        sleep=fake_time.sleep,
    )


def test_a_session_carries_signed_calls_and_their_retries(
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any
) -> None:
    mock.post(
        f"{BASE}{INSTANCES}",
        [
            {"status_code": 429, "headers": {"Retry-After": "2"}},
            {"json": {"code": 0, "data": {"flowInsts": [INSTANCE], "count": 1}}},
        ],
    )
    client = session_client(gateway, fake_time)
    assert client.list_page(from_ms=0, to_ms=1, type=1) == [INSTANCE]
    assert fake_time.sleeps == [2.0]
    call = mock.request_history[-1]
    sent = Sent(call.method, call.url, call.headers, call.body)
    assert_signed(sent)
    assert json.loads(call.body)["type"] == 1


def test_a_session_maps_connection_failures_the_same_way(
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any
) -> None:
    mock.get(
        f"{BASE}{INSTANCES}",
        [
            {"exc": requests.exceptions.ConnectionError("Connection aborted")},
            {"json": {"code": 0, "data": INSTANCE}},
        ],
    )
    client = session_client(gateway, fake_time)
    assert client.get_flow_instance("x") == INSTANCE
    assert client.stats.retries == 1 and client.stats.errors == {"TransientApiError": 1}
