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
import pyarrow.compute as pc
import pytest

from extractor import flatten
from extractor.errors import ConfigError, RecordError
from extractor.simulator import QUIRKS, Population
from extractor.tables._flattener import Rows, flatten_instance, flatten_records
from extractor.tables._frames import arrow_schema, build_frames
from extractor.tables._schema import TABLES

FIXTURES = Path(__file__).parents[1] / "fixtures"
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


# Whole batches: simulator records, each quirk, odd records, odd values anywhere.


def _records(population: Population, n: int, *, envelopes: bool = False) -> list[Any]:
    get = population.envelope if envelopes else population.instance
    return [get(i) for i in population.ids(limit=n)]


def _as_utc(text: str, tz: Any) -> datetime:
    """The UTC instant of a naive server time: the first reading of an ambiguous one."""
    return datetime.fromisoformat(text).replace(tzinfo=tz).astimezone(UTC)


@pytest.mark.parametrize(
    "tz",
    [GMT8, UTC, ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York")],
    ids=["GMT+8", "UTC", "Asia/Shanghai", "America/New_York"],
)
def test_simulator_records_flatten_whole(tz: Any) -> None:
    records = _records(Population(seed=5, flows=120), 3000)
    rows = flatten_records(records, source_tz=tz, extracted_at=WHEN)
    assert not rows.rejects and not len(rows.quarantine) and not rows.unknown_fields
    frames = build_frames(rows)
    instances = frames.tables["flow_instances"].to_pylist()
    assert [r["instance_id"] for r in instances] == [r["instanceId"] for r in records]
    graphs = [
        json.loads(r["graph"]) if isinstance(r["graph"], str) else r["graph"] for r in records
    ]
    for record, graph, row in zip(records, graphs, instances, strict=True):
        assert row["trigger_time"] == _as_utc(record["triggerTime"], tz)
        assert row["status_name"] == record["statusDesc"]
        assert row["task_count"] == len(graph["tasks"])
        assert row["cal_dt"] == date.fromisoformat(record["calDt"])
    tasks = frames.tables["task_instances"]
    assert tasks.num_rows == sum(len(g["tasks"]) for g in graphs)
    assert tasks.column("task_inst_id").to_pylist() == [
        t["taskInstId"] for g in graphs for t in g["tasks"]
    ]


@pytest.mark.parametrize("quirk", QUIRKS)
def test_each_quirk_is_a_spelling_that_changes_no_row(quirk: str) -> None:
    rates: dict[Any, float] = {q: 0 for q in QUIRKS}
    clean = _records(Population(seed=11, flows=40, quirk_rates=rates), 300)
    rates[quirk] = 1
    quirky = _records(
        Population(seed=11, flows=40, quirk_rates=rates), 300, envelopes=quirk == "data-list"
    )
    want = build_frames(flatten_records(clean, source_tz=GMT8, extracted_at=WHEN)).tables
    rows = flatten_records(quirky, source_tz=GMT8, extracted_at=WHEN)
    got = build_frames(rows).tables
    assert not rows.rejects and not rows.unknown_fields
    # Two quirks carry information: the graph's own spellings of two fields, and the
    # graph of another instance (the documentation's response example).
    changes = {
        "graph-extra-keys": {"flow_instances": {"alert_to", "app_id"}},
        "graph-other-instance": {
            "flow_instances": {"graph_instance_id"},
            "task_instances": {"task_inst_id"},
        },
    }.get(quirk, {})
    for name, table in want.items():
        changed = changes.get(name, set())
        assert got[name].drop_columns(list(changed)).equals(table.drop_columns(list(changed)))
        for column in changed:
            assert got[name][column] != table[column], (name, column)
    if quirk == "graph-other-instance":
        graph_ids = got["flow_instances"].column("graph_instance_id").to_pylist()
        ids = got["flow_instances"].column("instance_id").to_pylist()
        assert all(g != i for g, i in zip(graph_ids, ids, strict=True))


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


_NO_GRAPH = dict.fromkeys(
    ("creator", "owners", "alert_to", "app_id", "graph_instance_id", "task_count"),
    None,
) | {"failed_task_count": None}


def _task_lost(reason: str) -> dict[str, Any]:
    return {
        "flow_instances": {"task_count": 0},
        "task_instances": [],
        "quarantined_values": [("graph.tasks", reason)],
    }


# What an odd record that loads changes against the base record: instance columns, task
# columns by task, whole quarantine and relation lists, or a table's row count.
_LOADED: dict[str, dict[str, Any]] = {
    "integer-id": {
        "flow_instances": {"instance_id": "2438"},
        "task_instances": [{"instance_id": "2438"}],
    },
    "params-without-key": {
        "flow_instances": {"parameters_json": '[{"value":1}]'},
        "quarantined_values": [("parameters", "parameter without key")],
    },
    "status-as-string": {
        "flow_instances": {"status": -1, "status_name": "FAIL", "is_terminal": True}
    },
    "boolean-as-string": {},
    "epoch-milliseconds": {
        "flow_instances": {
            "start_time": utc(2019, 7, 26, 8, 39, 37),
            "duration_s": -14395.0,
            "start_delay_s": -14363.0,
        }
    },
    "iso-with-offset": {},
    "padded-timestamp": {},
    "beyond-2037": {
        "flow_instances": {
            "trigger_time": utc(2039, 12, 31, 16),
            "start_delay_s": -644844023.0,
            "next_trigger_time": utc(2039, 12, 31, 16, 1),
        }
    },
    "unknown-field": {"flow_instances": {"extra_json": '{"priority":5}'}},
    "no-graph": {"flow_instances": _NO_GRAPH, "task_instances": []},
    "empty-graph": {"flow_instances": _NO_GRAPH, "task_instances": []},
    "unknown-graph-field": {"flow_instances": {"extra_json": '{"graph.newGraphKey":[1]}'}},
    "unknown-task-field": {"task_instances": [{"extra_json": '{"retries":2}'}]},
    "task-without-id": _task_lost("task without taskInstId"),
    "task-id-not-a-number": _task_lost("taskId must be an integer, got 'not-a-number'"),
    "task-id-beyond-64-bits": _task_lost(f"taskId does not fit in 64 bits: '{2**70}'"),
    "task-id-empty": {"task_instances": [{"task_id": None}]},
    "task-id-padded": {},
    "task-id-float": {},
    "task-name-number": {"task_instances": [{"task_name": "7"}]},
    "x-as-string": {"task_instances": [{"x": 0.5}]},
    "node-id-empty": {"task_instances": [{"node_id": None}]},
    "duplicate-task": {
        "quarantined_values": [("graph.tasks", "duplicate taskInstId 104452-201907261239")]
    },
    "relation-unknown-shape": {
        "quarantined_values": [("graph.relations", "unknown relation shape")]
    },
    "relation-mixed-spellings": {"task_relations": [("a", "b"), ("b", "c"), ("c", "d")]},
    "relation-two-spellings": {"task_relations": [("x", "y")]},
    "relation-half-spelled": {"task_relations": [("b", "c")]},
    "relation-repeated": {"task_relations": [("a", "b"), ("b", "c")]},
    "relation-integer-node": {"task_relations": [("1", "b")]},
    "relation-extra-key": {"task_relations": [("a", "b")]},
    "relation-empty-node": {"quarantined_values": [("graph.relations", "unknown relation shape")]},
    "relation-pair-of-three": {
        "task_relations": [("a", "b")],
        "quarantined_values": [("graph.relations", "unknown relation shape")],
    },
    "relation-pre-node-then-pair": {"task_relations": [("a", "b"), ("b", "c")]},
    "flow-as-object": {"flow_dependencies": 1},
    "flows-repeated-node": {
        "flow_dependencies": 1,
        "quarantined_values": [("graph.flows", "duplicate nodeId f_2809")],
    },
    "graph-parameters-only": {
        "flow_instances": {"parameters_json": '[{"key":"k","value":[1]}]'},
        "flow_parameters": 1,
    },
}
_REJECTED = {
    "undecodable-graph": "graph is not valid JSON",
    "impossible-timestamp": "triggerTime is not a valid timestamp: '2019-02-30 10:00:00'",
    "impossible-end-time": "endTime is not a valid timestamp: '2019-04-31 00:00:00'",
    "missing-id": "missing instanceId",
    "bad-date": "calDt is not a valid date: 'yesterday'",
    "bad-flow-id": "flowId must be an integer, got 'abc'",
    "flow-id-beyond-64-bits": f"flowId does not fit in 64 bits: {2**64}",
    "graph-not-object": "graph must be a JSON dict, got list",
    "params-object": "parameters must be a JSON list, got dict",
    "tasks-not-a-list": "graph.tasks must be a list, got dict",
    "graph-as-list-of-two": "graph must be a JSON dict, got list",
}


def _table_summary(rows: Rows) -> dict[str, Any]:
    """Each table's rows, with quarantine and relations as the tuples the tests name."""
    tables = {name: list(columns) for name, columns in rows.by_table().items()}
    tables["quarantined_values"] = [(r["field"], r["reason"]) for r in tables["quarantined_values"]]
    tables["task_relations"] = [
        (r["from_node_id"], r["to_node_id"]) for r in tables["task_relations"]
    ]
    return tables


def _expected(changes: dict[str, Any]) -> dict[str, Any]:
    """The base record's tables with an odd record's documented changes applied."""
    want = _table_summary(flatten_records([_base()], source_tz=GMT8, extracted_at=WHEN))
    for name, change in changes.items():
        if isinstance(change, int):
            continue  # a count, checked on its own
        if name == "flow_instances":
            want[name] = [dict(want[name][0], **change)]
        elif name == "task_instances" and change:
            want[name] = [dict(row, **c) for row, c in zip(want[name], change, strict=True)]
        else:
            want[name] = change
    return want


@pytest.mark.parametrize("name", [*_BAD_RECORDS, *_BAD_GRAPHS])
def test_an_odd_record_costs_only_itself(name: str) -> None:
    good = _records(Population(seed=3, flows=20), 40)
    odd = _bad(name)
    rows = flatten_records([*good[:20], odd, *good[20:]], source_tz=GMT8, extracted_at=WHEN)
    alone = flatten_records(good, source_tz=GMT8, extracted_at=WHEN)
    if name in _REJECTED:
        assert [(r.position, r.instance_id) for r in rows.rejects] == [
            (20, "#record-20" if name == "missing-id" else "2438-201907261239")
        ]
        assert _REJECTED[name] in rows.rejects[0].reason
        assert build_frames(rows).tables == build_frames(alone).tables
        return
    assert not rows.rejects
    got = flatten_records([odd], source_tz=GMT8, extracted_at=WHEN)
    summary, changes = _table_summary(got), _LOADED[name]
    want = _expected(changes)
    for table, count in changes.items():
        if isinstance(count, int):
            assert len(summary.pop(table)) == count
            want.pop(table)
    assert summary == want
    # The good records' rows are those they have alone, before and after the odd one.
    tables, good_tables = build_frames(rows).tables, build_frames(alone).tables
    for table in ("flow_instances", "task_instances"):
        kept = tables[table].filter(
            pc.invert(
                pc.is_in(
                    tables[table]["instance_id"], pa.array([got.instances.values["instance_id"][0]])
                )
            )
        )
        assert kept.equals(good_tables[table]), table


def test_decoded_parameters_keep_their_values_apart() -> None:
    values: list[Any] = ["1", 1, 1.0, True, None, {"1": "x"}, {1: "x"}, [1, "a"]]
    lists = [[{"key": "k", "value": v}] for v in values] + [[{"key": "k", "1": "x"}]]
    records = [dict(_base(), instanceId=f"1-{i}", parameters=p) for i, p in enumerate(lists)]
    frames = build_frames(flatten_records(records, source_tz=GMT8, extracted_at=WHEN))
    texts = frames.tables["flow_parameters"].column("value").to_pylist()
    assert texts == ["1", "1", "1.0", "true", None, '{"1":"x"}', '{"1":"x"}', '[1,"a"]', None]


def test_expected_ids_and_extraction_times_per_record() -> None:
    records = _records(Population(seed=3, flows=20), 6)
    ids = [r["instanceId"] for r in records]
    ids[2] = "1-1"
    times = [WHEN + timedelta(seconds=i) for i in range(6)]
    rows = flatten_records(records, source_tz=GMT8, extracted_at=times, expected_ids=ids)
    assert [(r.instance_id, r.position) for r in rows.rejects] == [("1-1", 2)]
    assert "asked for 1-1 but the API answered with" in rows.rejects[0].reason
    extracted = build_frames(rows).tables["flow_instances"]["extracted_at"].to_pylist()
    assert extracted == times[:2] + times[3:]
    assert not [t for t in rows.tasks if t["instance_id"] == records[2]["instanceId"]]


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


def test_odd_values_anywhere_cost_at_most_their_own_record() -> None:
    rng = random.Random(20261125)
    records = [
        r for r in _records(Population(seed=9, flows=60), 1500) if isinstance(r["graph"], str)
    ]
    mutated = [_mutate(r, rng) if i % 2 else r for i, r in enumerate(records)]
    rows = flatten_records(mutated, source_tz=ZoneInfo("Europe/Berlin"), extracted_at=WHEN)
    frames = build_frames(rows)  # every value fits its declared column
    assert frames.tables["flow_instances"].num_rows + len(rows.rejects) == len(mutated)
    assert all(r.position % 2 for r in rows.rejects), "only mutated records may be rejected"
    assert 0 < len(rows.rejects) < len(mutated) * 0.2
    untouched = mutated[::2]
    alone = build_frames(
        flatten_records(untouched, source_tz=ZoneInfo("Europe/Berlin"), extracted_at=WHEN)
    ).tables["flow_instances"]
    ids = pa.array([r["instanceId"] for r in untouched])
    table = frames.tables["flow_instances"]
    assert table.filter(pc.is_in(table["instance_id"], ids)).equals(alone)


@pytest.mark.parametrize(
    ("zone", "text", "expected"),
    [
        pytest.param(
            "Europe/London", "2026-03-29 01:30:00", utc(2026, 3, 29, 1, 30), id="London-gap"
        ),
        pytest.param(
            "Europe/London", "2026-10-25 01:30:00", utc(2026, 10, 25, 0, 30), id="London-fold"
        ),
        pytest.param(
            "Australia/Lord_Howe",
            "2026-10-04 02:15:00",
            utc(2026, 10, 3, 15, 45),
            id="Lord-Howe-gap",
        ),
        pytest.param(
            "Australia/Lord_Howe",
            "2026-04-05 01:45:00",
            utc(2026, 4, 4, 14, 45),
            id="Lord-Howe-fold",
        ),
        pytest.param(
            "America/Santiago", "2026-09-06 00:30:00", utc(2026, 9, 6, 4, 30), id="Santiago-gap"
        ),
        pytest.param(
            "America/Santiago", "2026-04-04 23:30:00", utc(2026, 4, 5, 2, 30), id="Santiago-fold"
        ),
        pytest.param("Asia/Shanghai", "2040-07-01 08:00:00", utc(2040, 7, 1), id="beyond-2037"),
    ],
)
def test_wall_clock_times_at_offset_changes(zone: str, text: str, expected: datetime) -> None:
    # A time the clocks skip keeps the offset from before the gap; a time they repeat is
    # its first occurrence (zoneinfo's fold=0).
    record = dict(_base(), triggerTime=text, startTime=text, endTime=text, timestamp=text)
    rows = flatten_records([record], source_tz=ZoneInfo(zone), extracted_at=WHEN)
    row = one(build_frames(rows).tables["flow_instances"])
    assert (row["trigger_time"], row["start_time"], row["end_time"]) == (expected,) * 3
    assert row["record_time"] == expected


def test_next_trigger_follows_the_wall_clock_into_a_spring_forward_gap() -> None:
    record = dict(_base(), triggerTime="2026-03-08 02:30:00", freq="0 0/20 * * * ? *")
    rows = flatten_records([record], source_tz=ZoneInfo("America/New_York"), extracted_at=WHEN)
    row = one(build_frames(rows).tables["flow_instances"])
    assert row["trigger_time"] == utc(2026, 3, 8, 7, 30)  # the offset before the gap, EST
    assert row["next_trigger_time"] == utc(2026, 3, 8, 7, 40)


@pytest.mark.parametrize(
    ("freq", "trigger", "expected"),
    [
        ("0 0/15 * * * ? *", "2026-05-29 10:07:30", utc(2026, 5, 29, 8, 15)),
        ("0 0/15 * * * ? *", "2026-05-29 10:15:00.0", utc(2026, 5, 29, 8, 30)),
        ("0 0 12 ? * MON-FRI *", "2026-05-29 13:00:00", utc(2026, 6, 1, 10)),
        ("0 0 0 L * ? *", "2026-02-10 00:00:00", utc(2026, 2, 27, 23)),
        ("0 0 0 1 1 ? 2026", "2026-06-01 00:00:00", None),
        ("not a cron", "2026-06-01 00:00:00", None),
    ],
)
def test_next_trigger_time_in_the_server_zone(
    freq: str, trigger: str, expected: datetime | None
) -> None:
    record = dict(_base(), freq=freq, triggerTime=trigger)
    rows = flatten_records([record], source_tz=ZoneInfo("Europe/Paris"), extracted_at=WHEN)
    row = one(build_frames(rows).tables["flow_instances"])
    assert row["next_trigger_time"] == expected
    assert row["cron_is_valid"] is (freq != "not a cron")


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


# List Flow Instances' spelling of the same records.


def test_listed_records_flatten_whole() -> None:
    population = Population(seed=5, flows=60)
    records = [population.instance(i, listed=True) for i in population.ids(limit=1500)]
    rows = flatten_records(records, source_tz=GMT8, extracted_at=WHEN)
    assert rows.instance_count == 1500 and not rows.rejects and not len(rows.quarantine)
    assert not rows.unknown_fields, "isCancelled, task_name and task_id are known fields"


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
