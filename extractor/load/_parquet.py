"""Write flow frames to Parquet datasets: one per table, hive-partitioned by ``cal_dt``.

Layout under the destination directory::

    flow_instances/cal_dt=2026-01-31/part-0.parquet
    flow_instances/cal_dt=__HIVE_DEFAULT_PARTITION__/part-0.parquet   (null cal_dt)
    flow_instances/_instances.arrow                                   (partition index)
    task_instances/cal_dt=2026-01-31/part-0.parquet                   (the parent's cal_dt)
    ...
    failed_instances/part-0.parquet                                   (not partitioned)
    _staging/batch-000000000001-upsert/task_instances.parquet ...     (not yet visible)
    _parquet.lock
    _staging.lock

A batch costs what its own rows cost: :meth:`ParquetDestination.write` writes one file per
table under ``_staging/`` and commits it with one directory rename. Nothing a reader
sees changes. :meth:`ParquetDestination.compact` (the end of a run) folds every committed
batch into the visible files, rewriting each partition that gains or loses rows once,
as one file that replaces the old one with :func:`os.replace`: a reader meets the
partition wholly before or wholly after, never a row twice (see ``_parquet_compact``
and ``_parquet_store`` for the order of steps and what a crash leaves).

Read a dataset with ``pyarrow.dataset.dataset(path / "task_instances", partitioning="hive")``
(``cal_dt`` as text) or with ``partitioning=parquet_partitioning()`` (``cal_dt`` as a date,
and null partitions that pandas can read: ``pandas.read_parquet(path / "task_instances",
partitioning=parquet_partitioning())``).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import sqlalchemy as sa

from extractor.errors import LoadError
from extractor.load._batch import (
    CLAIMABLE_TABLES,
    Batch,
    unique_by_key,
)
from extractor.load._ddl import as_utc
from extractor.load._loader import BaseDestination, LoadResult, WriteMode, check_mode
from extractor.load._parquet_compact import CompactResult, compact
from extractor.load._parquet_files import (
    NULL_PARTITION,
    PARTITION_COLUMN,
    data_files,
    file_schema,
    make_dir,
    partition_folders,
    read_files,
    write_file,
)
from extractor.load._parquet_index import claim_key, read_index
from extractor.load._parquet_store import StagedBatch, Store, since_last_replace
from extractor.load._state import Moving, StateStore
from extractor.tables._frames import FlowFrames, arrow_schema
from extractor.tables._schema import DATA_TABLES, FAILURES, INSTANCES, TABLES_BY_NAME, Table

_STATE_FILE = "_extractor_state.sqlite"
_STAGED_ROW_GROUPS = 16
"""Row groups per staged file (of at least 1,024 rows): compaction holds one of each file
at a time, so small ones keep that small, and a big batch is not cut into thousands."""


def parquet_partitioning() -> ds.Partitioning:
    """Return the datasets' hive partitioning with ``cal_dt`` typed as a date.

    Without it, pyarrow reads ``cal_dt`` as text, and pandas fails on the null partition
    (``Cannot yet unify dictionaries with nulls``, a pyarrow limitation).
    """
    return ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.date32())]), flavor="hive")


class ParquetDestination(BaseDestination):
    """A directory of Parquet datasets as a destination: batches staged as they come and
    compacted into the datasets at the end (:meth:`finish`), the run state in a SQLite
    file beside them, and the queries a sync needs.

    Keep one destination for a run: it remembers which instances the directory holds,
    so a batch never reads what earlier batches wrote. Other writers may stage batches
    into the same directory; commits and compactions take turns on a file lock.

    :meth:`write` stages a batch; readers see it after :meth:`compact`. ``upsert``
    replaces every loaded instance's rows wherever they were, including the partition it
    occupied before its ``cal_dt`` changed; ``append`` fails on an instance or a key
    already present; ``replace`` leaves only its own batches, and upserts after its
    first. Failures are upserted by ``instance_id`` in every mode, and each instance
    loaded here leaves them.

    Args:
        path: The destination directory, created if missing.
        mode: How writes treat rows already there.

    Raises:
        ConfigError: Invalid mode.
        LoadError: The directory cannot be created.
    """

    def __init__(self, path: str | os.PathLike[str], *, mode: WriteMode = "upsert") -> None:
        self.path = Path(path)
        self.mode: WriteMode = check_mode(mode)
        self.label = str(self.path)
        make_dir(self.path)
        self._store = Store(self.path)
        self._known: _Known | None = None
        self._state: StateStore | None = None

    @property
    def state(self) -> StateStore:
        """The run state (resume checkpoints, sync watermarks), in a SQLite file here."""
        if self._state is None:
            file = self.path / _STATE_FILE
            self._state = StateStore(sa.create_engine(f"sqlite:///{file}"), label=str(file))
        return self._state

    def _write(self, batch: Batch, mode: WriteMode) -> int:
        known = self._known_now(claims=mode == "append")
        if mode == "append":
            _check_no_repeats(batch)
            known.check_absent(batch)
        replaced = known.count_present(batch.instance_ids) if mode == "upsert" else 0
        with self._store.open_dir("batch") as work:

            def stage(table: Table) -> None:
                rows = _staged_rows(batch, table)
                group = max(1_024, -(-rows.num_rows // _STAGED_ROW_GROUPS))
                write_file(rows, work / f"{table.name}.parquet", row_group_size=group)

            # Sorting and encoding run in Arrow with the GIL released, side by side.
            workers = min(len(DATA_TABLES), os.cpu_count() or 1)
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(stage, DATA_TABLES))
            write_file(batch.tables[FAILURES.name], work / f"{FAILURES.name}.parquet")
            self._store.commit_batch(work, mode)
        known.add(batch, fresh=mode == "replace")
        return replaced

    def compact(self, *, merge: bool = False) -> CompactResult:
        """Fold every staged batch into the datasets, rewriting each partition once.

        With ``merge``, also rewrite every partition that holds more than its one file
        (written by hand, by another tool or by an older version).

        Raises:
            LoadError: A file cannot be read or written.
        """
        return compact(self._store, merge=merge)

    def finish(self) -> None:
        """Fold the run's staged batches into the visible files."""
        self.compact()

    def failed_ids(self) -> list[str]:
        """The IDs in ``failed_instances``."""
        return [str(v) for v in self._columns(FAILURES, ["instance_id"])[0]]

    def terminal_ids(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` are loaded in a terminal status (nothing left to fetch)."""
        if not ids:
            return set()
        wanted = ds.field("instance_id").isin(ids) & (ds.field("is_terminal") == True)  # noqa: E712
        return {str(v) for v in self._columns(INSTANCES, ["instance_id"], wanted)[0]}

    def moving(self) -> dict[str, Moving]:
        """Instances loaded in a status that can still change (RUNNING, WAIT, ...)."""
        moving = (ds.field("is_terminal") == False) | ds.field("is_terminal").is_null()  # noqa: E712
        ids, times, extracted = self._columns(
            INSTANCES, ["instance_id", "trigger_time", "extracted_at"], moving
        )
        return {
            str(i): Moving(as_utc(t), as_utc(e))
            for i, t, e in zip(ids, times, extracted, strict=True)
        }

    def _columns(
        self, table: Table, columns: list[str], expression: ds.Expression | None = None
    ) -> list[list[object]]:
        folder = self.path / table.name
        if not any(folder.glob("**/*.parquet")):
            return [[] for _ in columns]
        dataset = ds.dataset(folder, format="parquet", partitioning="hive")
        found = dataset.to_table(columns=columns, filter=expression)
        return [found.column(c).to_pylist() for c in columns]

    def _known_now(self, *, claims: bool) -> _Known:
        if self._known is None or (claims and not self._known.has_claims):
            with self._store.locked():
                self._store.recover()
                self._known = _Known.load(self.path, self._store.batches(), claims=claims)
        return self._known


def write_parquet(
    frames: FlowFrames, path: str | os.PathLike[str], *, mode: WriteMode = "upsert"
) -> LoadResult:
    """Write every table of ``frames`` to Parquet datasets under ``path``, then compact.

    See :class:`ParquetDestination` for the modes. Runs of many batches use one
    :class:`ParquetDestination` and compact once at the end instead.

    Raises:
        ConfigError: Invalid mode.
        LoadError: The directory cannot be written, an existing file cannot be read or
            holds a column of another type, or (``append``) an instance is already there.
    """
    destination = ParquetDestination(path)
    result = destination.write(frames, mode=mode)
    destination.compact()
    return result


def compact_parquet(path: str | os.PathLike[str]) -> CompactResult:
    """Fold staged batches in and merge each partition's files into one.

    For directories that crashed runs, other tools or older versions left with staged
    batches or several files per partition.

    Raises:
        LoadError: ``path`` is not a directory, or a file cannot be read or written.
    """
    return ParquetDestination(_datasets(path)).compact(merge=True)


def read_parquet(path: str | os.PathLike[str]) -> FlowFrames:
    """Read back every table that :func:`write_parquet` wrote under ``path``.

    The tables come typed as declared: ``cal_dt`` a date, timestamps in UTC, and the
    instances with no ``cal_dt`` (the null partition, which ``pandas.read_parquet`` on
    the directory cannot read) included. A table with no files yet is empty. Staged
    batches not yet compacted are not read.

    Raises:
        LoadError: ``path`` is not a directory, or a file cannot be read or holds a
            column of another type.
    """
    root = _datasets(path)
    tables = {}
    for table in (*DATA_TABLES, FAILURES):
        folder = root / table.name
        schema = arrow_schema(table)
        if table is FAILURES:  # not partitioned
            data = read_files(data_files(folder), table, schema)
        else:
            files = [f for part in partition_folders(folder) for f in data_files(part)]
            data = read_files(
                files, table, file_schema(table), partitioning=parquet_partitioning(), base=folder
            )
        tables[table.name] = data.select(schema.names).cast(schema)
    return FlowFrames(tables)


def _datasets(path: str | os.PathLike[str]) -> Path:
    root = Path(path)
    if not root.is_dir():
        raise LoadError(f"no Parquet datasets at {root}: not a directory")
    return root


@dataclass
class _Known:
    """The keys visible or staged: instance IDs, and for ``append`` claimable keys.

    Loaded once per loader and kept up to date with its own batches, so a batch's cost
    does not grow with what earlier batches wrote.

    Attributes:
        keys: By table name: ``instance_id`` of ``flow_instances``, the claim key of a
            claimable table.
    """

    keys: dict[str, pa.Array]

    @classmethod
    def load(cls, root: Path, batches: list[StagedBatch], *, claims: bool) -> _Known:
        live = since_last_replace(batches)
        keys = {}
        for table in (INSTANCES, *(CLAIMABLE_TABLES if claims else ())):
            key = _key(table)
            parts = [pq.read_table(b.file(table.name), columns=[key]).column(key) for b in live]
            if not any(b.mode == "replace" for b in live):
                index = read_index(root / table.name, claim_key=claim_key(table))
                parts += [entries.column(key) for entries in index]
            chunks = [c for p in parts for c in p.chunks]
            keys[table.name] = pa.concat_arrays(chunks) if chunks else pa.array([], pa.string())
        return cls(keys)

    @property
    def has_claims(self) -> bool:
        return len(self.keys) > 1

    def count_present(self, instance_ids: pa.Array) -> int:
        held = self.keys[INSTANCES.name]
        return int(pc.sum(pc.is_in(instance_ids, value_set=held)).as_py() or 0)

    def check_absent(self, batch: Batch) -> None:
        """Refuse an ``append`` of an instance or a claimable key already there."""
        for name, held in self.keys.items():
            key = _key(TABLES_BY_NAME[name])
            new = batch.tables[name].column(key)
            clash = new.filter(pc.is_in(new, value_set=held))
            if len(clash):
                raise LoadError(
                    f"append into {name} would duplicate rows already written "
                    f"(e.g. {key} {clash[0].as_py()!r}); use mode='upsert'"
                )

    def add(self, batch: Batch, *, fresh: bool) -> None:
        """Count a committed batch in; ``fresh`` (``replace``) forgets the rest."""
        for name, held in self.keys.items():
            new = batch.tables[name].column(_key(TABLES_BY_NAME[name])).combine_chunks()
            self.keys[name] = new if fresh else pa.concat_arrays([held, new])


def _key(table: Table) -> str:
    return claim_key(table) or "instance_id"


def _staged_rows(batch: Batch, table: Table) -> pa.Table:
    """The table's rows as files hold them, with their parent's partition, sorted by it."""
    parents = batch.tables[INSTANCES.name]
    cal_dt = parents.column(PARTITION_COLUMN).combine_chunks()
    values = pc.fill_null(cal_dt.cast(pa.string()), NULL_PARTITION)
    data = batch.tables[table.name]
    ids = data.column("instance_id").combine_chunks()
    parent = pc.index_in(ids, value_set=parents.column("instance_id").combine_chunks())
    rows = data.select(file_schema(table).names)
    return rows.append_column(PARTITION_COLUMN, pc.take(values, parent)).sort_by(PARTITION_COLUMN)


def _check_no_repeats(batch: Batch) -> None:
    for table in (*DATA_TABLES, FAILURES):
        rows = batch.tables[table.name]
        if unique_by_key(rows, table.primary_key).num_rows != rows.num_rows:
            raise LoadError(
                f"append into {table.name}: the batch holds a primary key "
                f"({', '.join(table.primary_key)}) more than once"
            )
