"""The flattener against the API documentation's own examples and each documented quirk."""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pytest

from extractor import flatten
from extractor.errors import ConfigError, RecordError
from extractor.flattener import Rows, flatten_instance, flatten_records
from extractor.frames import arrow_schema, build_frames
from extractor.schema import TABLES
from extractor.simulator import QUIRKS, Population

FIXTURES = Path(__file__).parent / "fixtures"
GMT8 = timezone(timedelta(hours=8))
WHEN = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def one(frames_table: pa.Table) -> dict[str, Any]:
    rows = frames_table.to_pylist()
    assert len(rows) == 1
    return rows[0]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_seed_flow_instance_example() -> None:
    frames = flatten([load("seed_flow_instance.json")], source_tz=GMT8, extracted_at=WHEN)
    row = one(frames.tables["flow_instances"])
    assert row == {
        "instance_id": "2438-201907261239",
        "flow_id": 2438,
        "flow_name": "rew",
        "freq": "0 1/1 * * * ? *",
        "cycle": "mi",
        "cycle_name": "minute",
        "do_as": "your_bd_account",
        "status": 0,
        "status_desc": "INIT",
        "status_name": "INIT",
        "is_terminal": False,
        "trigger_time": utc(2019, 7, 26, 12, 39),
        "start_time": utc(2019, 7, 26, 4, 39, 37),
        "end_time": utc(2019, 7, 26, 4, 39, 42),
        "record_time": utc(2019, 7, 26, 4, 38, 30),
        "duration_s": 5.0,
        # The documentation's trigger time is 8 hours after its start time; kept as is.
        "start_delay_s": -28763.0,
        "is_virtual": False,
        "owner": "yourOwners",
        "alert_mode": 3,
        "alert_mode_name": "email_and_sms",
        "cal_dt": date(2019, 7, 25),
        "has_edit_pri": False,
        "has_read_pri": True,
        "is_cancelled": None,
        "creator": "yourCreator",
        "owners": "yourOwners",
        "alert_to": "",
        "app_id": "",
        "graph_instance_id": "2438-201907261239",
        "task_count": 1,
        "failed_task_count": 0,
        "cron_second": "0",
        "cron_minute": "1/1",
        "cron_hour": "*",
        "cron_day_of_month": "*",
        "cron_month": "*",
        "cron_day_of_week": "?",
        "cron_year": "*",
        "cron_is_valid": True,
        "cron_description": row["cron_description"],
        # Minutes 1..59: the gap from :59 to :01 is two minutes, so not regular.
        "cron_interval_s": None,
        "next_trigger_time": utc(2019, 7, 26, 12, 40),
        "parameters_json": "[]",
        "extra_json": None,
        "extracted_at": WHEN,
    }
    assert row["cron_description"]
    assert one(frames.tables["task_instances"]) == {
        "task_inst_id": "104452-201907261239",
        "instance_id": "2438-201907261239",
        "task_id": 104452,
        "task_name": "fr",
        "node_id": "t_104452",
        "status": "SUCCESS",
        "x": 0.0198,
        "y": 0.0045,
        "extra_json": None,
    }
    for name in ("flow_dependencies", "task_relations", "flow_parameters", "failed_instances"):
        assert frames.tables[name].num_rows == 0


def test_seed_response_example_envelope_with_another_instances_graph() -> None:
    frames = flatten([load("seed_get_response.json")], source_tz=GMT8, extracted_at=WHEN)
    row = one(frames.tables["flow_instances"])
    assert row["instance_id"] == "2809-20190808093200"
    assert row["graph_instance_id"] == "2438-201907261239"
    assert (row["status"], row["status_name"], row["is_terminal"]) == (1, "SUCCESS", True)
    assert row["trigger_time"] == utc(2019, 8, 8, 1, 32, 12)
    assert (row["duration_s"], row["start_delay_s"]) == (2.0, 18.0)
    assert row["cron_interval_s"] == 86400
    assert row["next_trigger_time"] == utc(2019, 8, 8, 16, 0)
    assert row["cal_dt"] == date(2019, 8, 7)
    assert row["flow_name"] == "21"  # the instance's own name wins over the graph's
    task = one(frames.tables["task_instances"])
    assert (task["task_inst_id"], task["instance_id"]) == (
        "104452-201907261239",
        "2809-20190808093200",
    )


def test_tables_match_declared_arrow_schemas() -> None:
    frames = flatten([load("seed_get_response.json")], source_tz=GMT8, extracted_at=WHEN)
    for table in TABLES:
        assert frames.tables[table.name].schema.equals(arrow_schema(table))


def _base() -> dict[str, Any]:
    return copy.deepcopy(load("seed_flow_instance.json"))


def _graph(record: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(record["graph"]))


def _with_graph(record: dict[str, Any], **changes: Any) -> dict[str, Any]:
    graph = _graph(record)
    graph.update(changes)
    record["graph"] = json.dumps(graph, ensure_ascii=False)
    return record


def _data_as_list() -> Any:
    return {"code": 0, "msg": "OK", "data": [_base()]}


def _graph_as_object() -> Any:
    record = _base()
    record["graph"] = _graph(record)
    return record


def _graph_as_list_of_one() -> Any:
    record = _base()
    record["graph"] = [_graph(record)]
    return record


def _task_id_as_string() -> Any:
    task = load("seed_task_graph.json")
    return _with_graph(_base(), tasks=[task])


def _params_decoded() -> Any:
    record = _base()
    record["parameters"] = [{"key": "env", "value": "product"}, {"key": "n", "value": 3}]
    return record


@pytest.mark.parametrize(
    ("raw", "check"),
    [
        pytest.param(
            _data_as_list(),
            lambda f: f.tables["flow_instances"].num_rows == 1,
            id="data-as-list-of-one",
        ),
        pytest.param(
            _graph_as_object(),
            lambda f: f.tables["task_instances"].num_rows == 1,
            id="graph-as-object",
        ),
        pytest.param(
            _graph_as_list_of_one(),
            lambda f: f.tables["task_instances"].num_rows == 1,
            id="graph-as-list-of-one",
        ),
        pytest.param(
            _task_id_as_string(),
            lambda f: one(f.tables["task_instances"])["task_id"] == 104575,
            id="task-id-as-string",
        ),
        pytest.param(
            _params_decoded(),
            lambda f: (
                f.tables["flow_parameters"].to_pylist()
                == [
                    {
                        "instance_id": "2438-201907261239",
                        "key": "env",
                        "value": "product",
                        "position": 0,
                    },
                    {"instance_id": "2438-201907261239", "key": "n", "value": "3", "position": 1},
                ]
            ),
            id="parameters-as-list",
        ),
        pytest.param(
            dict(_base(), flowId="2438"),
            lambda f: one(f.tables["flow_instances"])["flow_id"] == 2438,
            id="flow-id-as-string",
        ),
        pytest.param(
            dict(_base(), status="-1"),
            lambda f: one(f.tables["flow_instances"])["status_name"] == "FAIL",
            id="status-as-string",
        ),
        pytest.param(
            dict(_base(), virtual="false"),
            lambda f: one(f.tables["flow_instances"])["is_virtual"] is False,
            id="boolean-as-string",
        ),
        pytest.param(
            dict(_base(), endTime=None, status=2),
            lambda f: one(f.tables["flow_instances"])["duration_s"] is None,
            id="running-without-end",
        ),
        pytest.param(
            dict(_base(), timestamp="2019-07-26 12:38:30"),
            lambda f: one(f.tables["flow_instances"])["record_time"] == utc(2019, 7, 26, 4, 38, 30),
            id="timestamp-without-fraction",
        ),
    ],
)
def test_documented_inconsistencies(raw: Any, check: Any) -> None:
    frames = flatten([raw], source_tz=GMT8, extracted_at=WHEN)
    assert frames.tables["failed_instances"].num_rows == 0
    assert check(frames)


def test_dependent_flows_with_string_flow_id() -> None:
    record = _with_graph(_base(), flows=[load("seed_flow_graph.json")])
    frames = flatten([record], source_tz=GMT8, extracted_at=WHEN)
    assert one(frames.tables["flow_dependencies"]) == {
        "instance_id": "2438-201907261239",
        "node_id": "f_2809",
        "flow_id": 2809,
        "flow_name": "21",
        "flow_inst_id": "2809-20190812101300",
        "is_virtual": False,
        "status": "NONE",
        "x": 0.0125,
        "y": 0.0015,
        "extra_json": None,
    }


def test_relation_spellings_become_edges_and_unknown_shapes_are_quarantined() -> None:
    relations = [
        {"source": "t_1", "target": "t_2"},
        {"from": "t_2", "to": "t_3"},
        {"preNodeId": "t_3", "nodeId": "t_4"},
        ["t_4", "t_5"],
        {"source": "t_1", "target": "t_2"},  # the same edge twice is one edge
        {"weird": "shape"},
        ["only-one"],
    ]
    frames = flatten([_with_graph(_base(), relations=relations)], source_tz=GMT8, extracted_at=WHEN)
    edges = [
        (r["from_node_id"], r["to_node_id"]) for r in frames.tables["task_relations"].to_pylist()
    ]
    assert edges == [("t_1", "t_2"), ("t_2", "t_3"), ("t_3", "t_4"), ("t_4", "t_5")]
    quarantined = frames.tables["quarantined_values"].to_pylist()
    assert [(q["field"], q["position"], q["raw_json"]) for q in quarantined] == [
        ("graph.relations", 5, '{"weird":"shape"}'),
        ("graph.relations", 6, '["only-one"]'),
    ]


def test_bad_task_is_quarantined_and_the_rest_kept() -> None:
    tasks = [
        {"taskInstId": "1-x", "taskId": 1, "status": "FAIL"},
        {"taskId": 2, "taskName": "no id"},
        {"taskInstId": "3-x", "taskId": "not-a-number"},
        {"taskInstId": "1-x", "taskId": 1},
        {"taskInstId": "4-x", "taskId": 4, "status": "SUCCESS", "retries": 2},
    ]
    frames = flatten([_with_graph(_base(), tasks=tasks)], source_tz=GMT8, extracted_at=WHEN)
    kept = frames.tables["task_instances"].to_pylist()
    assert [t["task_inst_id"] for t in kept] == ["1-x", "4-x"]
    assert kept[1]["extra_json"] == '{"retries":2}'
    assert frames.unknown_fields["graph.tasks[].retries"] == 1
    reasons = [q["reason"] for q in frames.tables["quarantined_values"].to_pylist()]
    assert reasons == [
        "task without taskInstId",
        "taskId must be an integer, got 'not-a-number'",
        "duplicate taskInstId 1-x",
    ]
    row = one(frames.tables["flow_instances"])
    assert (row["task_count"], row["failed_task_count"]) == (2, 1)


def test_unknown_fields_are_kept_and_reported() -> None:
    record = _with_graph(dict(_base(), priority=5, 标签="夜间"), newGraphKey=[1])
    frames = flatten([record], source_tz=GMT8, extracted_at=WHEN)
    extra = json.loads(one(frames.tables["flow_instances"])["extra_json"])
    assert extra == {"graph.newGraphKey": [1], "priority": 5, "标签": "夜间"}
    assert set(frames.unknown_fields) == {"priority", "标签", "graph.newGraphKey"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param({"graph": "{not json"}, "graph is not valid JSON", id="undecodable-graph"),
        pytest.param(
            {"triggerTime": "2019-02-30 10:00:00"},
            "triggerTime is not a valid",
            id="impossible-timestamp",
        ),
        pytest.param({"instanceId": None}, "missing instanceId", id="missing-id"),
        pytest.param({"calDt": "yesterday"}, "calDt is not a valid date", id="bad-date"),
        pytest.param({"flowId": "abc"}, "flowId must be an integer", id="bad-flow-id"),
        pytest.param({"graph": "[1, 2]"}, "graph must be a JSON dict", id="graph-not-object"),
        pytest.param({"parameters": "{}"}, "parameters must be a JSON list", id="params-object"),
    ],
)
def test_one_bad_instance_is_rejected_and_the_batch_goes_on(
    change: dict[str, Any], reason: str
) -> None:
    good = load("seed_get_response.json")
    bad = dict(_base(), **change)
    frames = flatten([good, bad, _base()], source_tz=GMT8, extracted_at=WHEN)
    assert frames.tables["flow_instances"].column("instance_id").to_pylist() == [
        "2809-20190808093200",
        "2438-201907261239",
    ]
    failure = one(frames.tables["failed_instances"])
    assert failure["stage"] == "flatten"
    assert failure["error_class"] == "RecordError"
    assert reason in failure["message"]
    assert json.loads(failure["raw_json"])["flowName"] == "rew"


def test_expected_id_mismatch_is_an_error() -> None:
    with pytest.raises(RecordError, match="asked for 1-1 but the API answered"):
        flatten_instance(_base(), source_tz=UTC, extracted_at=WHEN, expected_id="1-1")


@pytest.mark.parametrize("empty", [None, [], {"code": 0, "data": None}], ids=["null", "[]", "env"])
def test_no_instance_is_an_error(empty: Any) -> None:
    with pytest.raises(RecordError, match="no instance"):
        flatten_instance(empty, source_tz=UTC, extracted_at=WHEN, expected_id="1-1")


def test_naive_times_are_read_in_the_server_zone_across_dst() -> None:
    new_york = ZoneInfo("America/New_York")
    record = dict(
        _base(),
        freq="0 30 2 * * ? *",
        triggerTime="2026-03-07 02:30:00",
        startTime="2026-03-08 03:30:00",
        endTime="2026-11-01 01:30:00",
    )
    row = one(flatten([record], source_tz=new_york, extracted_at=WHEN).tables["flow_instances"])
    assert row["trigger_time"] == utc(2026, 3, 7, 7, 30)  # EST, UTC-5
    assert row["start_time"] == utc(2026, 3, 8, 7, 30)  # EDT, UTC-4
    assert row["end_time"] == utc(2026, 11, 1, 5, 30)  # ambiguous hour: the first (EDT)
    # 02:30 does not exist on 8 March; the wall-clock fire lands at 03:30 EDT.
    assert row["next_trigger_time"] == utc(2026, 3, 8, 7, 30)


def test_pandas_view_keeps_integer_ids_and_utc() -> None:
    frames = flatten([load("seed_get_response.json")], source_tz=GMT8, extracted_at=WHEN)
    df = frames.instances
    assert str(df["flow_id"].dtype) == "Int64"
    assert str(df["trigger_time"].dtype) == "datetime64[us, UTC]"
    assert frames.tasks["instance_id"].tolist() == ["2809-20190808093200"]


# The fast path (typed decoding straight into columns) against the reference path.


def _both_paths(records: list[Any], tz: Any = GMT8, **kwargs: Any) -> tuple[Rows, Rows]:
    fast = flatten_records(records, source_tz=tz, extracted_at=WHEN, **kwargs)
    reference = flatten_records(records, source_tz=tz, extracted_at=WHEN, fast=False, **kwargs)
    return fast, reference


def _assert_same(fast: Rows, reference: Rows) -> None:
    got, want = build_frames(fast), build_frames(reference)
    for name, table in want.tables.items():
        if got.tables[name].equals(table):
            continue
        assert got.tables[name].num_rows == table.num_rows, name
        for column in table.column_names:
            values, expected = got.tables[name][column].to_pylist(), table[column].to_pylist()
            first = next((i for i, v in enumerate(expected) if values[i] != v), None)
            assert values == expected, (name, column, first, values[first], expected[first])
        raise AssertionError(f"{name}: same values, different types or chunks")
    assert fast.unknown_fields == reference.unknown_fields
    assert [(r.instance_id, r.reason, r.position) for r in fast.rejects] == [
        (r.instance_id, r.reason, r.position) for r in reference.rejects
    ]


def _population(quirk: str | None = None, **kwargs: Any) -> Population:
    rates: dict[Any, float] = {}
    if quirk is not None:
        rates = {quirk: 1}
        if quirk.startswith("relations-"):
            rates.update({q: 0 for q in QUIRKS if q.startswith("relations-") and q != quirk})
    return Population(seed=11, flows=40, quirk_rates=rates, **kwargs)


def _records(population: Population, n: int, *, envelopes: bool = False) -> list[Any]:
    get = population.envelope if envelopes else population.instance
    return [get(i) for i in population.ids(limit=n)]


@pytest.mark.parametrize(
    "tz",
    [GMT8, UTC, ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York")],
    ids=["GMT+8", "UTC", "Asia/Shanghai", "America/New_York"],
)
def test_fast_path_matches_the_reference_on_simulator_records(tz: Any) -> None:
    records = _records(Population(seed=5, flows=120), 3000)
    fast, reference = _both_paths(records, tz)
    assert fast.fast is not None and fast.fast.refused == []  # all took the fast path
    assert fast.instance_count == 3000
    _assert_same(fast, reference)


@pytest.mark.parametrize("quirk", QUIRKS)
def test_fast_path_matches_the_reference_for_each_quirk(quirk: str) -> None:
    records = _records(_population(quirk), 300, envelopes=quirk == "data-list")
    fast, reference = _both_paths(records, ZoneInfo("Asia/Shanghai"))
    assert fast.fast is not None and fast.fast.refused == []
    _assert_same(fast, reference)


def _graph_edit(record: dict[str, Any], edit: Any) -> dict[str, Any]:
    record = copy.deepcopy(record)
    graph = json.loads(record["graph"])
    edit(graph)
    record["graph"] = json.dumps(graph, ensure_ascii=False)
    return record


def _first_task(**changes: Any) -> Any:
    return lambda graph: graph["tasks"][0].update(changes)


_BAD_RECORDS: dict[str, Any] = {
    "undecodable-graph": {"graph": "{not json"},
    "impossible-timestamp": {"triggerTime": "2019-02-30 10:00:00"},
    "impossible-end-time": {"endTime": "2019-04-31 00:00:00"},
    "missing-id": {"instanceId": None},
    "integer-id": {"instanceId": 2438},
    "bad-date": {"calDt": "yesterday"},
    "bad-flow-id": {"flowId": "abc"},
    "flow-id-beyond-64-bits": {"flowId": 2**64},
    "graph-not-object": {"graph": "[1, 2]"},
    "params-object": {"parameters": "{}"},
    "params-without-key": {"parameters": '[{"value": 1}]'},
    "status-as-string": {"status": "-1"},
    "boolean-as-string": {"virtual": "false"},
    "epoch-milliseconds": {"startTime": 1564130377000},
    "iso-with-offset": {"triggerTime": "2019-07-26T20:39:00+08:00"},
    "padded-timestamp": {"timestamp": " 2019-07-26 12:38:30"},
    "beyond-2037": {"triggerTime": "2040-01-01 00:00:00"},
    "unknown-field": {"priority": 5},
    "no-graph": {"graph": None},
    "empty-graph": {"graph": ""},
}
_BAD_GRAPHS: dict[str, Any] = {
    "unknown-graph-field": lambda g: g.update(newGraphKey=[1]),
    "unknown-task-field": _first_task(retries=2),
    "task-without-id": _first_task(taskInstId=None),
    "task-id-not-a-number": _first_task(taskId="not-a-number"),
    "task-id-beyond-64-bits": _first_task(taskId=str(2**70)),
    "task-id-empty": _first_task(taskId=""),
    "task-id-padded": _first_task(taskId=" 104452 "),
    "task-id-float": _first_task(taskId=104452.0),
    "task-name-number": _first_task(taskName=7),
    "x-as-string": _first_task(x="0.5"),
    "node-id-empty": _first_task(nodeId=""),
    "duplicate-task": lambda g: g["tasks"].append(dict(g["tasks"][0])),
    "tasks-not-a-list": lambda g: g.update(tasks={"a": 1}),
    "relation-unknown-shape": lambda g: g.update(relations=[{"weird": "shape"}]),
    "relation-mixed-spellings": lambda g: g.update(
        relations=[{"source": "a", "target": "b"}, {"from": "b", "to": "c"}, ["c", "d"]]
    ),
    "relation-two-spellings": lambda g: g.update(
        relations=[{"from": "a", "to": "b", "source": "x", "target": "y"}]
    ),
    "relation-half-spelled": lambda g: g.update(
        relations=[{"source": "a", "from": "b", "to": "c"}]
    ),
    "relation-repeated": lambda g: g.update(relations=[["a", "b"], ["a", "b"], ["b", "c"]]),
    "relation-integer-node": lambda g: g.update(relations=[{"source": 1, "target": "b"}]),
    "relation-extra-key": lambda g: g.update(relations=[{"source": "a", "target": "b", "w": 1}]),
    "relation-empty-node": lambda g: g.update(relations=[{"from": "a", "to": ""}]),
    "relation-pair-of-three": lambda g: g.update(relations=[["a", "b"], ["b", "c", "d"]]),
    "relation-pre-node-then-pair": lambda g: g.update(
        relations=[{"preNodeId": "a", "nodeId": "b"}, ["b", "c"]]
    ),
    "flow-as-object": lambda g: g.update(flows=load("seed_flow_graph.json")),
    "flows-repeated-node": lambda g: g.update(flows=[load("seed_flow_graph.json")] * 2),
    "graph-parameters-only": lambda g: g.update(parameters='[{"key": "k", "value": [1]}]'),
    "graph-as-list-of-two": lambda g: g.update(),
}


def _bad(name: str) -> Any:
    base = _base()
    if name in _BAD_RECORDS:
        return dict(base, **_BAD_RECORDS[name])
    record = _graph_edit(base, _BAD_GRAPHS[name])
    if name == "graph-parameters-only":
        del record["parameters"]
    if name == "graph-as-list-of-two":
        graph = json.loads(record["graph"])
        record["graph"] = json.dumps([graph, graph])
    return record


@pytest.mark.parametrize("name", [*_BAD_RECORDS, *_BAD_GRAPHS])
def test_a_batch_mixing_good_and_odd_records_gives_the_reference_result(name: str) -> None:
    good = _records(Population(seed=3, flows=20), 40)
    odd = _bad(name)
    batch = [*good[:20], odd, *good[20:], odd, None, {"code": 0, "data": [odd]}]
    fast, reference = _both_paths(batch)
    _assert_same(fast, reference)
    assert fast.fast is not None
    assert not set(fast.fast.refused) & set(range(20))  # the good records stayed fast


def test_decoded_parameters_that_print_alike_are_not_confused() -> None:
    # The fast path remembers decoded parameter lists by their JSON text; these pairs
    # share a text but not a value, so each must be read on its own.
    lists: list[Any] = [
        [{"key": "k", "value": "1"}],
        [{"key": "k", "value": 1}],
        [{"key": "k", "value": 1.0}],
        [{"key": "k", "value": True}],
        [{"key": "k", "value": None}],
        [{"key": "k", "value": float("nan")}],
        [{"key": "k", "value": {"1": "x"}}],
        [{"key": "k", "value": {1: "x"}}],
        [{"key": "k", "1": "x"}],
        [{"key": "k", 1: "x"}],
    ]
    records = [dict(_base(), instanceId=f"1-{i}", parameters=p) for i, p in enumerate(lists * 2)]
    fast, reference = _both_paths(records)
    _assert_same(fast, reference)


def test_fast_path_refuses_what_it_does_not_know() -> None:
    odd = [_bad(name) for name in ("unknown-field", "duplicate-task", "impossible-timestamp")]
    fast, _ = _both_paths([_base(), *odd])
    assert fast.fast is not None and fast.fast.refused == [1, 2, 3]
    assert [r.reason for r in fast.rejects] == [
        "triggerTime is not a valid timestamp: '2019-02-30 10:00:00'"
    ]
    assert fast.unknown_fields == {"priority": 1}


def test_expected_ids_and_extraction_times_per_record() -> None:
    records = _records(Population(seed=3, flows=20), 6)
    ids = [r["instanceId"] for r in records]
    ids[2] = "1-1"
    times = [WHEN + timedelta(seconds=i) for i in range(6)]
    fast = flatten_records(records, source_tz=GMT8, extracted_at=times, expected_ids=ids)
    reference = flatten_records(
        records, source_tz=GMT8, extracted_at=times, expected_ids=ids, fast=False
    )
    _assert_same(fast, reference)
    assert [(r.instance_id, r.position) for r in fast.rejects] == [("1-1", 2)]
    extracted = build_frames(fast).tables["flow_instances"]["extracted_at"].to_pylist()
    assert extracted == times[:2] + times[3:]


_MUTATIONS: tuple[Any, ...] = (
    None,
    "",
    0,
    1,
    -1,
    2**63,
    1.5,
    2.0,
    True,
    "x",
    "17",
    " 17 ",
    "true",
    "2019-07-26 12:39:00",
    [],
    {},
    [["a", "b"]],
    {"k": 1},
)


def _mutate(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Set one random field at one random level to one random odd value."""
    record = copy.deepcopy(record)
    value = rng.choice(_MUTATIONS)
    graph = json.loads(record["graph"])
    where = rng.randrange(5)
    if where == 0:
        record[rng.choice([*record, "extra"])] = value
        return record
    if where == 1:
        graph[rng.choice([*graph, "extra"])] = value
    elif where == 2 and graph["tasks"]:
        task = rng.choice(graph["tasks"])
        task[rng.choice([*task, "extra"])] = value
    elif where == 3 and graph["relations"]:
        relation = rng.choice(graph["relations"])
        if isinstance(relation, dict):
            relation[rng.choice([*relation, "from", "extra"])] = value
        else:
            relation[rng.randrange(2)] = value
    elif where == 4 and graph["flows"]:
        flow = rng.choice(graph["flows"])
        flow[rng.choice([*flow, "extra"])] = value
    record["graph"] = json.dumps(graph, ensure_ascii=False)
    return record


def test_fast_path_matches_the_reference_on_mutated_records() -> None:
    rng = random.Random(20261125)
    records = [
        r for r in _records(Population(seed=9, flows=60), 1500) if isinstance(r["graph"], str)
    ]
    mutated = [_mutate(r, rng) if i % 2 else r for i, r in enumerate(records)]
    fast, reference = _both_paths(mutated, ZoneInfo("Europe/Berlin"))
    _assert_same(fast, reference)
    assert fast.fast is not None and len(fast.fast.refused) < len(records) * 0.4


@pytest.mark.parametrize(
    "zone", ["America/New_York", "Europe/London", "Australia/Lord_Howe", "America/Santiago"]
)
def test_fast_path_reads_wall_clock_times_like_zoneinfo_across_transitions(zone: str) -> None:
    tz = ZoneInfo(zone)
    records = []
    moment = datetime(2025, 1, 1, 0, 7, 30)
    while moment < datetime(2027, 1, 1):
        # Walk the year in 15-minute steps near each offset change, in days elsewhere.
        near = any(
            tz.utcoffset(moment + timedelta(hours=h)) != tz.utcoffset(moment) for h in (-3, 3)
        )
        text = f"{moment:%Y-%m-%d %H:%M:%S}"
        record = dict(_base(), triggerTime=text, startTime=text, endTime=text, timestamp=text)
        record["freq"] = "0 0/15 * * * ? *" if near else "0 30 2 * * ? *"
        records.append(record)
        moment += timedelta(minutes=15) if near else timedelta(hours=23)
    fast, reference = _both_paths(records, tz)
    assert fast.fast is not None and fast.fast.refused == []
    _assert_same(fast, reference)


def test_fast_path_follows_zoneinfo_into_a_spring_forward_gap() -> None:
    record = dict(_base(), triggerTime="2026-03-08 02:30:00", freq="0 0/20 * * * ? *")
    rows = flatten_records([record], source_tz=ZoneInfo("America/New_York"), extracted_at=WHEN)
    assert rows.fast is not None and rows.fast.refused == []
    row = one(build_frames(rows).tables["flow_instances"])
    assert row["trigger_time"] == utc(2026, 3, 8, 7, 30)  # the offset before the gap, EST
    assert row["next_trigger_time"] == utc(2026, 3, 8, 7, 40)


@pytest.mark.parametrize(
    "freq",
    [
        "0 0/15 * * * ? *",
        "0/10 * * * * ? *",
        "0 0 0/6 * * ? *",
        "0 30 2 * * ? *",
        "0 0 12 ? * MON *",
        "0 0 12 ? * MON-FRI *",
        "0 1/1 * * * ? *",
        "0 0 0 L * ? *",
        "0 0 0 1 1 ? 2026",
        "not a cron",
    ],
)
def test_fast_path_next_fires_match_the_schedule(freq: str) -> None:
    rng = random.Random(freq)
    base = datetime(2024, 1, 1)
    records = []
    for _ in range(200):
        moment = base + timedelta(seconds=rng.randrange(3 * 366 * 86400))
        if rng.random() < 0.7:  # mostly fire times, as real triggers are
            moment = moment.replace(second=0, minute=moment.minute // 15 * 15)
        text = f"{moment:%Y-%m-%d %H:%M:%S}" + rng.choice(["", ".0", ".5"])
        records.append(dict(_base(), freq=freq, triggerTime=text))
    fast, reference = _both_paths(records, ZoneInfo("Europe/Paris"))
    _assert_same(fast, reference)


def test_values_beyond_64_bits_cost_the_element_not_the_batch() -> None:
    task = {"taskInstId": "1-x", "taskId": str(2**70)}
    records = [
        _with_graph(_base(), tasks=[task]),
        dict(_base(), instanceId="2-y", flowId=2**64),
        dict(_base(), instanceId={"id": 3}),
    ]
    frames = flatten(records, source_tz=GMT8, extracted_at=WHEN)
    quarantined = one(frames.tables["quarantined_values"])
    assert quarantined["reason"] == f"taskId does not fit in 64 bits: '{2**70}'"
    assert [f["message"] for f in frames.tables["failed_instances"].to_pylist()] == [
        f"flowId does not fit in 64 bits: {2**64}",
        "instanceId: expected an ID, got dict {'id': 3}",
    ]


def test_a_zone_arrow_cannot_vouch_for_sends_every_record_the_reference_way() -> None:
    tokyo = ZoneInfo.no_cache("Asia/Tokyo")  # may differ from the zone its key names
    records = _records(Population(seed=3, flows=20), 30)
    fast, reference = _both_paths(records, tokyo)
    assert fast.fast is not None and fast.fast.refused == list(range(30))
    _assert_same(fast, reference)


# List Flow Instances' spelling of the same records.


def test_listed_records_take_the_fast_path_and_match_the_reference() -> None:
    population = Population(seed=5, flows=60)
    records = [population.instance(i, listed=True) for i in population.ids(limit=1500)]
    fast, reference = _both_paths(records)
    assert fast.fast is not None and fast.fast.refused == []
    _assert_same(fast, reference)
    assert not fast.unknown_fields, "isCancelled, task_name and task_id are known fields"


def test_listed_and_fetched_records_give_the_same_rows_but_for_what_lists_lack() -> None:
    population = Population(seed=5, flows=30)
    ids = list(population.ids(limit=300))
    got = flatten([population.instance(i, listed=True) for i in ids], source_tz=GMT8)
    full = flatten([population.instance(i) for i in ids], source_tz=GMT8)
    lacking = {"is_cancelled", "cal_dt", "failed_task_count"}
    lacking |= {"alert_to", "app_id", "extracted_at"}  # graph keys the list spelling omits
    for column in full.instances.columns:
        if column not in lacking:
            assert got.instances[column].equals(full.instances[column]), column
    assert got.instances["cal_dt"].isna().all()
    cancelled = got.instances["status"] == 8
    assert (got.instances["is_cancelled"] == cancelled).all() and cancelled.any()
    shared = ["task_inst_id", "instance_id", "task_id", "task_name", "node_id", "x", "y"]
    assert got.tasks[shared].equals(full.tasks[shared])
    assert got.tasks["status"].isna().all()
    for name in ("dependencies", "relations", "parameters"):
        assert getattr(got, name).equals(getattr(full, name)), name


@pytest.mark.parametrize(
    ("zone", "offset_h"),
    [
        pytest.param("GMT+8", 8, id="get-time-zone-name"),
        pytest.param("Asia/Shanghai", 8, id="iana-name"),
        pytest.param(ZoneInfo("America/New_York"), -5, id="tzinfo"),
    ],
)
def test_flatten_takes_a_zone_name_or_a_tzinfo(zone: Any, offset_h: int) -> None:
    raw = {"instanceId": "1-2", "triggerTime": "2026-01-01 12:00:00"}
    frames = flatten([raw], source_tz=zone)
    trigger = frames.instances["trigger_time"].iloc[0]
    assert trigger == pd.Timestamp("2026-01-01 12:00", tz="UTC") - pd.Timedelta(hours=offset_h)


@pytest.mark.parametrize("zone", [8, None, b"GMT+8", 8.0], ids=repr)
def test_flatten_refuses_anything_else_as_a_zone(zone: Any) -> None:
    with pytest.raises(TypeError, match="source_tz must be a tzinfo or a zone name"):
        flatten([{"instanceId": "1-2"}], source_tz=zone)


def test_flatten_names_an_unknown_zone() -> None:
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        flatten([{"instanceId": "1-2"}], source_tz="Mars/Olympus")
