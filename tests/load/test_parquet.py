"""The Parquet loader: hive partitions by cal_dt, replacement on re-load, atomic files."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from parquet_reads import partitions, read, snapshot, task_owners
from sample_frames import (
    DAY,
    NEXT_DAY,
    assert_reads_back,
    expected_rows,
    failure,
    frames_with_a_null_day,
    graph,
    instance,
    make_frames,
    sample_frames,
    task,
)

import extractor.load._parquet_files as parquet_files
from extractor.errors import LoadError
from extractor.load import parquet_partitioning, read_parquet, write_parquet
from extractor.tables._frames import FlowFrames, arrow_schema
from extractor.tables._schema import DATA_TABLES, FAILURES, INSTANCES, TABLES, TASKS


def test_every_table_reads_back_exactly(tmp_path: Path):
    frames = sample_frames()

    result = write_parquet(frames, tmp_path)

    for t in TABLES:
        assert read(tmp_path, t) == expected_rows(frames, t), t.name
    assert result.rows_written == {t.name: frames.tables[t.name].num_rows for t in TABLES}


def test_datasets_are_hive_partitioned_by_the_parents_cal_dt(tmp_path: Path):
    frames = make_frames(
        {
            INSTANCES: [instance("a", cal_dt=DAY), instance("b", cal_dt=None)],
            TASKS: [task("ta", "a"), task("tb", "b")],
        }
    )

    write_parquet(frames, tmp_path)

    assert partitions(tmp_path, TASKS) == [
        "cal_dt=2026-01-31",
        "cal_dt=__HIVE_DEFAULT_PARTITION__",
    ]
    assert (tmp_path / "tasks_instances").exists() is False
    assert sorted(p.name for p in (tmp_path / FAILURES.name).iterdir()) == ["part-0.parquet"]
    hive = ds.dataset(tmp_path / TASKS.name, partitioning="hive").to_table()
    assert sorted(
        zip(hive["task_inst_id"].to_pylist(), hive["cal_dt"].to_pylist(), strict=True)
    ) == [
        ("ta", "2026-01-31"),
        ("tb", None),
    ]


def test_files_carry_the_declared_arrow_types(tmp_path: Path):
    write_parquet(sample_frames(), tmp_path)

    for t in DATA_TABLES:
        dataset = ds.dataset(tmp_path / t.name, partitioning=parquet_partitioning())
        for field in arrow_schema(t):
            assert dataset.schema.field(field.name).type == field.type, (t.name, field.name)
    instances = ds.dataset(tmp_path / INSTANCES.name, partitioning=parquet_partitioning())
    assert instances.schema.field("trigger_time").type == pa.timestamp("us", tz="UTC")


def test_pandas_reads_a_dataset(tmp_path: Path):
    frames = sample_frames()
    write_parquet(frames, tmp_path)

    typed = pd.read_parquet(tmp_path / INSTANCES.name, partitioning=parquet_partitioning())
    plain = pd.read_parquet(tmp_path / TASKS.name)

    assert str(typed["trigger_time"].dt.tz) == "UTC"
    assert sorted(typed["trigger_time"].tolist()) == sorted(frames.instances["trigger_time"])
    assert sorted(typed["cal_dt"].tolist()) == [DAY, NEXT_DAY]
    assert sorted(plain["task_inst_id"].tolist()) == ["t-1a", "t-1b", "t-2a"]
    assert sorted(plain["cal_dt"].astype(str).tolist()) == [
        "2026-01-31",
        "2026-01-31",
        "2026-02-01",
    ]


def test_read_parquet_gives_back_every_table_typed_as_declared(tmp_path: Path):
    frames = frames_with_a_null_day()
    write_parquet(frames, tmp_path)
    write_parquet(frames, tmp_path)  # an upsert over the same rows

    back = read_parquet(tmp_path)

    assert_reads_back(back, frames)
    assert back.instances["cal_dt"].isna().sum() == 1  # the null partition, read by pandas


def test_read_parquet_of_a_new_directory_is_empty_and_of_a_file_fails(tmp_path: Path):
    assert all(t.num_rows == 0 for t in read_parquet(tmp_path).tables.values())
    (tmp_path / "file").write_text("x")
    with pytest.raises(LoadError, match="not a directory"):
        read_parquet(tmp_path / "file")


def test_duckdb_reads_a_dataset(tmp_path: Path):
    duckdb = pytest.importorskip("duckdb")
    write_parquet(sample_frames(), tmp_path)

    pattern = str(tmp_path / TASKS.name / "*" / "*.parquet")
    count = duckdb.sql(f"SELECT count(*) FROM read_parquet('{pattern}', hive_partitioning=1)")

    assert count.fetchall() == [(3,)]


def test_reloading_replaces_rows_without_duplicates(tmp_path: Path):
    frames = sample_frames()
    write_parquet(frames, tmp_path)
    before = snapshot(tmp_path)

    result = write_parquet(frames, tmp_path)

    for t in TABLES:
        assert read(tmp_path, t) == expected_rows(frames, t), t.name
    assert snapshot(tmp_path).keys() == before.keys()
    assert result.instances_replaced == 2


def test_a_child_that_vanished_is_deleted_on_reload(tmp_path: Path):
    write_parquet(FlowFrames.concat([graph("a", ["a1", "a2"]), graph("b", ["b1"])]), tmp_path)

    write_parquet(graph("a", ["a2"]), tmp_path)

    assert task_owners(tmp_path) == {"a2": "a", "b1": "b"}


def test_partitions_the_batch_does_not_touch_are_left_byte_identical(tmp_path: Path):
    write_parquet(graph("old", ["o1"], cal_dt=date(2025, 12, 1)), tmp_path)
    write_parquet(graph("a", ["a1"], cal_dt=DAY), tmp_path)
    untouched = {k: v for k, v in snapshot(tmp_path).items() if "2025-12-01" in k}
    mtimes = {k: (tmp_path / k).stat().st_mtime_ns for k in untouched}

    write_parquet(graph("a", ["a1", "a2"], cal_dt=DAY), tmp_path)

    assert len(untouched) == 3  # instances, tasks, parameters
    after = snapshot(tmp_path)
    assert {k: after[k] for k in untouched} == untouched
    assert {k: (tmp_path / k).stat().st_mtime_ns for k in untouched} == mtimes


def test_an_instance_that_moved_to_another_cal_dt_leaves_its_old_partition(tmp_path: Path):
    write_parquet(FlowFrames.concat([graph("a", ["a1"]), graph("b", ["b1"])]), tmp_path)

    write_parquet(graph("a", ["a1"], cal_dt=NEXT_DAY), tmp_path)

    instances = {r["instance_id"]: r["cal_dt"] for r in read(tmp_path, INSTANCES)}
    assert instances == {"a": NEXT_DAY, "b": DAY}
    hive = ds.dataset(tmp_path / TASKS.name, partitioning=parquet_partitioning()).to_table()
    assert sorted(
        zip(hive["task_inst_id"].to_pylist(), hive["cal_dt"].to_pylist(), strict=True)
    ) == [
        ("a1", NEXT_DAY),
        ("b1", DAY),
    ]


def test_an_emptied_partition_is_removed(tmp_path: Path):
    write_parquet(graph("a", ["a1"]), tmp_path)

    write_parquet(graph("a", ["a1"], cal_dt=None), tmp_path)

    assert partitions(tmp_path, INSTANCES) == ["cal_dt=__HIVE_DEFAULT_PARTITION__"]


def test_a_task_claimed_by_an_instance_in_another_partition_moves(tmp_path: Path):
    write_parquet(graph("a", ["t1", "t2"], cal_dt=DAY), tmp_path)

    write_parquet(graph("b", ["t2"], cal_dt=NEXT_DAY), tmp_path)

    assert task_owners(tmp_path) == {"t1": "a", "t2": "b"}


def test_a_lost_index_is_rebuilt_from_the_files(tmp_path: Path):
    write_parquet(FlowFrames.concat([graph("a", ["a1"]), graph("b", ["b1"])]), tmp_path)
    for index in tmp_path.glob("*/_instances.arrow"):
        index.unlink()

    write_parquet(graph("a", ["a2"], cal_dt=NEXT_DAY), tmp_path)

    assert task_owners(tmp_path) == {"a2": "a", "b1": "b"}
    assert [r["instance_id"] for r in read(tmp_path, INSTANCES)] == ["a", "b"]


def test_rows_of_an_older_file_get_new_columns_as_nulls(tmp_path: Path):
    write_parquet(graph("a", ["a1"]), tmp_path)
    file = tmp_path / TASKS.name / "cal_dt=2026-01-31" / "part-0.parquet"
    pq.write_table(pq.read_table(file).drop_columns(["x", "extra_json"]), file)

    write_parquet(graph("b", ["b1"]), tmp_path)

    rows = {r["task_inst_id"]: r for r in read(tmp_path, TASKS)}
    assert (rows["a1"]["x"], rows["a1"]["task_name"]) == (None, "task a1")
    assert rows["b1"]["x"] == 120.5
    assert "extra_json" in pq.read_schema(file).names


def test_a_file_with_a_column_of_another_type_is_refused(tmp_path: Path):
    write_parquet(graph("a", ["a1"]), tmp_path)
    file = tmp_path / TASKS.name / "cal_dt=2026-01-31" / "part-0.parquet"
    old = pq.read_table(file)
    pq.write_table(old.set_column(2, "task_id", pa.array(["seven"])), file)
    before = snapshot(tmp_path)

    with pytest.raises(LoadError, match=r"task_instances\.task_id is string, declared int64"):
        write_parquet(graph("b", ["b1"]), tmp_path)

    assert snapshot(tmp_path) == before


def test_a_failure_mid_compaction_leaves_the_previous_files_readable_and_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    write_parquet(FlowFrames.concat([graph("a", ["a1"]), graph("b", ["b1"])]), tmp_path)
    before = snapshot(tmp_path)
    real_write = pq.write_table
    calls = 0

    def disk_full_on_second_compacted_file(data: pa.Table, where: Any, **kwargs: Any) -> None:
        nonlocal calls
        if ".open-compaction" in str(where):
            calls += 1
            if calls == 2:
                Path(where).write_bytes(b"PAR1 half a file")
                raise OSError(28, "No space left on device")
        real_write(data, where, **kwargs)

    monkeypatch.setattr(parquet_files.pq, "write_table", disk_full_on_second_compacted_file)
    with pytest.raises(LoadError, match="No space left on device"):
        write_parquet(graph("a", ["a1", "a9"], flow_name="changed"), tmp_path)
    monkeypatch.undo()

    assert snapshot(tmp_path) == before
    assert not [p for p in tmp_path.rglob(".*")]
    assert [r["flow_name"] for r in read(tmp_path, INSTANCES)] == ["Daily KPI 日报 ✓"] * 2
    assert len(list((tmp_path / "_staging").iterdir())) == 1  # the batch waits, committed

    write_parquet(graph("a", ["a1", "a9"]), tmp_path)
    assert task_owners(tmp_path) == {"a1": "a", "a9": "a", "b1": "b"}
    assert [r["flow_name"] for r in read(tmp_path, INSTANCES)] == ["Daily KPI 日报 ✓"] * 2
    assert not list((tmp_path / "_staging").iterdir())


def test_a_failure_while_writing_a_file_leaves_no_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    write_parquet(make_frames({FAILURES: [failure("x")]}), tmp_path)
    before = snapshot(tmp_path)

    def half_a_file(table: pa.Table, where: Any, **kwargs: Any) -> None:
        Path(where).write_bytes(b"PAR1 half a file")
        raise RuntimeError("killed")

    monkeypatch.setattr(parquet_files.pq, "write_table", half_a_file)
    with pytest.raises(RuntimeError, match="killed"):
        write_parquet(make_frames({FAILURES: [failure("y")]}), tmp_path)

    assert snapshot(tmp_path) == before
    assert not [p for p in tmp_path.rglob(".*")]


def test_append_refuses_an_instance_already_written(tmp_path: Path):
    write_parquet(graph("a", ["a1"]), tmp_path, mode="append")
    before = snapshot(tmp_path)

    with pytest.raises(LoadError, match="append into flow_instances"):
        write_parquet(graph("a", ["a1"]), tmp_path, mode="append")

    assert snapshot(tmp_path) == before


def test_append_adds_new_instances_to_existing_partitions(tmp_path: Path):
    write_parquet(graph("a", ["a1"]), tmp_path, mode="append")

    write_parquet(graph("b", ["b1"]), tmp_path, mode="append")

    assert task_owners(tmp_path) == {"a1": "a", "b1": "b"}


def test_append_refuses_a_key_repeated_within_the_batch(tmp_path: Path):
    frames = FlowFrames.concat([graph("a", ["t"]), graph("b", ["t"])])

    with pytest.raises(LoadError, match="task_instances"):
        write_parquet(frames, tmp_path, mode="append")


def test_replace_leaves_only_the_batch(tmp_path: Path):
    write_parquet(sample_frames(), tmp_path)

    write_parquet(graph("z", ["z1"], cal_dt=date(2024, 5, 5)), tmp_path, mode="replace")

    assert [r["instance_id"] for r in read(tmp_path, INSTANCES)] == ["z"]
    assert partitions(tmp_path, TASKS) == ["cal_dt=2024-05-05"]
    assert read(tmp_path, FAILURES) == []


def test_failures_are_upserted_and_resolved_by_a_successful_load(tmp_path: Path):
    write_parquet(make_frames({FAILURES: [failure("a"), failure("b")]}), tmp_path)
    write_parquet(make_frames({FAILURES: [failure("b", attempts=6)]}), tmp_path)
    assert [r["attempts"] for r in read(tmp_path, FAILURES)] == [3, 6]

    write_parquet(graph("a", ["a1"]), tmp_path)

    assert [r["instance_id"] for r in read(tmp_path, FAILURES)] == ["b"]


def test_an_unwritable_path_fails_clearly(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    with pytest.raises(LoadError, match=r"cannot create directory .*a-file"):
        write_parquet(sample_frames(), blocker / "out")
