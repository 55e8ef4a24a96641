"""The flattener against the API documentation's own examples and each documented quirk."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from extractor import flatten
from extractor.errors import RecordError
from extractor.flatten import flatten_instance
from extractor.frames import arrow_schema
from extractor.schema import TABLES

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
