"""Match a run's staged keys against a dataset's index, one key range at a time.

Both sides grow without bound (every task of every instance a run loaded; every entry
of the dataset), so neither is held whole: both are cut by key range into shards of
about :data:`SHARD_ROWS` keys, spilled to Arrow files in the compaction's directory
and matched one shard at a time. What comes out is the size of the re-loads rather
than of the run: the keys staged more than once, the index entries that staged keys
supersede, and the partitions keys move into.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from extractor.load._parquet_files import PARTITION_COLUMN, failing_as, make_dir, read_arrow

SHARD_ROWS = 250_000
"""Keys matched at a time, staged and indexed together (about ten batches' tasks)."""

SEQ = "__seq"
"""The batch a staged row comes from (0 for the visible files)."""

_SAMPLE_EVERY = 256
"""One key in this many is kept to place the shards' bounds."""

Source = Callable[[], Iterator[pa.Table]]
"""Reads a side again from the start, a bounded table at a time (at least one, maybe empty)."""


@dataclass(frozen=True)
class Versions:
    """The keys staged by more than one batch, with the latest of those batches.

    Most keys are staged once; leaving them out keeps lookups the size of the re-loads.
    """

    repeated: pa.Array
    latest: pa.Array

    @classmethod
    def of_staged(
        cls, keys: pa.ChunkedArray | pa.Array, seqs: pa.ChunkedArray | pa.Array
    ) -> Versions:
        counts = pc.value_counts(keys)
        repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
        if not len(repeated):  # the usual run: every key loaded once
            return cls(repeated, pa.array([], pa.int64()))
        again = pc.is_in(keys, value_set=repeated)
        table = pa.table({"k": keys, "s": seqs}).filter(again)
        latest = table.group_by("k", use_threads=False).aggregate([("s", "max")])
        return cls(latest.column("k").combine_chunks(), latest.column("s_max").combine_chunks())

    def is_latest(self, keys: pa.ChunkedArray | pa.Array, seqs: pa.ChunkedArray) -> pa.Array:
        """Whether each staged row, of batch ``seqs``, is its key's latest."""
        found = pc.take(self.latest, pc.index_in(keys, value_set=self.repeated))
        return pc.equal(seqs, pc.coalesce(found, seqs))


@dataclass(frozen=True)
class Matches:
    """What one key's staged rows do to the visible ones.

    Attributes:
        versions: The keys staged more than once, with their latest batch.
        gone: The index entries whose key was staged: those rows are superseded.
        arrivals: Partitions that staged rows move a key into from another partition
            (an instance whose ``cal_dt`` changed, a task another instance claimed).
    """

    versions: Versions
    gone: pa.Table
    arrivals: set[str]


def match(staged: Source, index: Source, key: str, work: Path, shard_rows: int) -> Matches:
    """Match staged rows (``key``, ``cal_dt``, :data:`SEQ`) against index entries.

    Index entries hold ``key`` and ``partition``. Each side is read twice: once to
    count and sample the keys, once to spill them by shard (or, when all fit in one
    shard, to match them in memory).
    """
    samples: list[pa.Array] = []
    rows = 0
    for part in itertools.chain(staged(), index()):
        keys = part.column(key)
        rows += len(keys)
        samples += keys.take(pa.array(range(0, len(keys), _SAMPLE_EVERY), pa.int64())).chunks
    bounds = _bounds(samples, -(-rows // shard_rows))
    if not len(bounds):
        return _match_shard(_concat(staged()), _concat(index()), key)
    folder = work / f".shards-{key}"
    make_dir(folder)
    try:
        staged_files = _spill(staged(), key, bounds, folder / "staged")
        index_files = _spill(index(), key, bounds, folder / "index")
        results = [
            _match_shard(_concat(read_arrow(s)), _concat(read_arrow(i)), key)
            for s, i in zip(staged_files, index_files, strict=True)
        ]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return Matches(
        Versions(
            pa.concat_arrays([r.versions.repeated for r in results]),
            pa.concat_arrays([r.versions.latest for r in results]),
        ),
        pa.concat_tables([r.gone for r in results]),
        set().union(*(r.arrivals for r in results)),
    )


def spilled(parts: Iterator[pa.Table], path: Path) -> Source:
    """Write a side to an Arrow file once; return a source that reads it back from there."""
    with failing_as(f"cannot write {path}"):
        first = next(parts)
        with pa.ipc.new_file(str(path), first.schema) as writer:
            writer.write_table(first)
            for part in parts:
                writer.write_table(part)
    return lambda: read_arrow(path)


def _match_shard(staged: pa.Table, index: pa.Table, key: str) -> Matches:
    keys = staged.column(key).combine_chunks()
    gone = index.filter(pc.is_in(index.column(key), value_set=keys))
    versions = Versions.of_staged(keys, staged.column(SEQ))
    return Matches(versions, gone, _arrivals(gone, staged, key))


def _arrivals(gone: pa.Table, staged: pa.Table, key: str) -> set[str]:
    """Partitions where a staged row holds a key that ``gone`` has in another partition."""
    if not gone.num_rows or not staged.num_rows:
        return set()
    new = staged.select([key, PARTITION_COLUMN])
    pairs = new.join(gone.select([key, "partition"]), key, join_type="inner")
    moved = pc.not_equal(pairs.column(PARTITION_COLUMN), pairs.column("partition"))
    return {str(v) for v in pc.unique(pairs.filter(moved).column(PARTITION_COLUMN)).to_pylist()}


def _bounds(samples: list[pa.Array], shards: int) -> pa.Array:
    """The lowest key of every shard but the first, from the sampled keys."""
    if shards <= 1 or not samples:
        return pa.array([], pa.string())
    keys = pc.unique(pa.concat_arrays(samples).drop_null())
    keys = keys.take(pc.array_sort_indices(keys))
    cuts = sorted({len(keys) * i // shards for i in range(1, shards)} - {0})
    return keys.take(pa.array(cuts, pa.int64()))


def _spill(parts: Iterator[pa.Table], key: str, bounds: pa.Array, stem: Path) -> list[Path]:
    """Write each part's rows to the file of their shard; return the files in key order."""
    paths = [stem.with_name(f"{stem.name}-{n}.arrow") for n in range(len(bounds) + 1)]
    writers: list[pa.ipc.RecordBatchFileWriter] = []
    try:
        with failing_as(f"cannot write {stem.parent}"):
            for part in parts:
                if not writers:
                    writers = [pa.ipc.new_file(str(p), part.schema) for p in paths]
                shard = _shard_of(part.column(key), bounds)
                for n, writer in enumerate(writers):
                    writer.write_table(part.filter(pc.equal(shard, n)))
    finally:
        for writer in writers:
            writer.close()
    return paths


def _shard_of(keys: pa.ChunkedArray, bounds: pa.Array) -> pa.Array:
    """The shard of each key: how many bounds it reaches (a null key goes to the first)."""
    shard = pa.repeat(pa.scalar(0, pa.int32()), len(keys))
    for bound in bounds:
        reached = pc.fill_null(pc.greater_equal(keys, bound), False)
        shard = pc.add(shard, pc.cast(reached, pa.int32()))
    return shard


def _concat(parts: Iterator[pa.Table]) -> pa.Table:
    return pa.concat_tables(list(parts))
