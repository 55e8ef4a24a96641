"""The fast path's columns: gathered as Python values, typed as Arrow arrays.

Converting a value to Arrow costs a cache miss once the batch has moved on, so the task
and relation columns (about a hundred values per instance) are typed every
:data:`CHUNK` instances, while the values are still in cache; typing them at the end of
the batch took a third longer. The per-instance columns, and what needs the whole batch
(timestamp parsing and shifting, next fires, the names of codes), are done once at the
end, on Arrow arrays.

Some faults only show once a column is typed: a timestamp text Arrow cannot read (30
February), a string task ID that is not a number. Those instances are dropped and
handed back, so that the reference path can reject or quarantine them as it would.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from extractor._coerce import as_int
from extractor._wallclock import LOCAL, MAX_YEAR, MIN_YEAR, UTC_TYPE, Shift, parse_wall_clock
from extractor.frames import arrow_schema, arrow_type
from extractor.schedule import Schedule
from extractor.schema import (
    ALERT_MODE_NAMES,
    CYCLE_NAMES,
    DEPENDENCIES,
    FAILED_TASK_STATUSES,
    INSTANCES,
    PARAMETERS,
    QUARANTINE,
    RELATIONS,
    STATUS_NAMES,
    TASKS,
    TERMINAL_STATUSES,
    Table,
)

CHUNK = 64
"""Instances per typing step: enough to amortise a call, few enough to stay in cache."""

_S, _I, _B = pa.string(), pa.int64(), pa.bool_()
INSTANCE_FIELDS: tuple[tuple[str, pa.DataType], ...] = (
    ("instance_id", _S),
    ("flow_id", _I),
    ("flow_name", _S),
    ("freq", _S),
    ("cycle", _S),
    ("do_as", _S),
    ("status", _I),
    ("status_desc", _S),
    ("trigger_time", _S),
    ("start_time", _S),
    ("end_time", _S),
    ("record_time", _S),
    ("is_virtual", _B),
    ("owner", _S),
    ("alert_mode", _I),
    ("cal_dt", pa.date32()),
    ("has_edit_pri", _B),
    ("has_read_pri", _B),
    ("is_cancelled", _B),
    ("creator", _S),
    ("owners", _S),
    ("alert_to", _S),
    ("app_id", _S),
    ("graph_instance_id", _S),
    ("task_count", _I),
    ("schedule", _I),
    ("parameters_json", _S),
    ("position", _I),
    ("tasks", _I),
    ("edge_set", _I),
    ("flows", _I),
    ("parameters", _I),
)
"""The tuple :meth:`Batch.instances` holds per instance: columns as the API gives them
(timestamps as text), the schedule's number in :attr:`Batch.schedules`, the record's
position, how many rows of each child table the instance has, except for relations:
the number of its edge set (:meth:`Batch.edge_set`), -1 for none."""

_TASK_FIELDS = (
    ("task_inst_id", _S),
    ("task_name", _S),
    ("x", pa.float64()),
    ("y", pa.float64()),
    ("task_id", _I),
    ("node_id", _S),
    ("task_status", _S),
)
"""The fields of :class:`extractor._shapes.Task`, in order."""
_CHUNKED = {**dict(_TASK_FIELDS), "froms": _S, "tos": _S}
"""The columns typed a chunk at a time: tasks, and the edges of new edge sets."""
_TASK_COUNT = [name for name, _ in INSTANCE_FIELDS].index("tasks")
_WALL_CLOCK = ("trigger_time", "start_time", "end_time", "record_time")
_AS_GIVEN = [n for n, _ in INSTANCE_FIELDS if n in INSTANCES.column_names and n not in _WALL_CLOCK]
"""The instance columns stored as gathered."""
_FAILED = pa.array(sorted(FAILED_TASK_STATUSES), _S)
_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_LIMIT_US = (datetime(MAX_YEAR + 1, 1, 1) - _EPOCH) // _MICROSECOND


class Batch:
    """Columns of the instances kept so far: a tuple per instance, and the task rows and
    new edges (typed a chunk at a time, at each :meth:`flush`)."""

    def __init__(self) -> None:
        self.instances: list[tuple[Any, ...]] = []
        self.tasks: list[tuple[Any, ...]] = []
        self.text_task_ids = False
        self.edge_sets: list[tuple[int, int]] = []
        self.froms: list[str] = []
        self.tos: list[str] = []
        self.dependencies: list[tuple[Any, ...]] = []
        self.parameters: list[tuple[str, str | None, int]] = []
        self.schedules: list[Schedule | None] = []
        self.schedule_codes: dict[str | None, int] = {}
        self.typed = 0
        self.typed_edges = 0
        self.refused: list[int] = []
        self._chunks: dict[str, list[pa.Array]] = {name: [] for name in _CHUNKED}

    def schedule_code(self, freq: str | None, schedule: Schedule | None) -> int:
        """Number a schedule within the batch."""
        code = self.schedule_codes.get(freq)
        if code is None:
            code = self.schedule_codes[freq] = len(self.schedules)
            self.schedules.append(schedule)
        return code

    def edge_set(self, froms: Sequence[str], tos: Sequence[str]) -> int:
        """Keep a set of relation edges; return its number. Instances of a flow often
        share one, and each instance's rows are then taken from it."""
        self.edge_sets.append((len(self.froms), len(froms)))
        self.froms += froms
        self.tos += tos
        return len(self.edge_sets) - 1

    def flush(self) -> None:
        """Type the rows of the instances added since last time."""
        if self.typed == len(self.instances):
            return
        chunks = self._chunks
        if self.tasks:
            columns = list(zip(*self.tasks, strict=True))
            for (name, arrow), values in zip(_TASK_FIELDS, columns, strict=True):
                if name == "task_id":
                    chunks[name].append(self._task_ids(values))
                else:
                    chunks[name].append(pa.array(values, arrow))
            if len(set(columns[0])) != len(columns[0]):
                self._refuse_repeated(columns[0])
            self.tasks.clear()
            self.text_task_ids = False
        if self.typed_edges < len(self.froms):
            chunks["froms"].append(pa.array(self.froms[self.typed_edges :], _S))
            chunks["tos"].append(pa.array(self.tos[self.typed_edges :], _S))
            self.typed_edges = len(self.froms)
        self.typed = len(self.instances)

    def _owners(self) -> np.ndarray:
        """The instance of each task row since the last flush."""
        chunk = self.instances[self.typed :]
        counts = [instance[_TASK_COUNT] for instance in chunk]
        return np.repeat(np.arange(self.typed, len(self.instances)), counts)

    def _task_ids(self, values: tuple[Any, ...]) -> pa.Array:
        """Task IDs as integers; refuses the instances with one that is not."""
        if not self.text_task_ids:
            try:
                return pa.array(values, _I)
            except pa.ArrowInvalid:  # a string ID after an integer one
                pass
        try:
            return pa.array([int(v.strip()) if type(v) is str else v for v in values], _I)
        except (ValueError, OverflowError):  # not a number, or too big: the reference decides
            pass
        ids = list(values)
        for i, (owner, value) in enumerate(zip(self._owners(), values, strict=True)):
            if type(value) is str:
                try:
                    ids[i] = as_int(value, "taskId")
                except ValueError:
                    ids[i] = None
                    self.refused.append(int(owner))
        return pa.array(ids, _I)

    def columns(self) -> dict[str, pa.Array]:
        """Every column, whole; the relations' are :meth:`relations`."""
        self.flush()
        columns = {
            name: pa.concat_arrays(chunks) if chunks else pa.array([], _CHUNKED[name])
            for name, chunks in self._chunks.items()
        }
        values = zip(*self.instances, strict=True)
        for (name, arrow), column in zip(INSTANCE_FIELDS, values, strict=True):
            columns[name] = pa.array(column, arrow)
        return columns

    def relations(
        self, columns: dict[str, pa.Array], edge_set: np.ndarray
    ) -> tuple[np.ndarray, pa.Array, pa.Array]:
        """Return the number of edges of each instance (given the number of its edge set,
        -1 for none), and the from and to nodes of all their edges in instance order."""
        sets = np.array([(0, 0), *self.edge_sets], np.int64).reshape(-1, 2)
        start, count = sets[edge_set + 1, 0], sets[edge_set + 1, 1]
        rows = np.repeat(start - (np.cumsum(count) - count), count)
        rows += np.arange(len(rows))
        take = pa.array(rows)
        return count, columns["froms"].take(take), columns["tos"].take(take)

    def _refuse_repeated(self, task_inst_ids: tuple[str, ...]) -> None:
        """Refuse the instances that repeat a task (the reference quarantines them)."""
        seen: set[tuple[int, str]] = set()
        for owner, task_inst_id in zip(self._owners(), task_inst_ids, strict=True):
            if (owner, task_inst_id) in seen:
                self.refused.append(int(owner))
            seen.add((owner, task_inst_id))


def finish(
    batch: Batch, shift: Shift, extracted_at: datetime | Sequence[datetime]
) -> tuple[dict[str, pa.Table], dict[str, np.ndarray], list[int]]:
    """Return the tables, the record position of each row, and the records refused."""
    columns = batch.columns()
    col = columns.__getitem__
    n = len(batch.instances)
    edge_count, from_node_id, to_node_id = batch.relations(columns, col("edge_set").to_numpy())
    owners = {
        name: np.repeat(np.arange(n), count)
        for name, count in (
            (TASKS.name, col("tasks").to_numpy()),
            (RELATIONS.name, edge_count),
            (DEPENDENCIES.name, col("flows").to_numpy()),
            (PARAMETERS.name, col("parameters").to_numpy()),
        )
    }
    positions = col("position").to_numpy()
    refused = np.zeros(n, bool)
    refused[batch.refused] = True
    instance_id = col("instance_id")

    local = {}
    for name in _WALL_CLOCK:
        local[name], failed = parse_wall_clock(col(name))
        refused |= failed
    codes = col("schedule").to_numpy()
    next_local, beyond = _next_fires(local["trigger_time"], batch.schedules, codes)
    refused |= beyond
    utc = {name: shift(times) for name, times in local.items()}

    owners[INSTANCES.name] = np.arange(n)
    owners[QUARANTINE.name] = np.zeros(0, np.int64)
    task_status = col("task_status")
    failing = pc.is_in(task_status, value_set=_FAILED).to_numpy(zero_copy_only=False)
    failed = np.bincount(owners[TASKS.name], weights=failing, minlength=n).astype(np.int64)
    task_count = col("task_count")
    status, cycle, alert_mode = col("status"), col("cycle"), col("alert_mode")
    if isinstance(extracted_at, datetime):
        extracted = pa.repeat(pa.scalar(extracted_at, UTC_TYPE), n)
    else:
        extracted = pa.array([extracted_at[p] for p in positions], UTC_TYPE)
    instances = {
        **{name: col(name) for name in _AS_GIVEN},
        "cycle_name": _named(cycle, CYCLE_NAMES),
        "status_name": _named(status, STATUS_NAMES),
        "is_terminal": _named(status, {s: s in TERMINAL_STATUSES for s in STATUS_NAMES}),
        **utc,
        "duration_s": _seconds(utc["end_time"], utc["start_time"]),
        "start_delay_s": _seconds(utc["start_time"], utc["trigger_time"]),
        "alert_mode_name": _named(alert_mode, ALERT_MODE_NAMES),
        "failed_task_count": pc.if_else(
            pc.is_null(task_count), pa.scalar(None, _I), pa.array(failed)
        ),
        **_cron_columns(batch.schedules, codes),
        "next_trigger_time": shift(next_local),
        "extra_json": pa.nulls(n, _S),
        "extracted_at": extracted,
    }
    tasks = {
        "task_inst_id": col("task_inst_id"),
        "instance_id": instance_id.take(owners[TASKS.name]),
        "task_id": col("task_id"),
        "task_name": col("task_name"),
        "node_id": col("node_id"),
        "status": task_status,
        "x": col("x"),
        "y": col("y"),
        "extra_json": pa.nulls(len(task_status), _S),
    }
    relations = {
        "instance_id": instance_id.take(owners[RELATIONS.name]),
        "from_node_id": from_node_id,
        "to_node_id": to_node_id,
    }
    tables = {
        INSTANCES.name: _table(INSTANCES, instances),
        TASKS.name: _table(TASKS, tasks),
        RELATIONS.name: _table(RELATIONS, relations),
        DEPENDENCIES.name: _from_rows(DEPENDENCIES, instance_id, owners, batch.dependencies),
        PARAMETERS.name: _from_rows(PARAMETERS, instance_id, owners, batch.parameters),
        QUARANTINE.name: arrow_schema(QUARANTINE).empty_table(),
    }
    row_positions = {name: positions[owner] for name, owner in owners.items()}
    if refused.any():
        for name, owner in owners.items():
            keep = ~refused[owner]
            tables[name] = tables[name].filter(pa.array(keep))
            row_positions[name] = row_positions[name][keep]
    return tables, row_positions, positions[refused].tolist()


def _named(codes: pa.Array, names: Any) -> pa.Array:
    """Look each code up in a small mapping; null where absent."""
    keys = list(names)
    found = pc.index_in(codes, value_set=pa.array(keys, codes.type))
    return pa.array([names[k] for k in keys]).take(found)


def _cron_columns(schedules: list[Schedule | None], codes: np.ndarray) -> dict[str, pa.Array]:
    """The ten cron columns, built once per distinct schedule and then repeated."""
    rows = []
    for s in schedules:
        f = s.fields if s is not None else None
        cron = (
            (f.second, f.minute, f.hour, f.day_of_month, f.month, f.day_of_week, f.year)
            if f
            else (None,) * 7
        )
        rest = (s.is_valid, s.description, s.interval_s) if s is not None else (None,) * 3
        rows.append(cron + rest)
    names = [c.name for c in INSTANCES.columns if c.name.startswith("cron_")]
    take = pa.array(codes)
    return {
        name: pa.array(values, arrow_type(INSTANCES.column(name).type)).take(take)
        for name, values in zip(names, zip(*rows, strict=True), strict=True)
    }


def _next_fires(
    trigger: pa.Array, schedules: list[Schedule | None], codes: np.ndarray
) -> tuple[pa.Array, np.ndarray]:
    """Return each trigger's next fire in wall-clock time, and which fall after
    :data:`MAX_YEAR` (those records go the reference way).

    A regular schedule's fires are ``first + k * interval`` for every k, so when the
    trigger is one of them the next is one interval on; the other triggers go to their
    schedule's :meth:`~extractor.schedule.Schedule.next_fires`, a schedule at a time.
    """
    k = len(schedules)
    usable = np.zeros(k, bool)
    interval = np.zeros(k, np.int64)
    first = np.zeros(k, np.int64)
    for i, s in enumerate(schedules):
        if s is not None and s.is_valid:
            usable[i] = True
            fire = s.next_fire(datetime(MIN_YEAR, 1, 1)) if s.interval_s else None
            if fire is not None and s.interval_s is not None:
                interval[i] = s.interval_s * 1_000_000
                first[i] = (fire - _EPOCH) // _MICROSECOND
    at = pc.fill_null(trigger.cast(_I), 0).to_numpy()
    asked = usable[codes] & trigger.is_valid().to_numpy(zero_copy_only=False)
    step, start = interval[codes], first[codes]
    regular = asked & (step > 0) & (at >= start)
    regular[regular] = (at[regular] - start[regular]) % step[regular] == 0
    fires = np.where(regular, at + step, 0)
    known = regular.copy()
    other = np.flatnonzero(asked & ~regular)
    if len(other):
        by_schedule = np.argsort(codes[other], kind="stable")
        other = other[by_schedule]
        starts = np.flatnonzero(np.diff(codes[other], prepend=-1))
        for rows in np.split(other, starts[1:]):
            schedule = schedules[codes[rows[0]]]
            assert schedule is not None
            fires[rows], known[rows] = schedule.next_fires(at[rows])
    beyond = known & (fires >= _LIMIT_US)
    return pa.array(fires, _I, mask=~known).cast(LOCAL), beyond


def _seconds(later: pa.Array, earlier: pa.Array) -> pa.Array:
    """``(later - earlier).total_seconds()``, rounded as Python rounds it."""
    micros = pc.subtract(later.cast(_I), earlier.cast(_I))
    return pc.divide(micros.cast(pa.float64()), 1e6)


def _from_rows(
    table: Table,
    instance_id: pa.Array,
    owners: dict[str, np.ndarray],
    rows: list[tuple[Any, ...]],
) -> pa.Table:
    """A child table from row tuples that lack its leading ``instance_id``."""
    names = table.column_names[1:]
    columns = zip(*rows, strict=True) if rows else [[] for _ in names]
    return _table(
        table,
        {
            "instance_id": instance_id.take(owners[table.name]),
            **{
                name: pa.array(values, arrow_type(table.column(name).type))
                for name, values in zip(names, columns, strict=True)
            },
        },
    )


def _table(table: Table, columns: dict[str, pa.Array]) -> pa.Table:
    schema = arrow_schema(table)
    return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)
