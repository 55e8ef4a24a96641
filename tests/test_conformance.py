"""The conformance kit: the documentation's own request and return samples
(``tests/fixtures/docs/``) against the client, the flattener and the simulator.

A test that only agrees with our own simulator proves little; these hold all three to
what the documentation prints: the client and the flattener read every return sample,
the simulator answers in the samples' shapes field by field, and the client's requests
carry the fields the request samples carry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import requests_mock
from simulated import gateway_config

from extractor import EnOSClient, FetchConfig, GatewayConfig, flatten
from extractor.gateway._auth import token_encryption
from extractor.simulator import QUIRKS, Population, SimCredentials, Simulator

DOCS = Path(__file__).parent / "fixtures" / "docs"
BASE = "https://gateway.test"
TOKEN_URL = f"{BASE}/apim-token-service/v2.0/token/get"
CREDS = SimCredentials()


def sample(name: str) -> Any:
    return json.loads((DOCS / f"{name}.json").read_text(encoding="utf-8"))


def shape(value: Any) -> Any:
    """What a JSON value looks like, without its values: the keys of objects (JSON text
    in ``graph`` and ``parameters`` decoded) and the JSON type of lists and scalars.
    (The samples' lists are mostly empty; elements are compared on their own.)"""
    if isinstance(value, dict):
        return {k: shape(_decoded(k, v)) for k, v in value.items()}
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else "string"


def _decoded(key: str, value: Any) -> Any:
    if key in ("graph", "parameters") and isinstance(value, str):
        return json.loads(value)
    return value


def client_on(mock: requests_mock.Mocker) -> EnOSClient:
    gateway = GatewayConfig(
        base_url=BASE, app_key="k", app_secret="s", org_id="yourOrgId", user_id="yourUserId"
    )
    return EnOSClient(gateway, fetch=FetchConfig(max_attempts=1), session=requests.Session())


@pytest.fixture
def mock() -> Iterator[requests_mock.Mocker]:
    with requests_mock.Mocker() as m:
        m.post(
            f"{BASE}/apim-token-service/v2.0/token/get", json=sample("token_get.response.stauts")
        )
        yield m


# The client and the flattener read every return sample.


@pytest.mark.parametrize("token", ["token_get.response.stauts", "token_refresh.response"])
def test_the_client_reads_the_token_samples(mock: requests_mock.Mocker, token: str) -> None:
    mock.post(TOKEN_URL, json=sample(token))
    mock.get(f"{BASE}/batch-processing-service/v2.1/time", json=sample("get_time_zone.response"))
    client = client_on(mock)
    assert datetime(2026, 1, 1, tzinfo=client.get_timezone()).utcoffset().total_seconds() == 28800
    assert (
        mock.request_history[-1].headers["apim-accesstoken"] == sample(token)["data"]["accessToken"]
    )


@pytest.mark.parametrize("answer", ["get_flow_instance.response", "../seed_get_response"])
def test_get_flow_instance_samples_read_and_flatten(
    mock: requests_mock.Mocker, answer: str
) -> None:
    body = sample(answer)
    mock.get(f"{BASE}/batch-processing-service/v2.1/flowInstances", json=body)
    record = client_on(mock).get_flow_instance(body["data"]["instanceId"])
    frames = flatten([record], source_tz="GMT+8")
    assert frames.failures.empty
    instance = frames.instances.iloc[0]
    assert instance["instance_id"] == body["data"]["instanceId"]
    assert instance["cal_dt"] is not None and instance["alert_mode"] == 3
    tasks = frames.tasks
    graph = json.loads(body["data"]["graph"])
    assert tasks["task_inst_id"].tolist() == [t["taskInstId"] for t in graph["tasks"]]
    assert tasks["task_name"].tolist() == [t["taskName"] for t in graph["tasks"]]
    assert tasks["status"].tolist() == [t["status"] for t in graph["tasks"]]


def test_list_flow_instances_sample_reads_and_flattens(mock: requests_mock.Mocker) -> None:
    body = sample("list_flow_instances.response")
    mock.post(f"{BASE}/batch-processing-service/v2.1/flowInstances", json=body)
    records = client_on(mock).list_page(from_ms=0, to_ms=1, type=1, page_size=10)
    assert [r["instanceId"] for r in records] == ["2809-20190812080700", "2957-20190812075600"]
    frames = flatten(records, source_tz="GMT+8")
    assert frames.failures.empty and frames.quarantine.empty
    instances = frames.instances.set_index("instance_id")
    assert instances["is_cancelled"].tolist() == [False, False]
    assert instances["cal_dt"].isna().all(), "the list answer carries no calDt"
    assert instances["alert_mode"].tolist() == [3, 3], "read from the graph"
    assert instances.loc["2957-20190812075600", "owners"] == ";yourOwners;"
    tasks = frames.tasks.set_index("task_inst_id")
    assert tasks.loc["104890-20190812080700", "task_name"] == "tass"
    assert tasks.loc["105040-20190812075600", "task_id"] == 105040
    assert tasks["status"].isna().all(), "list pages carry no task status"
    assert frames.to_arrow()["flow_instances"].column("extra_json").null_count == 2


def test_the_empty_list_sample_is_no_instances(mock: requests_mock.Mocker) -> None:
    envelope = {"code": 0, "msg": "OK", "data": sample("list_flow_instances.struct.flow_instances")}
    mock.post(f"{BASE}/batch-processing-service/v2.1/flowInstances", json=envelope)
    assert client_on(mock).list_page(from_ms=0, to_ms=1, type=1) == []


# The client's requests carry the request samples' fields.


def _sent(call: Any) -> dict[str, Any]:
    return {
        "method": call.method,
        "path": urlsplit(call.url).path,
        "query": dict(parse_qsl(urlsplit(call.url).query)),
        "body": json.loads(call.body) if call.body else None,
    }


def test_get_flow_instance_request_matches_the_sample(mock: requests_mock.Mocker) -> None:
    documented = sample("get_flow_instance.request")
    mock.get(
        f"{BASE}/batch-processing-service/v2.1/flowInstances",
        json=sample("get_flow_instance.response"),
    )
    client_on(mock).get_flow_instance(documented["query"]["flowInstId"])
    assert _sent(mock.request_history[-1]) == documented


def test_list_flow_instances_request_has_the_sample_fields(mock: requests_mock.Mocker) -> None:
    documented = sample("list_flow_instances.request")
    mock.post(
        f"{BASE}/batch-processing-service/v2.1/flowInstances",
        json=sample("list_flow_instances.response"),
    )
    body = documented["body"]
    client_on(mock).list_page(
        from_ms=body["fromTriggerTime"], to_ms=body["toTriggerTime"], type=body["type"]
    )
    sent = _sent(mock.request_history[-1])
    assert {k: sent[k] for k in ("method", "path", "query")} == {
        k: documented[k] for k in ("method", "path", "query")
    }
    assert shape(sent["body"]).keys() == shape(body).keys()
    assert shape(sent["body"]["pagination"]) == shape(body["pagination"])
    assert sent["body"]["pagination"]["pageNo"] == 1
    # The parameter table types status as a String of comma-separated codes; the
    # request sample prints a bare 1. The string is what the table asks for.
    assert sent["body"]["status"] == ""
    assert {k: v for k, v in shape(sent["body"]).items() if k != "status"} == {
        k: v for k, v in shape(body).items() if k != "status"
    }


def test_token_request_matches_the_sample(mock: requests_mock.Mocker) -> None:
    mock.get(f"{BASE}/batch-processing-service/v2.1/time", json=sample("get_time_zone.response"))
    client_on(mock).get_timezone()
    token_call, time_call = mock.request_history
    assert shape(_sent(token_call)) == shape(sample("token_get.request"))
    assert _sent(time_call) == sample("get_time_zone.request")


# The simulator answers in the samples' shapes.


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    population = Population(
        seed=5, flows=30, start=datetime(2026, 1, 1), end=datetime(2026, 1, 3), timezone="UTC"
    )
    with Simulator(population, credentials=CREDS) as server:
        yield server


def _plain(population: Population) -> str:
    """A finished instance with none of the quirks, so it looks like the samples."""
    return population.find(status=1, lacking=QUIRKS)


def _client(sim: Simulator) -> EnOSClient:
    gateway = gateway_config(sim.url)
    return EnOSClient(gateway)


def _call(sim: Simulator, documented: dict[str, Any], **changes: Any) -> Any:
    """Send a request sample to the simulator, signed, with our identity."""
    client = _client(sim)
    query = {**documented["query"], "userId": CREDS.user_id, "orgId": CREDS.org_id}
    query.update(changes.pop("query", {}))
    body = documented["body"]
    if body is not None:
        body = {**body, **changes}
    with client:
        return client._call(documented["method"], documented["path"], query, body)


def test_simulated_get_flow_instance_has_the_sample_shape(sim: Simulator) -> None:
    instance_id = _plain(sim.population)
    data = _call(sim, sample("get_flow_instance.request"), query={"flowInstId": instance_id})
    assert shape(data) == shape(sample("get_flow_instance.response")["data"])
    graph = json.loads(data["graph"])
    documented_graph = json.loads(sample("get_flow_instance.response")["data"]["graph"])
    assert shape(graph["tasks"][0]) == shape(documented_graph["tasks"][0])
    documented_task = sample("get_flow_instance.struct.task_instance_graph")
    assert shape(graph["tasks"][0]).keys() == shape(documented_task).keys()
    flowing = next(
        i for i in sim.population.ids() if json.loads(sim.population.instance(i)["graph"])["flows"]
    )
    upstream = json.loads(sim.population.instance(flowing)["graph"])["flows"][0]
    assert shape(upstream) == shape(sample("get_flow_instance.struct.flow_instance_graph"))


def test_simulated_list_flow_instances_has_the_sample_shape(sim: Simulator) -> None:
    population = sim.population
    instance_id = _plain(population)
    trigger = population.plan(instance_id).trigger.replace(tzinfo=UTC)
    ms = int(trigger.timestamp() * 1000)
    data = _call(sim, sample("list_flow_instances.request"), fromTriggerTime=ms, toTriggerTime=ms)
    documented = sample("list_flow_instances.response")["data"]
    assert shape(data).keys() == shape(documented).keys() and data["count"] == len(
        data["flowInsts"]
    )
    record = next(r for r in data["flowInsts"] if r["instanceId"] == instance_id)
    assert shape(record) == shape(documented["flowInsts"][0])
    task = json.loads(record["graph"])["tasks"][0]
    assert shape(task) == shape(json.loads(documented["flowInsts"][0]["graph"])["tasks"][0])


def test_the_simulator_takes_both_request_samples(sim: Simulator) -> None:
    """The request sample sends status as a number and sorts by updateTime; the Java
    sample names the window startTriggerTime/endTriggerTime."""
    for name in ("list_flow_instances.request", "list_flow_instances.request.java"):
        data = _call(sim, sample(name))
        assert data == {"flowInsts": [], "count": 0}  # 2019: before the population


def test_simulated_time_zone_and_token_have_the_sample_shapes(sim: Simulator) -> None:
    data = _call(sim, sample("get_time_zone.request"))
    assert shape(data) == shape(sample("get_time_zone.response")["data"])
    documented = sample("token_get.request")
    stamp = time.time_ns() // 1_000_000
    body = {**documented["body"], "appKey": CREDS.app_key, "timestamp": stamp}
    body["encryption"] = token_encryption(CREDS.app_key, stamp, CREDS.app_secret)
    answer = requests.post(sim.url + documented["path"], json=body, timeout=5).json()
    assert shape(answer) == shape(sample("token_refresh.response"))
