"""EnOSClient against requests-mock: signing, tokens, classification, retries, paging."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import requests_mock

from extractor.config import FetchConfig, GatewayConfig
from extractor.errors import (
    ApiError,
    AuthError,
    FatalApiError,
    NotFoundError,
    PermanentApiError,
    ThrottledError,
    TokenExpiredError,
    TransientApiError,
    UnexpectedAnswerError,
)
from extractor.gateway._auth import signature, token_encryption
from extractor.gateway._client import EnOSClient, classify

INSTANCES_PATH = "/batch-processing-service/v2.1/flowInstances"
TIME_PATH = "/batch-processing-service/v2.1/time"
BASE = "https://gateway.test"
SECRET = "s3cr3t-value-never-printed"
TOKEN_URL = f"{BASE}/apim-token-service/v2.0/token/get"
GET_URL = f"{BASE}{INSTANCES_PATH}"
INSTANCE = {"instanceId": "2809-20190808093200", "flowId": 2809}


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


@pytest.fixture
def gateway() -> GatewayConfig:
    return GatewayConfig(
        base_url=BASE, app_key="key-1", app_secret=SECRET, org_id="o1", user_id="u1"
    )


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def mock() -> Any:
    with requests_mock.Mocker() as m:
        m.post(
            TOKEN_URL,
            json={"status": 0, "msg": "SUCCESS", "data": {"accessToken": "tok-1", "expire": 7200}},
        )
        yield m


def make_client(gateway: GatewayConfig, fake_time: FakeTime, **fetch: Any) -> EnOSClient:
    return EnOSClient(
        gateway,
        fetch=FetchConfig(**{"max_attempts": 4, "deadline_s": 60.0, **fetch}),
        session=requests.Session(),
        clock=fake_time.clock,
        wall_clock=fake_time.wall,
        sleep=fake_time.sleep,
    )


def ok(data: Any) -> dict[str, Any]:
    return {"json": {"code": 0, "msg": "OK", "data": data}, "status_code": 200}


def test_every_call_is_signed_as_documented(
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any
) -> None:
    mock.get(GET_URL, **ok(INSTANCE))
    client = make_client(gateway, fake_time)
    assert client.get_flow_instance("2809-20190808093200") == INSTANCE
    token_req, call = mock.request_history
    stamp = json.loads(token_req.text)["timestamp"]
    assert json.loads(token_req.text)["encryption"] == token_encryption("key-1", stamp, SECRET)
    params = dict(parse_qsl(urlsplit(call.url).query))
    assert params == {
        "action": "get",
        "flowInstId": "2809-20190808093200",
        "userId": "u1",
        "orgId": "o1",
    }
    headers = call.headers
    assert headers["apim-accesstoken"] == "tok-1"
    expected = signature("tok-1", params, None, int(headers["apim-timestamp"]), SECRET)
    assert headers["apim-signature"] == expected


def test_post_signature_covers_the_exact_body(
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any
) -> None:
    mock.post(GET_URL, **ok({"flowInsts": [], "count": 0}))
    client = make_client(gateway, fake_time)
    assert client.list_page(from_ms=1767225600000, to_ms=1767311999999, type=1) == []
    call = mock.request_history[-1]
    params = dict(parse_qsl(urlsplit(call.url).query))
    expected = signature("tok-1", params, call.body, int(call.headers["apim-timestamp"]), SECRET)
    assert call.headers["apim-signature"] == expected
    body = json.loads(call.body)
    assert body["fromTriggerTime"] == 1767225600000
    assert body["pagination"]["pageNo"] == 1


def test_token_is_reused_then_refreshed_before_expiry(
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any
) -> None:
    mock.get(GET_URL, **ok(INSTANCE))
    client = make_client(gateway, fake_time)
    client.get_flow_instance("a")
    client.get_flow_instance("b")
    assert mock.call_count == 3  # one token, two calls
    fake_time.now += 7200 - 300 + 1  # inside the refresh margin
    client.get_flow_instance("c")
    assert [r.url for r in mock.request_history].count(TOKEN_URL) == 2


def test_expired_token_is_renewed_once_and_the_call_repeated(
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any
) -> None:
    mock.get(
        GET_URL,
        [
            {"json": {"code": 1203, "msg": "access token expired"}, "status_code": 401},
            ok(INSTANCE),
        ],
    )
    client = make_client(gateway, fake_time)
    assert client.get_flow_instance("x") == INSTANCE
    assert (client.stats.token_expired, client.stats.tokens_fetched) == (1, 2)
    assert [r.url for r in mock.request_history].count(TOKEN_URL) == 2


def test_fresh_tokens_expiring_again_are_retried_then_an_auth_error(
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any
) -> None:
    mock.get(GET_URL, json={"code": 1203, "msg": "expired"}, status_code=401)
    with pytest.raises(AuthError, match="keeps rejecting"):
        make_client(gateway, fake_time, max_attempts=3).get_flow_instance("x")
    calls = [r.url for r in mock.request_history if r.url.startswith(GET_URL)]
    assert len(calls) == 4  # one free renewal, then three attempts


def test_bad_credentials_stop_without_retry(
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any
) -> None:
    mock.post(TOKEN_URL, json={"status": 1002, "msg": "appKey does not exist"})
    with pytest.raises(AuthError, match="1002") as info:
        make_client(gateway, fake_time).get_flow_instance("x")
    assert mock.call_count == 1
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        pytest.param(429, {"code": 429, "msg": "slow down"}, ThrottledError, id="429"),
        pytest.param(503, None, TransientApiError, id="503-no-body"),
        pytest.param(502, {"code": 502, "msg": "bad gateway"}, TransientApiError, id="502"),
        pytest.param(200, {"code": 62109, "msg": "internal"}, TransientApiError, id="62109"),
        pytest.param(
            200, {"code": 62103, "msg": "no privilege"}, PermanentApiError, id="no-privilege"
        ),
        pytest.param(200, {"code": 62101, "msg": "bad org"}, FatalApiError, id="bad-org"),
        pytest.param(401, {"code": 1003, "msg": "bad signature"}, AuthError, id="signature"),
        pytest.param(403, None, AuthError, id="403"),
        pytest.param(401, {"code": 1203}, TokenExpiredError, id="expired"),
        pytest.param(404, None, FatalApiError, id="wrong-url"),
        pytest.param(400, {"code": 62102, "msg": "bad param"}, PermanentApiError, id="400"),
        pytest.param(200, {"code": 77777, "msg": "new"}, PermanentApiError, id="unknown-code"),
        pytest.param(200, ["not", "an", "object"], TransientApiError, id="not-object"),
        pytest.param(200, {"msg": "no code"}, TransientApiError, id="no-code"),
        pytest.param(200, {"stauts": 1003, "msg": "typo"}, AuthError, id="token-typo"),
    ],
)
def test_classification(status: int, body: Any, error: type[ApiError]) -> None:
    with pytest.raises(error) as info:
        classify(status, body)
    assert type(info.value) is error
    assert info.value.http_status == status


def test_transient_errors_are_retried_with_backoff(
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any
) -> None:
    mock.get(GET_URL, [{"status_code": 503}, {"status_code": 200, "text": "{trunc"}, ok(INSTANCE)])
    client = make_client(gateway, fake_time, backoff_base_s=0.5)
    assert client.get_flow_instance("x") == INSTANCE
    assert client.stats.retries == 2
    assert len(fake_time.sleeps) == 2
    assert 0 <= fake_time.sleeps[0] <= 1.0 and 0 <= fake_time.sleeps[1] <= 2.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("3", 3.0, id="seconds"),
        pytest.param("Tue, 14 Nov 2023 22:30:02 GMT", 2.0, id="http-date"),
        pytest.param("100000", 30.0, id="absurd-clamped-to-max-wait"),
    ],
)
def test_retry_after_is_honoured(
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any, header: str, expected: float
) -> None:
    # the fake wall clock reads 1_700_001_000 = Tue, 14 Nov 2023 22:30:00 GMT
    mock.get(GET_URL, [{"status_code": 429, "headers": {"Retry-After": header}}, ok(INSTANCE)])
    client = make_client(gateway, fake_time, deadline_s=100.0)
    client.get_flow_instance("x")
    assert fake_time.sleeps == [pytest.approx(expected)]
    assert client.stats.throttled == 1


@pytest.mark.parametrize("header", ["0", "-5", "soon"], ids=["zero", "negative", "garbage"])
def test_useless_retry_after_falls_back_to_backoff(
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any, header: str
) -> None:
    mock.get(GET_URL, [{"status_code": 429, "headers": {"Retry-After": header}}, ok(INSTANCE)])
    client = make_client(gateway, fake_time, backoff_base_s=0.5)
    client.get_flow_instance("x")
    assert len(fake_time.sleeps) == 1 and 0 <= fake_time.sleeps[0] <= 1.0


def test_attempts_are_bounded(gateway: GatewayConfig, fake_time: FakeTime, mock: Any) -> None:
    mock.get(GET_URL, status_code=500)
    with pytest.raises(TransientApiError) as info:
        make_client(gateway, fake_time, max_attempts=3).get_flow_instance("x")
    assert info.value.attempts == 3
    assert info.value.instance_id == "x"


def test_total_deadline_bounds_retries(
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any
) -> None:
    mock.get(GET_URL, status_code=429, headers={"Retry-After": "20"})
    with pytest.raises(ThrottledError) as info:
        make_client(gateway, fake_time, max_attempts=50, deadline_s=50.0).get_flow_instance("x")
    assert info.value.attempts == 3  # sleeps of 20 + 20; a third would pass 50 s
    assert sum(fake_time.sleeps) == 40


@pytest.mark.parametrize("data", [None, []], ids=["null", "empty-list"])
def test_not_found_is_permanent_and_not_retried(
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any, data: Any
) -> None:
    mock.get(GET_URL, **ok(data))
    with pytest.raises(NotFoundError):
        make_client(gateway, fake_time).get_flow_instance("nope")
    assert mock.call_count == 2


def test_data_as_list_of_one_is_unwrapped(
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any
) -> None:
    mock.get(GET_URL, **ok([INSTANCE]))
    assert make_client(gateway, fake_time).get_flow_instance("x") == INSTANCE


def test_an_unreachable_gateway_at_start_is_fatal_within_the_grace(
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any
) -> None:
    mock.post(TOKEN_URL, exc=ConnectionRefusedError(111, "Connection refused"))
    client = make_client(gateway, fake_time, max_attempts=2)
    started = fake_time.now
    with pytest.raises(FatalApiError, match=r"cannot reach the gateway .*Connection refused"):
        client.get_flow_instance("x")
    assert 15 <= fake_time.now - started <= 30
    assert client.stats.retries == 0, "probes spend no attempts"


def test_an_outage_mid_run_costs_the_id_no_attempts(
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any
) -> None:
    refused = {"exc": ConnectionRefusedError(111, "Connection refused")}
    mock.get(GET_URL, [ok(INSTANCE), *[refused] * 8, ok(INSTANCE)])
    client = make_client(gateway, fake_time, max_attempts=2)
    assert client.get_flow_instance("a") == INSTANCE
    assert client.get_flow_instance("b") == INSTANCE
    assert client.stats.retries == 0
    assert client.health.outages == 1 and client.health.outage_seconds > 10
    assert not client.health.is_down


def test_an_outage_longer_than_the_timeout_stops_the_run(
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any
) -> None:
    mock.get(GET_URL, [ok(INSTANCE), {"exc": ConnectionRefusedError(111, "refused")}])
    client = make_client(gateway, fake_time, outage_timeout_s=60)
    client.get_flow_instance("a")
    with pytest.raises(FatalApiError, match=r"unreachable for 6[0-9] s .* resume"):
        client.get_flow_instance("b")


def test_list_page_sends_the_documented_body(
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any
) -> None:
    records = [{"instanceId": "1-a"}, {"instanceId": "1-b"}]
    mock.post(GET_URL, **ok({"flowInsts": records, "count": 2}))
    client = make_client(gateway, fake_time)
    found = client.list_page(from_ms=10, to_ms=20, type=2, page_no=3, page_size=2, status="1,-1")
    assert found == records
    call = mock.request_history[-1]
    assert dict(parse_qsl(urlsplit(call.url).query)) == {
        "action": "search",
        "userId": "u1",
        "orgId": "o1",
    }
    assert json.loads(call.body) == {
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


def test_list_page_accepts_a_bare_list(
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any
) -> None:
    mock.post(GET_URL, **ok([{"instanceId": "1-a"}]))
    client = make_client(gateway, fake_time)
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
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any, data: Any, named: str
) -> None:
    mock.post(GET_URL, **ok(data))
    client = make_client(gateway, fake_time)
    with pytest.raises(UnexpectedAnswerError, match="unknown shape") as caught:
        client.list_page(from_ms=0, to_ms=1, type=1)
    assert named in caught.value.message
    assert isinstance(caught.value, FatalApiError)


def test_a_refused_sorter_names_the_field(
    gateway: GatewayConfig, fake_time: FakeTime, mock: Any
) -> None:
    mock.post(GET_URL, json={"code": 62102, "msg": "The sorters field parameter is invalid"})
    client = make_client(gateway, fake_time)
    with pytest.raises(FatalApiError, match="sorters field 'triggerTime'") as caught:
        client.list_page(from_ms=0, to_ms=1, type=1)
    assert caught.value.api_code == 62102
    assert len(mock.request_history) == 2  # the token, then one call: no retries


def test_service_path_is_configurable(fake_time: FakeTime, mock: Any) -> None:
    v20 = GatewayConfig(
        base_url=BASE,
        app_key="key-1",
        app_secret=SECRET,
        org_id="o1",
        user_id="u1",
        service_path="/dataflow-batch-service/v2.0/",
    )
    mock.get(f"{BASE}/dataflow-batch-service/v2.0/flowInstances", **ok(INSTANCE))
    assert make_client(v20, fake_time).get_flow_instance("x") == INSTANCE


def test_timezone(gateway: GatewayConfig, fake_time: FakeTime, mock: Any) -> None:
    mock.get(f"{BASE}{TIME_PATH}", **ok({"timezone": "GMT+8"}))
    tz = make_client(gateway, fake_time).get_timezone()
    assert datetime(2026, 1, 1, tzinfo=tz).utcoffset() == timedelta(hours=8)
    assert tz == timezone(timedelta(hours=8))


def test_secrets_stay_out_of_reprs(gateway: GatewayConfig, fake_time: FakeTime, mock: Any) -> None:
    mock.get(GET_URL, **ok(INSTANCE))
    client = make_client(gateway, fake_time)
    client.get_flow_instance("x")
    for text in (repr(gateway), repr(client), repr(client.tokens)):
        assert SECRET not in text and "tok-1" not in text
