"""The bundled EnOS simulator: its population, its gateway behaviour and its faults."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import statistics
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from extractor.errors import ConfigError
from extractor.simulator import (
    INSTANCES_PATH,
    QUIRKS,
    TIME_PATH,
    TOKEN_PATH,
    Faults,
    FireTimes,
    Population,
    Quirk,
    SimCredentials,
    Simulator,
    SimulatorProcess,
    build_simulator,
)
from extractor.simulator.faults import FaultState
from extractor.simulator.population import flow_type

CREDS = SimCredentials()
USER = {"userId": CREDS.user_id, "orgId": CREDS.org_id}
START, END = datetime(2026, 1, 1), datetime(2026, 1, 15)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _token_body(app_key: str = CREDS.app_key, secret: str = CREDS.app_secret) -> dict[str, Any]:
    stamp = time.time_ns() // 1_000_000
    return {"appKey": app_key, "encryption": _sha(f"{app_key}{stamp}{secret}"), "timestamp": stamp}


class Gateway:
    """A tiny signing client for the tests; the real one lives in extractor.gateway._auth."""

    def __init__(self, session: requests.Session, base_url: str) -> None:
        self.session, self.base_url = session, base_url
        self.token = ""

    def get_token(self) -> dict[str, Any]:
        answer = self.session.post(self.base_url + TOKEN_PATH, json=_token_body(), timeout=5)
        body: dict[str, Any] = answer.json()
        if body["status"] == 0:
            self.token = body["data"]["accessToken"]
        return body

    def call(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        body: bytes = b"",
        *,
        signature: str | None = None,
        timeout: float = 5,
    ) -> requests.Response:
        if not self.token:
            self.get_token()
        stamp = str(time.time_ns() // 1_000_000)
        data = "".join(k + v for k, v in sorted(params.items())).encode() + body
        expected = hashlib.sha256(
            self.token.encode() + data + stamp.encode() + CREDS.app_secret.encode()
        ).hexdigest()
        headers = {
            "apim-accesstoken": self.token,
            "apim-timestamp": stamp,
            "apim-signature": expected if signature is None else signature,
        }
        if body:
            headers["Content-Type"] = "application/json"
        url = f"{self.base_url}{path}?{urlencode(params)}"
        return self.session.request(
            method, url, data=body or None, headers=headers, timeout=timeout
        )

    def get(self, instance_id: str, **params: str) -> requests.Response:
        query = {"action": "get", "flowInstId": instance_id, **USER, **params}
        return self.call("GET", INSTANCES_PATH, query)

    def search(self, body: dict[str, Any], **params: str) -> requests.Response:
        query = {"action": "search", **USER, **params}
        return self.call("POST", INSTANCES_PATH, query, json.dumps(body).encode())


@pytest.fixture(scope="module")
def population() -> Population:
    return Population(seed=42, flows=60, start=START, end=END)


@pytest.fixture(scope="module")
def sample(population: Population) -> list[str]:
    return list(itertools.islice(population.ids(), 0, None, 97))[:4000]


@pytest.fixture
def sim(population: Population) -> Iterator[Simulator]:
    with Simulator(population) as simulator:
        yield simulator


@pytest.fixture
def gateway(sim: Simulator) -> Iterator[Gateway]:
    with requests.Session() as session:
        session.trust_env = False
        yield Gateway(session, sim.url)


def _graph(data: dict[str, Any]) -> dict[str, Any]:
    graph = data["graph"]
    result: dict[str, Any] = json.loads(graph) if isinstance(graph, str) else graph
    return result


def _edges(relations: list[Any]) -> list[tuple[str, str]]:
    edges = []
    for relation in relations:
        if isinstance(relation, list):
            edges.append((relation[0], relation[1]))
        elif "source" in relation:
            edges.append((relation["source"], relation["target"]))
        elif "from" in relation:
            edges.append((relation["from"], relation["to"]))
        else:
            edges.append((relation["preNodeId"], relation["nodeId"]))
    return edges


def _is_acyclic(nodes: set[str], edges: list[tuple[str, str]]) -> bool:
    incoming = {node: 0 for node in nodes}
    for _, target in edges:
        incoming[target] += 1
    ready = [node for node, count in incoming.items() if count == 0]
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for source, target in edges:
            if source == node:
                incoming[target] -= 1
                if incoming[target] == 0:
                    ready.append(target)
    return seen == len(nodes)


def _search_body(population: Population, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": 1,
        "expression": "",
        "owner": "",
        "fromTriggerTime": population.to_epoch_ms(START),
        "toTriggerTime": population.to_epoch_ms(START + timedelta(hours=3)),
        "status": "",
        "pagination": {"pageNo": 1, "pageSize": 100, "sorters": [{"field": "triggerTime"}]},
    }
    body.update(changes)
    return body


# Population


def test_same_seed_gives_same_ids_and_payloads() -> None:
    first, second = Population(seed=7, flows=20), Population(seed=7, flows=20)
    ids = list(itertools.islice(first.ids(), 0, 3000, 150))
    assert ids == list(itertools.islice(second.ids(), 0, 3000, 150))
    assert [first.instance(i) for i in ids] == [second.instance(i) for i in ids]
    other = Population(seed=8, flows=20)
    assert [first.instance(i) for i in ids] != [other.instance(i) for i in ids]


def test_ids_are_existing_instances_in_trigger_order(population: Population) -> None:
    ids = list(itertools.islice(population.ids(), 5000))
    keys = [(i.split("-")[1], int(i.split("-")[0])) for i in ids]
    assert keys == sorted(keys)
    assert len(set(ids)) == len(ids)
    assert all(population.instance(i) is not None for i in ids[::50])
    assert sum(1 for _ in population.ids()) == population.count()


def test_ids_with_a_limit_reach_a_million_by_widening_the_window() -> None:
    population = Population(flows=200)
    last: tuple[str, int] = ("", 0)
    count = 0
    for instance_id in population.ids(limit=1_000_000):
        flow, _, clock = instance_id.partition("-")
        key = (clock, int(flow))
        assert key > last
        last, count = key, count + 1
    assert count == 1_000_000
    assert population.start < datetime(2026, 1, 1)
    assert population.instance(instance_id) is not None


def test_missed_runs_are_off_by_default(population: Population) -> None:
    assert population.missed_rate == 0
    assert population.missed() == []


def test_planted_missed_runs_leave_no_instance_and_nothing_else_changes() -> None:
    window = {"seed": 3, "flows": 12, "start": START, "end": START + timedelta(days=2)}
    plain, planted = Population(**window), Population(**window, missed_rate=0.05)
    missed = planted.missed()
    missed_ids = [f"{flow_id}-{trigger:%Y%m%d%H%M%S}" for flow_id, trigger in missed]
    every = list(plain.ids())
    assert sorted(missed, key=lambda fire: (fire[1], fire[0])) == missed
    assert 0.03 < len(missed) / len(every) < 0.07
    assert list(planted.ids()) == [i for i in every if i not in set(missed_ids)]
    assert planted.count() == len(every) - len(missed)
    assert all(planted.instance(i) is None for i in missed_ids)
    assert all(plain.instance(i) is not None for i in missed_ids[:20])
    kept = next(i for i in every if i not in set(missed_ids))
    assert planted.instance(kept) == plain.instance(kept)
    from_ms, to_ms = planted.to_epoch_ms(START), planted.to_epoch_ms(planted.end)
    assert not set(planted.search_ids(from_ms, to_ms)) & set(missed_ids)
    assert Population(**window, missed_rate=0.05).missed() == missed


def test_missed_runs_follow_the_clock() -> None:
    population = Population(flows=12, start=START, end=END, missed_rate=0.05, now=START)
    assert population.missed() == []
    population.advance(timedelta(hours=6))
    assert population.missed()
    assert all(trigger <= population.now for _, trigger in population.missed())


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_missed_rate_is_validated(rate: float) -> None:
    with pytest.raises(ConfigError, match="missed rate"):
        Population(missed_rate=rate)


@pytest.mark.parametrize(
    "instance_id",
    [
        pytest.param("999-20260101000000", id="unknown-flow"),
        pytest.param("1000-20260101000030", id="not-a-fire-time"),
        pytest.param("1000-2026010100", id="short-clock"),
        pytest.param("1000-20251231000000", id="before-start"),
        pytest.param("1000-20260120000000", id="after-end"),
        pytest.param("banana", id="garbage"),
    ],
)
def test_instance_is_none_for_ids_that_are_no_fire_time(
    population: Population, instance_id: str
) -> None:
    assert population.instance(instance_id) is None
    assert population.envelope(instance_id)["data"] in (None, [])


def test_task_counts_range_from_1_to_60_with_median_near_8(
    population: Population, sample: list[str]
) -> None:
    counts = [len(_graph(population.instance(i) or {})["tasks"]) for i in sample]
    assert min(counts) == 1
    assert max(counts) == 60
    assert 6 <= statistics.median(counts) <= 10


def test_every_status_code_occurs(population: Population, sample: list[str]) -> None:
    seen = {population.status(i) for i in sample}
    assert seen == set(range(-1, 11))
    assert sum(population.status(i) == 1 for i in sample) > len(sample) * 0.7


def test_relations_form_a_dag_over_the_graph_nodes(
    population: Population, sample: list[str]
) -> None:
    edge_counts = []
    for instance_id in sample[:1500]:
        graph = _graph(population.instance(instance_id) or {})
        nodes = {t["nodeId"] for t in graph["tasks"]} | {f["nodeId"] for f in graph["flows"]}
        edges = _edges(graph["relations"])
        assert {n for edge in edges for n in edge} <= nodes
        assert len(set(edges)) == len(edges)
        assert _is_acyclic(nodes, edges), instance_id
        edge_counts.append(len(edges))
    assert statistics.median(edge_counts) >= 4


def test_task_statuses_agree_with_the_instance_status(
    population: Population, sample: list[str]
) -> None:
    for instance_id in sample:
        data = population.instance(instance_id) or {}
        statuses = {t["status"] for t in _graph(data)["tasks"]}
        assert statuses <= {"SUCCESS", "FAIL", "CANCEL", "INIT", "NONE", "RUNNING"}
        status = data["status"]
        if status == 1:
            assert statuses == {"SUCCESS"}
        elif status == 2:
            assert "RUNNING" in statuses
            assert "endTime" not in data
        elif status in (-1, 4, 7):
            assert "FAIL" in statuses
        elif status == 8:
            assert "CANCEL" in statuses
        elif status in (0, 5, 6):
            assert statuses == {"INIT"}
            assert "startTime" not in data


def test_payload_follows_the_documented_shape(population: Population) -> None:
    with_upstream = next(
        i
        for i in population.ids()
        if population.flow(int(i.split("-")[0])).upstream_flows and population.status(i) == 1
    )
    data = population.instance(with_upstream) or {}
    trigger = datetime.strptime(data["triggerTime"], "%Y-%m-%d %H:%M:%S")
    assert data["instanceId"] == f"{data['flowId']}-{trigger:%Y%m%d%H%M%S}"
    assert data["calDt"] == f"{trigger - timedelta(days=1):%Y-%m-%d}"
    assert data["timestamp"].endswith(".0")
    assert data["statusDesc"] == "SUCCESS"
    start = datetime.strptime(data["startTime"], "%Y-%m-%d %H:%M:%S")
    end = datetime.strptime(data["endTime"], "%Y-%m-%d %H:%M:%S")
    assert trigger < start <= end
    graph = _graph(data)
    assert graph["flows"]
    for node in graph["flows"]:
        assert isinstance(node["flowId"], str)
        assert node["nodeId"] == f"f_{node['flowId']}"
        assert node["flowInstId"].startswith(node["flowId"] + "-")
    for task in graph["tasks"]:
        assert task["nodeId"] == f"t_{task['taskId']}"
        assert task["taskInstId"] == f"{task['taskId']}-{trigger:%Y%m%d%H%M%S}"
    assert len(data["freq"].split()) == 7
    assert data["cycle"] in {"M", "W", "D", "H", "mi"}


def test_names_and_parameters_mix_scripts(population: Population, sample: list[str]) -> None:
    names = {f.name for f in population.flows()}
    assert any(any("\u4e00" <= c <= "\u9fff" for c in n) for n in names)
    assert any(any(c in "éèüöá" for c in n) for n in names)
    assert any(n.isascii() for n in names)
    parameters = [(population.instance(i) or {})["parameters"] for i in sample[:300]]
    decoded = [json.loads(p) if isinstance(p, str) else p for p in parameters]
    assert [] in decoded
    assert any(not item["value"].isascii() for p in decoded for item in p)


def test_every_schedule_shape_is_present(population: Population) -> None:
    freqs = {f.schedule.freq for f in population.flows()}
    assert "0 1/1 * * * ? *" in freqs
    assert any(f.endswith("? * MON-FRI *") for f in freqs)
    assert any(" L * ? *" in f for f in freqs)
    assert {f.schedule.cycle for f in population.flows()} == {"M", "W", "D", "H", "mi"}


def test_minute_one_slash_one_skips_minute_zero() -> None:
    population = Population(flows=2, start=START, end=START + timedelta(hours=2))
    minutely = [i for i in population.ids() if i.startswith("1001-")]
    assert len(minutely) == 2 * 59
    assert "1001-20260101010000" not in minutely


def test_day_rules_follow_quartz() -> None:
    weekly = FireTimes("0 0 3 ? * 2 *", "W", (0,), (3,), "weekday", 2)
    fires = list(weekly.iter_fires(START, START + timedelta(days=14)))
    assert fires == [datetime(2026, 1, 5, 3), datetime(2026, 1, 12, 3)]  # Mondays
    last = FireTimes("0 0 23 L * ? *", "M", (0,), (23,), "month-last")
    assert list(last.iter_fires(START, datetime(2026, 3, 1))) == [
        datetime(2026, 1, 31, 23),
        datetime(2026, 2, 28, 23),
    ]
    workdays = FireTimes("0 30 8 ? * MON-FRI *", "W", (30,), (8,), "weekdays")
    assert workdays.count(START, START + timedelta(days=7)) == 5


def test_counting_fires_agrees_with_listing_them(population: Population) -> None:
    low, high = datetime(2026, 1, 3, 7, 42, 30), datetime(2026, 1, 9, 13, 5)
    for flow in population.flows():
        fires = list(flow.schedule.iter_fires(low, high))
        assert flow.schedule.count(low, high) == len(fires)
        assert all(flow.schedule.is_fire(f) and low <= f < high for f in fires)
        if fires:
            assert flow.schedule.last_at_or_before(fires[-1] + timedelta(seconds=59)) == fires[-1]


@pytest.mark.parametrize("quirk", [q for q in QUIRKS if q != "graph-other-instance"])
def test_each_quirk_is_spread_and_can_be_found(population: Population, quirk: Quirk) -> None:
    instance_id = population.find(quirk=quirk)
    plan = population.plan(instance_id)
    assert plan is not None and quirk in plan.quirks
    envelope = population.envelope(instance_id)
    data = envelope["data"][0] if isinstance(envelope["data"], list) else envelope["data"]
    graph = _graph(data)
    relations = graph["relations"]
    tasks = graph["tasks"]
    checks = {
        "data-list": isinstance(envelope["data"], list),
        "graph-decoded": isinstance(data["graph"], dict),
        "parameters-decoded": isinstance(data["parameters"], list),
        "task-id-string": all(isinstance(t["taskId"], str) for t in tasks),
        "graph-do-as": "do_as" in graph and "doAs" not in graph,
        "graph-extra-keys": "alertTo" in graph and "app_id" in graph,
        "relations-from-to": all("from" in r for r in relations),
        "relations-pre-node": all("preNodeId" in r for r in relations),
        "relations-pairs": all(isinstance(r, list) and len(r) == 2 for r in relations),
    }
    assert checks[quirk]
    plain = population.find(lacking=[quirk])
    plan = population.plan(plain)
    assert plan is not None and quirk not in plan.quirks


def test_graph_of_another_instance_is_opt_in() -> None:
    population = Population(flows=10, start=START, end=END, quirk_rates={"graph-other-instance": 1})
    instance_id = list(itertools.islice(population.ids(), 500))[-1]
    graph = _graph(population.instance(instance_id) or {})
    assert graph["instId"] != instance_id
    assert graph["instId"].split("-")[0] == instance_id.split("-")[0]
    with pytest.raises(LookupError):
        Population(flows=10, start=START, end=END).find(quirk="graph-other-instance")


def test_status_follows_the_clock() -> None:
    population = Population(flows=30, start=START, end=END)
    instance_id = next(
        i
        for i in population.ids()
        if population.status(i) == 1
        and (plan := population.plan(i)) is not None
        and plan.end - plan.start > timedelta(seconds=10)
        and plan.start - plan.trigger > timedelta(seconds=5)
    )
    plan = population.plan(instance_id)
    assert plan is not None
    population.now = plan.trigger - timedelta(seconds=1)
    assert population.instance(instance_id) is None
    assert instance_id not in set(itertools.islice(population.ids(), 10**6))
    population.advance(timedelta(seconds=1))
    waiting = population.instance(instance_id) or {}
    assert waiting["status"] in (0, 5, 6)
    assert "startTime" not in waiting
    population.now = plan.start + (plan.end - plan.start) / 2
    running = population.instance(instance_id) or {}
    assert running["status"] == 2
    assert "endTime" not in running
    assert "RUNNING" in {t["status"] for t in _graph(running)["tasks"]}
    population.advance(plan.end - population.now + timedelta(minutes=5))
    done = population.instance(instance_id) or {}
    assert (done["status"], done["statusDesc"]) == (1, "SUCCESS")
    assert done["endTime"] == f"{plan.end:%Y-%m-%d %H:%M:%S}"


@pytest.mark.parametrize(
    ("zone", "label"),
    [
        ("Asia/Shanghai", "GMT+8"),
        ("Asia/Kolkata", "GMT+5:30"),
        ("America/New_York", "GMT-5"),
        ("UTC", "GMT+0"),
    ],
)
def test_timezone_label_is_the_standard_offset(zone: str, label: str) -> None:
    assert Population(flows=1, timezone=zone).timezone_label() == label


def test_search_filters_by_window_status_owner_and_expression(population: Population) -> None:
    low, high = START + timedelta(days=1), START + timedelta(days=2)
    from_ms, to_ms = population.to_epoch_ms(low), population.to_epoch_ms(high)
    everything = [i for kind in (0, 1, 2) for i in population.search_ids(from_ms, to_ms, type=kind)]
    trigger = {i: datetime.strptime(i[-14:], "%Y%m%d%H%M%S") for i in population.ids()}
    expected = [i for i, t in trigger.items() if low <= t <= high]  # both ends included
    assert sorted(everything) == sorted(expected)
    assert any(trigger[i] == high for i in everything), "the window's end is included"
    assert {flow_type(int(i[:4])) for i in everything} == {0, 1, 2}
    everything = list(population.search_ids(from_ms, to_ms))
    failed = list(population.search_ids(from_ms, to_ms, {-1}))
    assert failed and all(population.status(i) == -1 for i in failed)
    owner = population.flow(1000).owners[0]
    mine = list(population.search_ids(from_ms, to_ms, owner=owner))
    assert mine and all(owner in population.flow(int(i[:4])).owners for i in mine)
    name = population.flow(1004).name
    named = list(population.search_ids(from_ms, to_ms, expression=name.upper()))
    assert 1004 in {int(i[:4]) for i in named}
    assert all(name.casefold() in population.flow(int(i[:4])).name.casefold() for i in named)
    assert list(population.search_ids(from_ms, to_ms, expression=everything[0])) == [everything[0]]
    manual = list(population.search_ids(from_ms, to_ms, type=0))
    assert manual and all(flow_type(int(i[:4])) == 0 for i in manual)


# Authentication


def test_token_is_issued_and_reused_while_valid(gateway: Gateway) -> None:
    first = gateway.get_token()
    assert first["status"] == 0 and first["msg"] == "SUCCESS"
    assert first["business"] == "apim-token-service"
    assert 7100 < first["data"]["expire"] <= 7200
    time.sleep(0.002)
    assert gateway.get_token()["data"]["accessToken"] == first["data"]["accessToken"]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        pytest.param({"appKey": "nobody"}, 1002, id="unknown-app-key"),
        pytest.param({"encryption": "0" * 64}, 1003, id="bad-encryption"),
        pytest.param({"encryption": ""}, 1202, id="empty-parameter"),
        pytest.param({"timestamp": 1_000_000}, 1004, id="stale-timestamp"),
    ],
)
def test_token_request_errors(sim: Simulator, change: dict[str, Any], code: int) -> None:
    body = _token_body()
    if "appKey" in change:
        body = _token_body(app_key=change["appKey"])
    body.update({k: v for k, v in change.items() if k != "appKey"})
    with requests.Session() as session:
        session.trust_env = False
        answer = session.post(sim.url + TOKEN_PATH, json=body, timeout=5)
    assert answer.status_code == 200
    assert answer.json()["status"] == code


def test_token_request_with_a_used_encryption_is_refused(sim: Simulator) -> None:
    body = _token_body()
    with requests.Session() as session:
        session.trust_env = False
        assert session.post(sim.url + TOKEN_PATH, json=body, timeout=5).json()["status"] == 0
        assert session.post(sim.url + TOKEN_PATH, json=body, timeout=5).json()["status"] == 1001


def test_signature_is_checked(gateway: Gateway, sample: list[str]) -> None:
    assert gateway.get(sample[0]).status_code == 200
    forged = gateway.call(
        "GET", INSTANCES_PATH, {"action": "get", "flowInstId": sample[0], **USER}, signature="0"
    )
    assert (forged.status_code, forged.json()["code"]) == (401, 1003)
    bare = gateway.session.get(gateway.base_url + INSTANCES_PATH, timeout=5)
    assert (bare.status_code, bare.json()["code"]) == (401, 1202)
    gateway.token = "not-a-token"
    stranger = gateway.get(sample[0])
    assert (stranger.status_code, stranger.json()["code"]) == (401, 1002)


def test_expired_token_answers_1203_until_refreshed(
    sim: Simulator, gateway: Gateway, sample: list[str]
) -> None:
    gateway.get_token()
    old = gateway.token
    sim.expire_tokens()
    expired = gateway.get(sample[0])
    assert (expired.status_code, expired.json()) == (
        401,
        {"code": 1203, "msg": "access token expired"},
    )
    gateway.get_token()
    assert gateway.token != old
    assert gateway.get(sample[0]).json()["code"] == 0
    new, gateway.token = gateway.token, old
    assert gateway.get(sample[0]).json()["code"] == 1203
    gateway.token = new


def test_signature_covers_the_body(gateway: Gateway, population: Population) -> None:
    body = json.dumps(_search_body(population)).encode()
    gateway.get_token()
    query = {"action": "search", **USER}
    stamp = str(time.time_ns() // 1_000_000)
    signature = _sha(gateway.token + "".join(k + v for k, v in sorted(query.items())) + stamp)
    answer = gateway.session.post(
        f"{gateway.base_url}{INSTANCES_PATH}?{urlencode(query)}",
        data=body,
        headers={
            "apim-accesstoken": gateway.token,
            "apim-timestamp": stamp,
            "apim-signature": signature,
        },
        timeout=5,
    )
    assert (answer.status_code, answer.json()["code"]) == (401, 1003)


# Calls


def test_get_flow_instance_answers_the_population(
    gateway: Gateway, population: Population, sample: list[str]
) -> None:
    for instance_id in sample[:40]:
        answer = gateway.get(instance_id)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].startswith("application/json")
        assert answer.json() == population.envelope(instance_id)
    listed = population.find(quirk="data-list")
    data = gateway.get(listed).json()["data"]
    assert isinstance(data, list) and data[0]["instanceId"] == listed


def test_get_flow_instance_not_found_and_bad_requests(gateway: Gateway, sample: list[str]) -> None:
    missing = gateway.get("1000-20260101000030").json()
    assert missing["code"] == 0 and missing["data"] in (None, [])
    mismatch = gateway.get(sample[0], orgId="someone-else").json()
    assert mismatch == {
        "code": 62101,
        "msg": "userId does not exist, or it does not match to orgId.",
    }
    no_id = gateway.call("GET", INSTANCES_PATH, {"action": "get", **USER})
    assert (no_id.status_code, no_id.json()["code"]) == (400, 62102)


def test_search_pages_from_one_until_a_short_page(gateway: Gateway, population: Population) -> None:
    found: list[str] = []
    for page_no in itertools.count(1):
        pagination = {"pageNo": page_no, "pageSize": 37, "sorters": [{"field": "triggerTime"}]}
        answer = gateway.search(_search_body(population, pagination=pagination)).json()
        assert answer["code"] == 0
        data = answer["data"]
        assert set(data) == {"flowInsts", "count"} and data["count"] == len(data["flowInsts"])
        found += [d["instanceId"] for d in data["flowInsts"]]
        if len(data["flowInsts"]) < 37:
            break
    body = _search_body(population)
    expected = list(population.search_ids(body["fromTriggerTime"], body["toTriggerTime"]))
    assert found == expected and len(found) > 100
    filtered = gateway.search(_search_body(population, status="-1,8")).json()["data"]
    assert {d["status"] for d in filtered["flowInsts"]} <= {-1, 8}
    as_number = gateway.search(_search_body(population, status=-1)).json()["data"]
    assert {d["status"] for d in as_number["flowInsts"]} == {-1}


@pytest.mark.parametrize("field", ["createTime", "updateTime", "startTime", "endTime"])
@pytest.mark.parametrize("order", ["ASC", "DESC"])
def test_search_sorts_by_each_documented_field(
    gateway: Gateway, population: Population, field: str, order: str
) -> None:
    sorters = [{"field": field, "order": order}]
    pagination = {"pageNo": 1, "pageSize": 1000, "sorters": sorters}
    records = gateway.search(_search_body(population, pagination=pagination)).json()["data"]
    key = {"createTime": "triggerTime", "updateTime": "timestamp"}.get(field, field)
    values = [r[key] for r in records["flowInsts"] if key in r]
    assert values == sorted(values, reverse=order == "DESC") and len(values) > 100


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"type": None}, id="no-type"),
        pytest.param({"owner": None}, id="no-owner"),
        pytest.param({"status": None}, id="no-status"),
        pytest.param({"status": "1,banana"}, id="bad-status"),
        pytest.param({"fromTriggerTime": "yesterday"}, id="bad-from"),
        pytest.param({"fromTriggerTime": 2, "toTriggerTime": 1}, id="from-after-to"),
        pytest.param({"pagination": {"pageNo": 1, "pageSize": 0}}, id="page-size-0"),
        pytest.param({"pagination": {"pageNo": 1, "pageSize": 1001}}, id="page-size-over-cap"),
        pytest.param({"pagination": {"pageNo": 0, "pageSize": 10}}, id="page-zero"),
        pytest.param({"pagination": {"pageNo": -1, "pageSize": 10}}, id="negative-page"),
        pytest.param(
            {"pagination": {"pageSize": 10, "sorters": [{"field": "start_time"}]}},
            id="snake-case-sorter",
        ),
        pytest.param(
            {"pagination": {"pageSize": 10, "sorters": [{"field": "triggerTime", "order": "UP"}]}},
            id="bad-order",
        ),
    ],
)
def test_search_validates_its_body(
    gateway: Gateway, population: Population, change: dict[str, Any]
) -> None:
    body = {k: v for k, v in _search_body(population, **change).items() if v is not None}
    answer = gateway.search(body)
    assert answer.status_code == 200
    assert answer.json()["code"] == 62102 and answer.json()["msg"]
    if "start_time" in str(change):
        assert answer.json()["msg"] == "The sorters field parameter is invalid"


def test_time_zone_and_unknown_paths(gateway: Gateway) -> None:
    answer = gateway.call("GET", TIME_PATH, {"action": "getTimeZone"})
    assert answer.json() == {"code": 0, "msg": "OK", "data": {"timezone": "GMT+8"}}
    unknown = gateway.call("GET", "/batch-processing-service/v2.1/nothing", {})
    assert unknown.status_code == 404 and unknown.json()["code"] == 404


def test_server_is_quiet_and_counts(
    sim: Simulator, gateway: Gateway, sample: list[str], capfd: pytest.CaptureFixture[str]
) -> None:
    sim.reset_stats()
    gateway.get(sample[0])
    gateway.get("1000-20260101000030")
    stats = sim.stats
    assert stats.requests == {"token": 1, "get": 2}
    assert stats.answers == {"token": 1, "ok": 1, "not_found": 1}
    assert capfd.readouterr().err == ""


def test_stop_cuts_idle_keep_alive_connections(population: Population) -> None:
    sim = Simulator(population).start()
    with requests.Session() as session:
        session.trust_env = False
        Gateway(session, sim.url).get_token()
        began = time.monotonic()
        sim.stop()
        assert time.monotonic() - began < 5
    with pytest.raises(RuntimeError):
        _ = sim.url


# Faults


def _faulted(gateway: Gateway, instance_id: str) -> requests.Response | Exception:
    try:
        return gateway.get(instance_id)
    except requests.RequestException as exc:
        return exc


def _is_ok(answer: requests.Response | Exception) -> bool:
    return (
        isinstance(answer, requests.Response)
        and answer.status_code == 200
        and _parses(answer.content)
        and answer.json().get("code") == 0
    )


@pytest.mark.parametrize(
    ("faults", "looks_right"),
    [
        pytest.param(
            Faults(throttle=1.0),
            lambda a: a.status_code == 429 and a.headers["Retry-After"] == "1",
            id="throttle",
        ),
        pytest.param(
            Faults(server_error=1.0),
            lambda a: a.status_code in (500, 502, 503),
            id="server-error",
        ),
        pytest.param(
            Faults(timeout=1.0, hang_s=0.2),
            lambda a: isinstance(a, requests.ConnectionError),
            id="timeout",
        ),
        pytest.param(
            Faults(drop=1.0), lambda a: isinstance(a, requests.ConnectionError), id="drop"
        ),
        pytest.param(
            Faults(malformed=1.0),
            lambda a: a.status_code == 200 and not _parses(a.content),
            id="malformed",
        ),
        pytest.param(
            Faults(code_error=1.0),
            lambda a: a.json() == {"code": 62109, "msg": "Server internal exception"},
            id="code-error",
        ),
    ],
)
def test_each_fault_fires_then_clears_after_fault_attempts(
    sim: Simulator, gateway: Gateway, sample: list[str], faults: Faults, looks_right: Any
) -> None:
    gateway.get_token()
    sim.faults = faults
    for attempt in range(faults.fault_attempts):
        answer = _faulted(gateway, sample[1])
        assert looks_right(answer), (attempt, answer)
    assert _is_ok(_faulted(gateway, sample[1]))
    assert _is_ok(_faulted(gateway, sample[1]))
    assert sim.stats.faults_injected == faults.fault_attempts


def _parses(content: bytes) -> bool:
    try:
        json.loads(content)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ("seconds", lambda v: v == "3"),
        ("http-date", lambda v: v.endswith(" GMT")),
        ("zero", lambda v: v == "0"),
        ("negative", lambda v: int(v) < 0),
        ("absurd", lambda v: int(v) > 10**6),
        ("none", lambda v: v is None),
    ],
)
def test_throttle_writes_retry_after_in_each_form(
    sim: Simulator, gateway: Gateway, sample: list[str], form: Any, expected: Any
) -> None:
    gateway.get_token()
    sim.faults = Faults(throttle=1.0, retry_after=form, retry_after_s=2.5, fault_attempts=1)
    answer = gateway.get(sample[2])
    assert answer.status_code == 429
    assert expected(answer.headers.get("Retry-After"))


def test_faults_hit_a_seeded_share_of_ids_and_lose_none(
    sim: Simulator, gateway: Gateway, sample: list[str]
) -> None:
    gateway.get_token()
    plan = Faults(throttle=0.1, server_error=0.1, code_error=0.1, malformed=0.1, seed=3)
    sim.faults = plan
    answers = {i: [_faulted(gateway, i) for _ in range(3)] for i in sample[:200]}
    faulted = {i for i, tries in answers.items() if not _is_ok(tries[0])}
    assert 50 <= len(faulted) <= 110
    assert all(_is_ok(tries[2]) for tries in answers.values())
    again = FaultState(plan)
    assert {i for i in sample[:200] if again.decide(i) is not None} == faulted


def test_server_errors_come_in_bursts(sim: Simulator, gateway: Gateway, sample: list[str]) -> None:
    gateway.get_token()
    sim.faults = Faults(server_error=0.2, error_burst=4, fault_attempts=5, seed=1)
    codes = [gateway.get(i).status_code for i in sample[:60]]
    first = codes.index(next(c for c in codes if c >= 500))
    assert all(c >= 500 for c in codes[first : first + 4])


def test_permanent_faults_never_clear(sim: Simulator, gateway: Gateway, sample: list[str]) -> None:
    sim.faults = Faults(permanent={sample[0]: "not_found", sample[1]: "no_privilege"})
    for _ in range(3):
        assert gateway.get(sample[0]).json() == {"code": 0, "msg": "OK", "data": None}
        assert gateway.get(sample[1]).json()["code"] == 62103
    assert gateway.get(sample[2]).json()["code"] == 0


def test_tokens_expire_every_n_calls(sim: Simulator, gateway: Gateway, sample: list[str]) -> None:
    gateway.get_token()
    sim.faults = Faults(expire_token_every=3)
    codes = [gateway.get(i).json()["code"] for i in sample[:3]]
    assert codes == [0, 0, 1203]
    gateway.get_token()
    assert gateway.get(sample[0]).json()["code"] == 0


def test_latency_is_added(sim: Simulator, gateway: Gateway, sample: list[str]) -> None:
    gateway.get_token()
    sim.faults = Faults(latency_ms=150, latency_jitter_ms=20)
    began = time.monotonic()
    assert gateway.get(sample[0]).status_code == 200
    assert time.monotonic() - began >= 0.15


def test_rate_limit_answers_429_with_retry_after(
    sim: Simulator, gateway: Gateway, sample: list[str]
) -> None:
    gateway.get_token()
    sim.faults = Faults(rate_limit_rps=5)
    answers = [gateway.get(i) for i in sample[:20]]
    limited = [a for a in answers if a.status_code == 429]
    assert 10 <= len(limited) <= 16
    assert all(int(a.headers["Retry-After"]) >= 1 for a in limited)
    assert sim.stats.throttled == len(limited)
    sim.faults = Faults()
    assert gateway.get(sample[0]).status_code == 200


def test_fault_plans_are_validated() -> None:
    with pytest.raises(ConfigError):
        Faults(throttle=0.6, drop=0.6)
    with pytest.raises(ConfigError):
        Faults(expire_token_every=1)
    with pytest.raises(ConfigError):
        Faults(permanent={"x": "gone"})  # type: ignore[dict-item]
    assert dataclasses.replace(Faults(), drop=0.5).drop == 0.5


# Launching


def test_build_simulator_from_plain_options() -> None:
    sim = build_simulator(
        seed=5,
        flows=3,
        timezone="Asia/Kolkata",
        credentials=SimCredentials(org_id="o", user_id="u"),
    )
    assert (sim.population.seed, sim.population.flow_count) == (5, 3)
    assert sim.population.timezone_label() == "GMT+5:30"
    assert (sim.credentials.org_id, sim.credentials.user_id) == ("o", "u")


def test_simulator_runs_in_a_child_process() -> None:
    with SimulatorProcess(flows=5, end=datetime(2026, 1, 3)) as sim, requests.Session() as session:
        session.trust_env = False
        gateway = Gateway(session, sim.url)
        answer = gateway.call("GET", TIME_PATH, {"action": "getTimeZone"})
        assert answer.json()["data"] == {"timezone": "GMT+8"}
        sim.set_faults(Faults(code_error=1.0))
        assert gateway.get("1000-20260101000000").json()["code"] == 62109
        assert sim.stats().requests == {"token": 1, "time": 1, "get": 1}
