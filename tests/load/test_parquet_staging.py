"""Parquet batches are staged, then compacted: each partition rewritten once per run."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from parquet_checks import duplicates
from parquet_reads import read, snapshot, task_owners
from sample_frames import DAY, NEXT_DAY, failure, graph, make_frames

import extractor.load._parquet_store as store_module
from extractor.errors import LoadError
from extractor.load import ParquetDestination, compact_parquet, read_parquet, write_parquet
from extractor.load._parquet_compact import compact
from extractor.load._parquet_files import SortedReader
from extractor.load._parquet_store import Store
from extractor.tables._frames import FlowFrames
from extractor.tables._schema import FAILURES, INSTANCES, TASKS

OLD_DAY = date(2025, 12, 1)


def data_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.glob("*/*/*.parquet"))


def test_a_staged_batch_is_invisible_until_compaction(tmp_path: Path):
    write_parquet(graph("a", ["a1"]), tmp_path)
    before = snapshot(tmp_path)
    loader = ParquetDestination(tmp_path)

    loader.write(graph("a", ["a1", "a2"], flow_name="changed"))
    loader.write(graph("b", ["b1"], cal_dt=NEXT_DAY))

    assert snapshot(tmp_path) == before
    assert task_owners(tmp_path) == {"a1": "a"}

    result = loader.compact()

    # Both days of instances, tasks and parameters; the first day of relations.
    assert (result.batches, result.partitions) == (2, 7)
    assert task_owners(tmp_path) == {"a1": "a", "a2": "a", "b1": "b"}
    assert [r["flow_name"] for r in read(tmp_path, INSTANCES)] == ["changed", "Daily KPI 日报 ✓"]
    assert not list((tmp_path / "_staging").iterdir())


def test_many_batches_leave_one_file_per_partition(tmp_path: Path):
    loader = ParquetDestination(tmp_path)
    for n in range(6):
        loader.write(graph(f"i{n}", [f"t{n}"], cal_dt=DAY if n % 2 else NEXT_DAY))

    loader.compact()

    assert data_files(tmp_path) == [
        f"{t}/cal_dt={d}/part-0.parquet"
        for t in ("flow_instances", "flow_parameters", "task_instances")  # no edges
        for d in ("2026-01-31", "2026-02-01")
    ]
    assert len(read(tmp_path, INSTANCES)) == 6


def test_the_latest_load_of_an_instance_wins_across_batches(tmp_path: Path):
    loader = ParquetDestination(tmp_path)
    loader.write(graph("a", ["a1", "a2"], flow_name="first"))
    loader.write(graph("a", ["a2"], flow_name="second", cal_dt=NEXT_DAY))  # a1 vanished
    loader.write(graph("b", ["b1"]))

    loader.compact()

    assert task_owners(tmp_path) == {"a2": "a", "b1": "b"}
    instances = {r["instance_id"]: (r["flow_name"], r["cal_dt"]) for r in read(tmp_path, INSTANCES)}
    assert instances == {"a": ("second", NEXT_DAY), "b": ("Daily KPI 日报 ✓", DAY)}
    assert set(duplicates(tmp_path).values()) == {0}


def test_a_task_claimed_in_a_later_batch_moves_and_a_later_reload_takes_it_back(
    tmp_path: Path,
):
    write_parquet(graph("a", ["t1", "t2"], cal_dt=DAY), tmp_path)
    loader = ParquetDestination(tmp_path)
    loader.write(graph("b", ["t2"], cal_dt=NEXT_DAY))
    loader.compact()
    assert task_owners(tmp_path) == {"t1": "a", "t2": "b"}

    loader.write(graph("b", ["t2", "t3"], cal_dt=NEXT_DAY))
    loader.write(graph("a", ["t1", "t2"], cal_dt=DAY))
    loader.compact()

    assert task_owners(tmp_path) == {"t1": "a", "t2": "a", "t3": "b"}


def test_compaction_rewrites_only_the_partitions_that_gain_or_lose_rows(tmp_path: Path):
    write_parquet(
        FlowFrames.concat([graph("old", ["o1"], cal_dt=OLD_DAY), graph("a", ["a1"])]), tmp_path
    )
    untouched = {k: v for k, v in snapshot(tmp_path).items() if "2025-12-01" in k}
    mtimes = {k: (tmp_path / k).stat().st_mtime_ns for k in untouched}
    loader = ParquetDestination(tmp_path)
    for n in range(3):
        loader.write(graph("a", ["a1", f"a{n + 2}"]))

    result = loader.compact()

    assert result.partitions == 4  # 2026-01-31 of four tables
    after = snapshot(tmp_path)
    assert {k: after[k] for k in untouched} == untouched
    assert {k: (tmp_path / k).stat().st_mtime_ns for k in untouched} == mtimes
    assert task_owners(tmp_path) == {"a1": "a", "a4": "a", "o1": "old"}


def test_replace_in_a_later_batch_drops_what_came_before_it(tmp_path: Path):
    write_parquet(graph("old", ["o1"], cal_dt=OLD_DAY), tmp_path)
    loader = ParquetDestination(tmp_path)
    loader.write(graph("a", ["a1"]))
    loader.write(graph("b", ["b1"]), mode="replace")
    loader.write(graph("c", ["c1"], cal_dt=NEXT_DAY))

    loader.compact()

    assert task_owners(tmp_path) == {"b1": "b", "c1": "c"}
    assert "cal_dt=2025-12-01" not in {p.name for p in (tmp_path / TASKS.name).iterdir()}


def test_failures_keep_the_latest_and_leave_when_a_later_batch_loads_the_instance(
    tmp_path: Path,
):
    loader = ParquetDestination(tmp_path)
    loader.write(make_frames({FAILURES: [failure("a"), failure("b")]}))
    loader.write(make_frames({FAILURES: [failure("b", attempts=6)]}))
    loader.write(graph("a", ["a1"]))
    loader.write(make_frames({FAILURES: [failure("c")]}))

    loader.compact()

    assert [(r["instance_id"], r["attempts"]) for r in read(tmp_path, FAILURES)] == [
        ("b", 6),
        ("c", 3),
    ]


def test_append_refuses_an_instance_or_a_task_staged_by_an_earlier_batch(tmp_path: Path):
    loader = ParquetDestination(tmp_path)
    loader.write(graph("a", ["a1"]), mode="append")

    with pytest.raises(LoadError, match="append into flow_instances"):
        loader.write(graph("a", ["a2"]), mode="append")
    with pytest.raises(LoadError, match=r"append into task_instances .*'a1'"):
        loader.write(graph("b", ["a1"]), mode="append")
    loader.write(graph("b", ["b1"]), mode="append")
    loader.compact()

    assert task_owners(tmp_path) == {"a1": "a", "b1": "b"}


def test_instances_replaced_counts_staged_and_visible_instances(tmp_path: Path):
    write_parquet(graph("a", ["a1"]), tmp_path)
    loader = ParquetDestination(tmp_path)

    assert loader.write(graph("b", ["b1"])).instances_replaced == 0
    both = FlowFrames.concat([graph("a", ["a1"]), graph("b", ["b1"])])
    assert loader.write(both).instances_replaced == 2


def test_two_writers_into_one_directory_both_land_and_the_later_batch_wins(tmp_path: Path):
    first, second = ParquetDestination(tmp_path), ParquetDestination(tmp_path)
    first.write(graph("a", ["a1"], flow_name="first writer"))
    second.write(graph("b", ["b1"]))
    second.write(graph("a", ["a1"], flow_name="second writer"))

    first.compact()
    second.compact()  # nothing left to do

    assert task_owners(tmp_path) == {"a1": "a", "b1": "b"}
    assert [r["flow_name"] for r in read(tmp_path, INSTANCES)] == [
        "second writer",
        "Daily KPI 日报 ✓",
    ]


def test_a_committed_compaction_that_crashed_is_finished_by_the_next_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    write_parquet(graph("a", ["a1"]), tmp_path)
    before = snapshot(tmp_path)
    loader = ParquetDestination(tmp_path)
    loader.write(graph("a", ["a2"], cal_dt=NEXT_DAY))

    def crash(self: Store) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Store, "apply_compaction", crash)
    with pytest.raises(KeyboardInterrupt):
        loader.compact()
    monkeypatch.undo()
    assert snapshot(tmp_path) == before
    assert (tmp_path / "_staging" / "compaction" / "manifest.json").exists()

    ParquetDestination(tmp_path).write(graph("b", ["b1"]))  # recovers first

    assert task_owners(tmp_path) == {"a2": "a"}
    assert not (tmp_path / "_staging" / "compaction").exists()


def test_a_compaction_stopped_between_two_partitions_shows_no_key_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # "a" moves to an earlier day, and "b" claims "c"'s task from a later day: the
    # partitions that gain keys must be swapped after those that lose them.
    both = [graph("a", ["a1"], cal_dt=NEXT_DAY), graph("b", ["b1"], cal_dt=NEXT_DAY)]
    write_parquet(FlowFrames.concat([*both, graph("c", ["c1", "c2"], cal_dt=NEXT_DAY)]), tmp_path)
    loader = ParquetDestination(tmp_path)
    loader.write(FlowFrames.concat([graph("a", ["a1"]), graph("d", ["c2", "d1"])]))
    real_move, moves, allowed = store_module._move, 0, 0

    def crash_after_some_moves(source: Path, target: Path) -> None:
        nonlocal moves
        moves += 1
        if moves > allowed:
            raise KeyboardInterrupt
        real_move(source, target)

    monkeypatch.setattr(store_module, "_move", crash_after_some_moves)
    with pytest.raises(KeyboardInterrupt):
        loader.compact()
    while (tmp_path / "_staging" / "compaction").exists():  # one more move each time
        assert set(duplicates(tmp_path).values()) == {0}, allowed
        moves, allowed = 0, allowed + 1
        try:
            Store(tmp_path).apply_compaction()
        except KeyboardInterrupt:
            continue
    assert allowed > 10
    monkeypatch.undo()

    assert task_owners(tmp_path) == {"a1": "a", "b1": "b", "c1": "c", "c2": "d", "d1": "d"}


def test_recovery_removes_what_a_dead_writer_left_open_but_not_a_live_writers(
    tmp_path: Path,
):
    store = Store(tmp_path)
    dead = tmp_path / "_staging" / ".open-batch-dead"
    dead.mkdir(parents=True)
    (dead / "flow_instances.parquet").write_bytes(b"PAR1 half")
    (dead / ".owner").touch()

    with store.open_dir("batch") as live, store.locked():
        store.recover()
        assert live.exists()
    assert not dead.exists()


def test_compact_merges_files_added_by_hand_into_one_per_partition(tmp_path: Path):
    write_parquet(
        FlowFrames.concat([graph("a", ["a1"]), graph("b", ["b1"], cal_dt=NEXT_DAY)]), tmp_path
    )
    folder = tmp_path / TASKS.name / "cal_dt=2026-01-31"
    extra = pq.read_table(folder / "part-0.parquet")
    pq.write_table(extra.set_column(0, "task_inst_id", [["x1"]]), folder / "from-elsewhere.parquet")
    assert len(read(tmp_path, TASKS)) == 3

    result = compact_parquet(tmp_path)

    assert result.partitions == 1
    assert sorted(p.name for p in folder.iterdir()) == ["part-0.parquet"]
    assert sorted(r["task_inst_id"] for r in read(tmp_path, TASKS)) == ["a1", "b1", "x1"]


def test_compact_keeps_a_partition_only_files_added_by_hand_hold(tmp_path: Path):
    write_parquet(graph("a", ["a1"]), tmp_path)
    file = tmp_path / TASKS.name / "cal_dt=2026-01-31" / "part-0.parquet"
    folder = tmp_path / TASKS.name / "cal_dt=2026-03-03"
    folder.mkdir()
    pq.write_table(
        pq.read_table(file).set_column(0, "task_inst_id", [["x1"]]), folder / "x.parquet"
    )

    compact_parquet(tmp_path)

    assert sorted(p.name for p in folder.iterdir()) == ["part-0.parquet"]
    assert sorted(r["task_inst_id"] for r in read(tmp_path, TASKS)) == ["a1", "x1"]


def test_compact_of_a_missing_directory_fails_clearly(tmp_path: Path):
    with pytest.raises(LoadError, match="not a directory"):
        compact_parquet(tmp_path / "missing")


def test_read_parquet_never_reads_staged_rows(tmp_path: Path):
    loader = ParquetDestination(tmp_path)
    loader.write(graph("a", ["a1"]))

    back = read_parquet(tmp_path)

    assert all(t.num_rows == 0 for t in back.tables.values())
    loader.compact()
    assert read_parquet(tmp_path).tables[INSTANCES.name].num_rows == 1


def test_the_compact_command_folds_staged_batches_and_merges_files(tmp_path: Path) -> None:
    write_parquet(graph("a", ["a1"]), tmp_path)
    folder = tmp_path / TASKS.name / "cal_dt=2026-01-31"
    extra = pq.read_table(folder / "part-0.parquet")
    pq.write_table(extra.set_column(0, "task_inst_id", [["x1"]]), folder / "by-hand.parquet")
    ParquetDestination(tmp_path).write(graph("b", ["b1"], cal_dt=NEXT_DAY))  # a run that died

    done = subprocess.run(
        [sys.executable, "-m", "extractor", "compact", "--parquet", str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert "1 staged batch(es) folded in" in done.stdout
    assert sorted(p.name for p in folder.iterdir()) == ["part-0.parquet"]
    assert sorted(read_parquet(tmp_path).tasks["task_inst_id"]) == ["a1", "b1", "x1"]
    assert not list((tmp_path / "_staging").iterdir())


def test_the_compact_command_fails_clearly_without_a_directory(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "extractor", "compact", "--parquet", str(tmp_path / "nope")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1
    assert "not a directory" in done.stderr


def test_keys_matched_a_shard_at_a_time_and_small_chunks_give_the_same_rows(
    tmp_path: Path,
):
    def load(root: Path) -> None:
        write_parquet(
            FlowFrames.concat(
                [graph("a", ["t1", "t2"]), graph("b", ["b1"], cal_dt=OLD_DAY), graph("c", ["c1"])]
            ),
            root,
        )
        loader = ParquetDestination(root)
        loader.write(graph("d", ["t2", "d1"], cal_dt=NEXT_DAY))  # claims t2
        loader.write(graph("b", ["b2"], cal_dt=NEXT_DAY))  # moves, b1 vanishes
        loader.write(graph("e", ["e1"], cal_dt=OLD_DAY))
        loader.write(graph("d", ["d1"], flow_name="again", cal_dt=NEXT_DAY))  # drops t2
        loader.write(graph("a", ["t1", "t2"]))  # takes t2 back

    load(tmp_path / "whole")
    load(tmp_path / "sharded")

    ParquetDestination(tmp_path / "whole").compact()
    compact(Store(tmp_path / "sharded"), shard_rows=2, chunk_cells=1)

    expected = {"t1": "a", "t2": "a", "b2": "b", "c1": "c", "d1": "d", "e1": "e"}
    for root in (tmp_path / "whole", tmp_path / "sharded"):
        assert task_owners(root) == expected
        assert set(duplicates(root).values()) == {0}
    whole, sharded = read_parquet(tmp_path / "whole"), read_parquet(tmp_path / "sharded")
    for name, table in whole.tables.items():
        order = [(c, "ascending") for c in table.column_names if c != "extracted_at"][:3]
        assert sharded.tables[name].sort_by(order).equals(table.sort_by(order)), name
    assert data_files(tmp_path / "sharded") == data_files(tmp_path / "whole")


def test_a_sorted_staged_file_reads_back_range_by_range_across_row_groups(tmp_path: Path):
    values = (
        ["2026-01-01"] * 3 + ["2026-01-02"] + ["2026-01-03"] * 4 + ["__HIVE_DEFAULT_PARTITION__"]
    )
    rows = pa.table({"n": list(range(len(values))), "cal_dt": values})
    pq.write_table(rows, tmp_path / "staged.parquet", row_group_size=2)
    reader = SortedReader(tmp_path / "staged.parquet", rows=2)

    ranges = ["2026-01-01", "2026-01-01", "2026-01-02", "2026-01-09", "__HIVE_DEFAULT_PARTITION__"]
    got = [reader.until(last).column("n").to_pylist() for last in ranges]
    reader.close()

    assert got == [[0, 1, 2], [], [3], [4, 5, 6, 7], [8]]
