"""Compaction: fold the staged batches into the visible files, one rewrite per partition.

A partition is rewritten when staged rows go to it, when it holds rows that staged rows
supersede, or (when merging) when it holds anything but one ``part-0.parquet``. Each is
read once, with the staged rows that go to it, and written once as one file. Partitions
are taken in sorted order, a chunk of them at a time, so memory holds about
:data:`CHUNK_CELLS` values whatever the number of batches; staged files are sorted by
partition, so each is read once, in step with the chunks.

Which row wins: every row carries the sequence number of the batch that loaded it (0
for the visible files). An instance's rows survive only from the latest batch that
loaded the instance, so children that vanished on a re-load go too; a claimable key
(``task_inst_id``) survives only from the latest batch that wrote it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from extractor.errors import LoadError
from extractor.load._parquet_files import (
    NULL_PARTITION,
    PART_FILE,
    PARTITION_COLUMN,
    SortedReader,
    data_files,
    file_schema,
    partition_folder,
    partition_folders,
    partition_value,
    read_files,
    row_count,
    text_partitioning,
    write_arrow,
    write_file,
    write_partitions,
)
from extractor.load._parquet_index import INDEX_FILE, PartitionIndex, claim_key
from extractor.load._parquet_store import Manifest, StagedBatch, Store, since_last_replace
from extractor.tables._frames import arrow_schema
from extractor.tables._schema import DATA_TABLES, FAILURES, INSTANCES, Table

CHUNK_CELLS = 1_000_000
"""Rows times columns of one table read and written at a time (about three batches)."""

_SEQ = "__seq"


@dataclass(frozen=True, kw_only=True)
class CompactResult:
    """What one compaction did.

    Attributes:
        batches: Staged batches folded into the visible files.
        partitions: Partitions rewritten or removed, over every table.
        seconds: Wall-clock time.
    """

    batches: int
    partitions: int
    seconds: float


@dataclass(frozen=True)
class Versions:
    """The keys staged by more than one batch, with the latest of those batches.

    Most keys are staged once; leaving them out keeps each chunk's lookups the size of
    the re-loads rather than of the run.

    Attributes:
        keys: Every distinct key staged.
        repeated: The keys staged more than once.
        latest: The latest batch of each of ``repeated``.
    """

    keys: pa.Array
    repeated: pa.Array
    latest: pa.Array

    @classmethod
    def of_staged(
        cls, keys: pa.ChunkedArray | pa.Array, seqs: pa.ChunkedArray | pa.Array
    ) -> Versions:
        counts = pc.value_counts(keys)
        distinct, times = counts.field("values"), counts.field("counts")
        repeated = distinct.filter(pc.greater(times, 1))
        if not len(repeated):  # the usual run: every key loaded once
            return cls(distinct, repeated, pa.array([], pa.int64()))
        again = pc.is_in(keys, value_set=repeated)
        table = pa.table({"k": keys, "s": seqs}).filter(again)
        latest = table.group_by("k", use_threads=False).aggregate([("s", "max")])
        return cls(
            distinct, latest.column("k").combine_chunks(), latest.column("s_max").combine_chunks()
        )

    def is_latest(self, keys: pa.ChunkedArray | pa.Array, seqs: pa.ChunkedArray) -> pa.Array:
        """Whether each staged row, of batch ``seqs``, is its key's latest."""
        found = pc.take(self.latest, pc.index_in(keys, value_set=self.repeated))
        return pc.equal(seqs, pc.coalesce(found, seqs))


@dataclass(frozen=True)
class _Run:
    root: Path
    work: Path
    batches: list[StagedBatch]
    replacing: bool
    merging: bool
    loads: pa.Table
    loaded: Versions


def compact(store: Store, *, merge: bool = False) -> CompactResult:
    """Fold every committed batch into the visible files; with ``merge``, small files too.

    Raises:
        LoadError: A file cannot be read or written.
    """
    started = time.perf_counter()
    with store.locked():
        store.recover()
        batches = store.batches()
        if not batches and not merge:
            return CompactResult(batches=0, partitions=0, seconds=time.perf_counter() - started)
        live = since_last_replace(batches)
        manifest = Manifest(batches=[b.path.name for b in batches])
        with store.open_dir("compaction") as work:
            ids = _staged(live, INSTANCES, ["instance_id"])
            run = _Run(
                store.root,
                work,
                live,
                replacing=any(b.mode == "replace" for b in live),
                merging=merge,
                loads=ids,
                loaded=Versions.of_staged(ids.column("instance_id"), ids.column(_SEQ)),
            )
            parts = []
            for table in DATA_TABLES:
                parts.append(_compact_table(run, table))
                # Hand back what the table took, so the tables' peaks do not pile up.
                pa.default_memory_pool().release_unused()
            for part in parts:
                manifest.moves += part.moves
                manifest.removals += part.removals
            _compact_failures(run, manifest)
            store.commit_compaction(work, manifest)
        store.apply_compaction()
    seconds = time.perf_counter() - started
    partitions = sum(p.partitions for p in parts)
    return CompactResult(batches=len(batches), partitions=partitions, seconds=seconds)


def _compact_table(run: _Run, table: Table) -> Manifest:
    """Stage the table's rewritten partitions and index; return where they go."""
    manifest = Manifest()
    root = run.root / table.name
    claim = claim_key(table)
    keys = ["instance_id", *([claim] if claim else [])]
    if run.replacing:
        index = PartitionIndex.empty(claim)
    else:
        index = PartitionIndex.load(root, claim_key=claim)
    # Only a claimable table needs its staged keys; the others only where rows go.
    staged = _staged(run.batches, table, [claim] if claim else [])
    claimed = Versions.of_staged(staged.column(claim), staged.column(_SEQ)) if claim else None
    gone = pc.is_in(index.table.column("instance_id"), value_set=run.loaded.keys)
    if claimed is not None:
        gone = pc.or_(gone, pc.is_in(index.table.column(claim), value_set=claimed.keys))
    kept = index.filter(pc.invert(gone))
    folders = {partition_value(f): f for f in partition_folders(root)}
    rewrite = _unique(staged.column(PARTITION_COLUMN)) | _unique(
        index.filter(gone).table.column("partition")
    )
    if run.merging:
        rewrite |= {v for v, f in folders.items() if [p.name for p in data_files(f)] != [PART_FILE]}
    if run.replacing:
        rewrite |= set(folders)
    if not rewrite:
        return manifest
    # Partitions where no entry stays are rewritten from staged rows alone, unread; a
    # merge reads them all, since files added by hand are in no index.
    reading = _unique(kept.table.column("partition")) & rewrite
    if run.merging and not run.replacing:
        reading = rewrite
    gone_rows = _Gone(index.filter(gone).table, claim or "instance_id", run.merging, claimed)
    arrivals = _arrivals(gone_rows.entries, staged if claim else run.loads, gone_rows.key)
    untouched = pc.invert(pc.is_in(kept.table.column("partition"), value_set=_strings(rewrite)))
    entries = kept.filter(untouched)
    counts = staged.column(PARTITION_COLUMN).value_counts().to_pylist()
    estimates = {c["values"]: c["counts"] for c in counts}
    del staged
    late: list[tuple[str, str]] = []
    readers = [(b.seq, SortedReader(b.file(table.name))) for b in run.batches]
    limit = CHUNK_CELLS // len(table.columns)
    try:
        for chunk in _chunks(root, sorted(rewrite), estimates, reading, limit):
            rows = _chunk_rows(run, table, chunk, reading, readers, claimed, gone_rows)
            written = write_partitions(rows, run.work / table.name)
            entries = PartitionIndex.concat(
                entries, index.entries(rows.select(keys), rows.column(PARTITION_COLUMN))
            )
            _plan_moves(manifest, run.root, table, chunk, written, set(folders), arrivals, late)
    finally:
        for _, reader in readers:
            reader.close()
    manifest.moves += late
    (run.work / table.name).mkdir(exist_ok=True)
    write_arrow(entries.table, run.work / table.name / INDEX_FILE)
    manifest.moves.append((f"{table.name}/{INDEX_FILE}", f"{table.name}/{INDEX_FILE}"))
    manifest.partitions = len(rewrite)
    return manifest


def _plan_moves(
    manifest: Manifest,
    root: Path,
    table: Table,
    chunk: list[str],
    written: set[str],
    existing: set[str],
    arrivals: set[str],
    late: list[tuple[str, str]],
) -> None:
    """Name where each rewritten partition's file goes, and the files that go.

    Partitions that gain keys another partition shows now go ``late``, after the ones
    that lose them, so a reader in between misses such a key rather than seeing it twice.
    """
    for value in chunk:
        folder = partition_folder(root / table.name, value)
        if value in written:
            # A new partition moves in as a whole folder: one rename, none left behind.
            moved = f"{table.name}/{folder.name}"
            if value in existing:
                moved += f"/{PART_FILE}"
            (late if value in arrivals else manifest.moves).append((moved, moved))
        manifest.removals += [
            _relative(root, f)
            for f in data_files(folder)
            if value not in written or f.name != PART_FILE
        ]


@dataclass(frozen=True)
class _Gone:
    """Which visible rows staged rows supersede: their index entries, by partition.

    A merge also reads files added by hand, which no index names: there a row goes when
    its instance or (claimable) key was staged at all.
    """

    entries: pa.Table
    key: str
    merging: bool
    claimed: Versions | None

    def mask(self, old: pa.Table, chunk: list[str], loaded: Versions) -> pa.Array:
        if self.merging:
            gone = pc.is_in(old.column("instance_id"), value_set=loaded.keys)
            if self.claimed is None:
                return gone
            return pc.or_(gone, pc.is_in(old.column(self.key), value_set=self.claimed.keys))
        here = pc.is_in(self.entries.column("partition"), value_set=_strings(set(chunk)))
        keys = self.entries.column(self.key).filter(here).combine_chunks()
        return pc.is_in(old.column(self.key), value_set=keys)


def _arrivals(gone: pa.Table, staged: pa.Table, key: str) -> set[str]:
    """Partitions that staged rows move keys into from another partition.

    ``gone`` holds the superseded index entries (``key``, ``partition``); ``staged`` the
    staged rows' ``key`` and partition. A key moves when an instance's ``cal_dt`` changed
    or another instance claimed a task.
    """
    if not gone.num_rows or not staged.num_rows:
        return set()
    new = staged.select([key, PARTITION_COLUMN])
    pairs = new.join(gone.select([key, "partition"]), key, join_type="inner")
    moved = pc.not_equal(pairs.column(PARTITION_COLUMN), pairs.column("partition"))
    return _unique(pairs.filter(moved).column(PARTITION_COLUMN))


def _chunk_rows(
    run: _Run,
    table: Table,
    chunk: list[str],
    reading: set[str],
    readers: list[tuple[int, SortedReader]],
    claimed: Versions | None,
    gone: _Gone,
) -> pa.Table:
    """The surviving rows of these partitions: visible and staged, latest version only."""
    root = run.root / table.name
    files = [f for v in chunk if v in reading for f in data_files(partition_folder(root, v))]
    old = read_files(files, table, file_schema(table), partitioning=text_partitioning(), base=root)
    # The reader gives the null partition's folder as null; staged rows name it.
    named = pc.fill_null(old.column(PARTITION_COLUMN), NULL_PARTITION)
    old = old.set_column(old.num_columns - 1, PARTITION_COLUMN, named)
    if old.num_rows:
        old = old.filter(pc.invert(gone.mask(old, chunk, run.loaded)))
    parts = []
    for seq, reader in readers:
        new = reader.until(chunk[-1])
        parts.append(_with_seq(new.select(old.column_names).cast(old.schema), seq))
    staged = pa.concat_tables(parts) if parts else _with_seq(old.schema.empty_table(), 0)
    seqs = staged.column(_SEQ)
    keep = run.loaded.is_latest(staged.column("instance_id"), seqs)
    if claimed is not None:
        keep = pc.and_(keep, claimed.is_latest(staged.column(gone.key), seqs))
    return pa.concat_tables([old, staged.filter(keep).drop_columns([_SEQ])])


def _chunks(
    root: Path, values: list[str], staged: dict[str, int], reading: set[str], limit: int
) -> list[list[str]]:
    """Cut the sorted partition values into runs of about ``limit`` rows."""
    chunks: list[list[str]] = [[]]
    rows = 0
    for value in values:
        size = staged.get(value, 0)
        if value in reading:
            size += row_count(data_files(partition_folder(root, value)))
        if chunks[-1] and rows + size > limit:
            chunks.append([])
            rows = 0
        chunks[-1].append(value)
        rows += size
    return chunks


def _compact_failures(run: _Run, manifest: Manifest) -> None:
    """Rewrite the failures: the latest of each ID, unless a later batch loaded it."""
    root = run.root / FAILURES.name
    files = data_files(root)
    if not run.batches and not run.replacing and len(files) <= 1:
        return
    schema = arrow_schema(FAILURES)
    parts = [
        _with_seq(schema.empty_table() if run.replacing else read_files(files, FAILURES, schema), 0)
    ]
    for batch in run.batches:
        parts.append(_with_seq(_read_staged(batch, FAILURES).cast(schema), batch.seq))
    rows = pa.concat_tables(parts)
    ids, seqs = rows.column("instance_id"), rows.column(_SEQ)
    latest = Versions.of_staged(ids, seqs).is_latest(ids, seqs)
    # A failure stays unless a later batch loaded its instance.
    loads = run.loads.filter(pc.is_in(run.loads.column("instance_id"), value_set=pc.unique(ids)))
    last = loads.group_by("instance_id", use_threads=False).aggregate([(_SEQ, "max")])
    loaded_at = pc.take(last.column(f"{_SEQ}_max"), pc.index_in(ids, value_set=last.column(0)))
    unresolved = pc.greater(seqs, pc.fill_null(loaded_at, -1))
    (run.work / FAILURES.name).mkdir()
    # Unlike a partition, the failures file stays when empty: readers then get the columns.
    write_file(
        rows.filter(pc.and_(latest, unresolved)).drop_columns([_SEQ]),
        run.work / FAILURES.name / PART_FILE,
    )
    target = f"{FAILURES.name}/{PART_FILE}"
    manifest.moves.append((target, target))
    manifest.removals += [_relative(run.root, f) for f in files if f.name != PART_FILE]


def _staged(batches: list[StagedBatch], table: Table, columns: list[str]) -> pa.Table:
    """These columns and the partition of every staged row of ``table``, with its batch."""
    names = [*columns, PARTITION_COLUMN]
    parts = [_with_seq(_read_staged(b, table, columns=names), b.seq) for b in batches]
    if not parts:
        empty = pa.table({c: pa.array([], pa.string()) for c in names})
        return _with_seq(empty, 0)
    return pa.concat_tables(parts)


def _read_staged(batch: StagedBatch, table: Table, *, columns: list[str] | None = None) -> pa.Table:
    path = batch.file(table.name)
    try:
        return pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise LoadError(f"cannot read staged batch {path}: {exc}") from exc


def _with_seq(data: pa.Table, seq: int) -> pa.Table:
    return data.append_column(_SEQ, pa.repeat(pa.scalar(seq, pa.int64()), data.num_rows))


def _relative(root: Path, path: Path) -> str:
    return str(path.relative_to(root))


def _unique(values: pa.Array | pa.ChunkedArray) -> set[str]:
    return {str(v) for v in pc.unique(values).to_pylist()}


def _strings(values: set[str]) -> pa.Array:
    return pa.array(sorted(values), pa.string())
