"""Compaction: fold the staged batches into the visible files, one rewrite per partition.

A partition is rewritten when staged rows go to it, when it holds rows that staged rows
supersede, or (when merging) when it holds anything but one ``part-0.parquet``; it is
read once, with the staged rows that go to it, and written once as one file. Partitions
are taken in sorted order, a chunk at a time (about :data:`CHUNK_CELLS` values), and the
staged files, sorted by partition, are read in step. Superseded rows are found a key
range at a time (``_parquet_keys``) and the index is copied a record batch at a time:
nothing holds the run's keys, or the dataset's, at once.

Which row wins: every row carries the sequence number of the batch that loaded it (0
for the visible files). An instance's rows survive only from the latest batch that
loaded the instance, so children that vanished on a re-load go too; a claimable key
(``task_inst_id``) survives only from the latest batch that wrote it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from extractor.load._parquet_files import (
    NULL_PARTITION,
    PART_FILE,
    PARTITION_COLUMN,
    SortedReader,
    data_files,
    failing_as,
    file_schema,
    make_dir,
    partition_folder,
    partition_folders,
    partition_value,
    read_files,
    row_count,
    text_partitioning,
    write_file,
    write_partitions,
)
from extractor.load._parquet_index import INDEX_FILE, claim_key, entries, index_schema, read_index
from extractor.load._parquet_keys import SEQ, SHARD_ROWS, Matches, Source, Versions, match, spilled
from extractor.load._parquet_store import Manifest, StagedBatch, Store, since_last_replace
from extractor.tables._frames import arrow_schema
from extractor.tables._schema import DATA_TABLES, FAILURES, INSTANCES, Table

CHUNK_CELLS = 400_000
"""Rows times columns of one table read and written at a time (about two batches)."""

_MIN_READ_ROWS = 64
"""Rows decoded at a time from a staged file, however many files a run staged."""


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
class _Run:
    root: Path
    work: Path
    batches: list[StagedBatch]
    replacing: bool
    merging: bool
    shard_rows: int
    chunk_cells: int
    loads: Source
    spill: Path


def compact(
    store: Store,
    *,
    merge: bool = False,
    shard_rows: int = SHARD_ROWS,
    chunk_cells: int = CHUNK_CELLS,
) -> CompactResult:
    """Fold every committed batch into the visible files; with ``merge``, small files too.

    Args:
        merge: Also rewrite every partition that holds anything but its one file.
        shard_rows: Keys matched at a time (see ``_parquet_keys``).
        chunk_cells: Values of one table read and written at a time.

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
            spill = work / ".spill"
            make_dir(spill)
            run = _Run(
                store.root,
                work,
                live,
                replacing=any(b.mode == "replace" for b in live),
                merging=merge,
                shard_rows=shard_rows,
                chunk_cells=chunk_cells,
                loads=spilled(_staged(live, INSTANCES, "instance_id"), spill / "loads.arrow"),
                spill=spill,
            )
            partitions = 0
            for table in DATA_TABLES:
                part = _compact_table(run, table)
                manifest.moves += part.moves
                manifest.removals += part.removals
                partitions += part.partitions
                # Hand back what the table took, so the tables' peaks do not pile up.
                pa.default_memory_pool().release_unused()
            _compact_failures(run, manifest)
            shutil.rmtree(spill)
            store.commit_compaction(work, manifest)
        store.apply_compaction()
    seconds = time.perf_counter() - started
    return CompactResult(batches=len(batches), partitions=partitions, seconds=seconds)


def _compact_table(run: _Run, table: Table) -> Manifest:
    """Stage the table's rewritten partitions and index; return where they go."""
    manifest = Manifest()
    root = run.root / table.name
    claim = claim_key(table)
    schema = index_schema(claim)

    def index() -> Iterator[pa.Table]:
        if run.replacing:
            return iter([schema.empty_table()])
        # A merge reads files added by hand too, which no index names.
        return read_index(root, claim_key=claim, scan=run.merging)

    loaded = match(run.loads, index, "instance_id", run.spill, run.shard_rows)
    claimed = None
    if claim:
        staged = spilled(_staged(run.batches, table, claim), run.spill / f"{table.name}.arrow")
        claimed = match(staged, index, claim, run.spill, run.shard_rows)
    superseded = loaded.gone
    if claimed is not None:  # an entry may be gone both ways
        both = pa.concat_tables([loaded.gone, claimed.gone])
        superseded = both.group_by(schema.names, use_threads=False).aggregate([])
    gone = _Gone(superseded.select(schema.names), claim or "instance_id")
    arrivals = (claimed or loaded).arrivals
    estimates = _partition_rows(run.batches, table)
    folders = {partition_value(f): f for f in partition_folders(root)}
    rewrite = set(estimates) | set(pc.unique(gone.entries.column("partition")).to_pylist())
    if run.merging:
        rewrite |= {v for v, f in folders.items() if [p.name for p in data_files(f)] != [PART_FILE]}
    if run.replacing:
        rewrite |= set(folders)
    if not rewrite:
        return manifest
    (run.work / table.name).mkdir()
    late: list[tuple[str, str]] = []
    limit = run.chunk_cells // len(table.columns)
    share = max(_MIN_READ_ROWS, limit // max(len(run.batches), 1))
    readers = [(b.seq, SortedReader(b.file(table.name), rows=share)) for b in run.batches]
    path = run.work / table.name / INDEX_FILE
    try:
        with failing_as(f"cannot write {path}"), pa.ipc.new_file(str(path), schema) as writer:
            held = _copy_index(index(), rewrite, writer)
            # Partitions where no entry stays are rewritten from staged rows alone, unread.
            lost = pc.value_counts(gone.entries.column("partition")).to_pylist()
            lost_by = {c["values"]: c["counts"] for c in lost}
            reading = {v for v in rewrite if held.get(v, 0) > lost_by.get(v, 0)}
            for chunk in _chunks(root, sorted(rewrite), estimates, reading, limit):
                rows = _chunk_rows(run, table, chunk, reading, readers, loaded, claimed, gone)
                written = write_partitions(rows, run.work / table.name)
                writer.write_table(entries(rows, rows.column(PARTITION_COLUMN), claim))
                _plan_moves(manifest, run.root, table, chunk, written, set(folders), arrivals, late)
    finally:
        for _, reader in readers:
            reader.close()
    manifest.moves += late
    manifest.moves.append((f"{table.name}/{INDEX_FILE}", f"{table.name}/{INDEX_FILE}"))
    manifest.partitions = len(rewrite)
    return manifest


def _copy_index(
    parts: Iterator[pa.Table], rewrite: set[str], writer: pa.ipc.RecordBatchFileWriter
) -> dict[str, int]:
    """Copy the entries of partitions left as they are; count those of the others."""
    held: dict[str, int] = {}
    values = _strings(rewrite)
    for part in parts:
        inside = pc.is_in(part.column("partition"), value_set=values)
        writer.write_table(part.filter(pc.invert(inside)))
        for count in pc.value_counts(part.column("partition").filter(inside)).to_pylist():
            held[count["values"]] = held.get(count["values"], 0) + count["counts"]
    return held


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
    """Which visible rows staged rows supersede: their index entries, by partition."""

    entries: pa.Table
    key: str

    def mask(self, old: pa.Table, chunk: list[str]) -> pa.Array:
        here = pc.is_in(self.entries.column("partition"), value_set=_strings(set(chunk)))
        keys = self.entries.column(self.key).filter(here).combine_chunks()
        return pc.is_in(old.column(self.key), value_set=keys)


def _chunk_rows(
    run: _Run,
    table: Table,
    chunk: list[str],
    reading: set[str],
    readers: list[tuple[int, SortedReader]],
    loaded: Matches,
    claimed: Matches | None,
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
        old = old.filter(pc.invert(gone.mask(old, chunk)))
    parts = []
    for seq, reader in readers:
        new = reader.until(chunk[-1])
        parts.append(_with_seq(new.select(old.column_names).cast(old.schema), seq))
    staged = pa.concat_tables(parts) if parts else _with_seq(old.schema.empty_table(), 0)
    seqs = staged.column(SEQ)
    keep = loaded.versions.is_latest(staged.column("instance_id"), seqs)
    if claimed is not None:
        keep = pc.and_(keep, claimed.versions.is_latest(staged.column(gone.key), seqs))
    return pa.concat_tables([old, staged.filter(keep).drop_columns([SEQ])])


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
    ids, seqs = rows.column("instance_id"), rows.column(SEQ)
    latest = Versions.of_staged(ids, seqs).is_latest(ids, seqs)
    # A failure stays unless a later batch loaded its instance.
    failed = pc.unique(ids)
    loads = pa.concat_tables(
        part.filter(pc.is_in(part.column("instance_id"), value_set=failed)) for part in run.loads()
    )
    last = loads.group_by("instance_id", use_threads=False).aggregate([(SEQ, "max")])
    loaded_at = pc.take(last.column(f"{SEQ}_max"), pc.index_in(ids, value_set=last.column(0)))
    unresolved = pc.greater(seqs, pc.fill_null(loaded_at, -1))
    (run.work / FAILURES.name).mkdir()
    # Unlike a partition, the failures file stays when empty: readers then get the columns.
    write_file(
        rows.filter(pc.and_(latest, unresolved)).drop_columns([SEQ]),
        run.work / FAILURES.name / PART_FILE,
    )
    target = f"{FAILURES.name}/{PART_FILE}"
    manifest.moves.append((target, target))
    manifest.removals += [_relative(run.root, f) for f in files if f.name != PART_FILE]


def _staged(batches: list[StagedBatch], table: Table, key: str) -> Iterator[pa.Table]:
    """Yield ``key`` and the partition of each batch's staged rows, with its batch.

    Yields at least one table.
    """
    names = [key, PARTITION_COLUMN]
    schema = pa.schema([*((c, pa.string()) for c in names), (SEQ, pa.int64())])
    yield schema.empty_table()
    for batch in batches:
        yield _with_seq(_read_staged(batch, table, columns=names), batch.seq).cast(schema)


def _partition_rows(batches: list[StagedBatch], table: Table) -> dict[str, int]:
    """The number of staged rows of ``table`` going to each partition."""
    rows: dict[str, int] = {}
    for batch in batches:
        values = _read_staged(batch, table, columns=[PARTITION_COLUMN]).column(0)
        for count in pc.value_counts(values).to_pylist():
            rows[count["values"]] = rows.get(count["values"], 0) + count["counts"]
    return rows


def _read_staged(batch: StagedBatch, table: Table, *, columns: list[str] | None = None) -> pa.Table:
    path = batch.file(table.name)
    with failing_as(f"cannot read staged batch {path}"):
        return pq.read_table(path, columns=columns)


def _with_seq(data: pa.Table, seq: int) -> pa.Table:
    return data.append_column(SEQ, pa.repeat(pa.scalar(seq, pa.int64()), data.num_rows))


def _relative(root: Path, path: Path) -> str:
    return str(path.relative_to(root))


def _strings(values: set[str]) -> pa.Array:
    return pa.array(sorted(values), pa.string())
