"""The staging area of a Parquet directory: committed batches, compactions and recovery.

Nothing here is where a reader looks: everything lives under ``_staging/`` beside the
table folders, never inside one, so neither a pyarrow dataset nor a DuckDB glob over a
table (``task_instances/**/*.parquet``) can meet a staged file. Each step commits with one
:func:`os.rename` of a whole directory:

- ``.open-<kind>-<uuid>/`` is being written; its writer holds a lock on ``.owner`` in it.
  Recovery deletes it only once that lock is free (its writer died). A writer makes and
  locks it, and recovery looks for unowned ones, under ``_staging.lock`` beside
  ``_parquet.lock``.
- ``batch-<seq>-<mode>/`` is a committed batch: one file per table, every row with its
  partition value. ``seq`` is given under the directory lock, so it orders batches.
- ``compaction/`` is a committed compaction: new files and ``manifest.json`` naming
  where each goes, the files it removes and the batches it consumed. Applying it is
  idempotent, so a run killed half-way is finished by the next writer.

Commits and compactions hold ``_parquet.lock`` (an ``fcntl`` lock), so several writers
may stage batches into one directory side by side.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from extractor.errors import LoadError
from extractor.load._loader import WriteMode
from extractor.load._parquet_files import make_dir

STAGING_DIR = "_staging"
LOCK_FILE = "_parquet.lock"
_OPEN = ".open-"
_OWNER = ".owner"
_CLAIMS_LOCK = "_staging.lock"
_BATCH = "batch-"
_COMPACTION = "compaction"
_MANIFEST = "manifest.json"


@dataclass(frozen=True)
class StagedBatch:
    """A committed batch: ``<table>.parquet`` files, rows with their partition value."""

    seq: int
    mode: WriteMode
    path: Path

    def file(self, table: str) -> Path:
        return self.path / f"{table}.parquet"


def since_last_replace(batches: list[StagedBatch]) -> list[StagedBatch]:
    """The batches that count: a ``replace`` batch drops everything before it."""
    replaces = [i for i, b in enumerate(batches) if b.mode == "replace"]
    return batches[replaces[-1] :] if replaces else batches


@dataclass
class Manifest:
    """What a compaction changes, with paths relative to the Parquet directory.

    Attributes:
        moves: ``(source, target)``: a file of the compaction's directory (relative to
            it) and the file it replaces or becomes, or a new partition's folder.
        removals: Data files that go; an emptied partition folder goes with them.
        batches: Names of the staged batches the compaction consumed.
        partitions: How many partitions it rewrites or removes.
    """

    moves: list[tuple[str, str]] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)
    partitions: int = 0


class Store:
    """The staging area and the lock of one Parquet directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.staging = root / STAGING_DIR

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory's lock: one commit or compaction at a time."""
        make_dir(self.root)
        with _holding(self.root / LOCK_FILE, self.root):
            yield

    @contextlib.contextmanager
    def open_dir(self, kind: str) -> Iterator[Path]:
        """A new directory to stage files in; deleted unless committed by then."""
        path = self.staging / f"{_OPEN}{kind}-{uuid.uuid4().hex}"
        make_dir(self.staging)
        # Made and owned under the lock that recovery holds while it looks for unowned
        # directories: else another writer's recovery could delete this one between its
        # mkdir and its lock (seen with four writers into one directory).
        with _holding(self.root / _CLAIMS_LOCK, self.root):
            make_dir(path)
            fd = os.open(path / _OWNER, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield path
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        finally:
            os.close(fd)

    def commit_batch(self, work: Path, mode: WriteMode) -> None:
        """Make the staged batch in ``work`` part of the directory's next compaction."""
        with self.locked():
            seq = max((b.seq for b in self.batches()), default=0) + 1
            _commit(work, self.staging / f"{_BATCH}{seq:012d}-{mode}")

    def batches(self) -> list[StagedBatch]:
        """The committed batches, oldest first."""
        found = []
        for path in self.staging.glob(f"{_BATCH}*"):
            seq, mode = path.name.removeprefix(_BATCH).split("-", 1)
            found.append(StagedBatch(int(seq), cast(WriteMode, mode), path))
        return sorted(found, key=lambda b: b.seq)

    def commit_compaction(self, work: Path, manifest: Manifest) -> None:
        """Commit the compaction staged in ``work``; from here on it will be applied."""
        (work / _MANIFEST).write_text(json.dumps(manifest.__dict__), encoding="utf-8")
        _commit(work, self.staging / _COMPACTION)

    def apply_compaction(self) -> None:
        """Put a committed compaction's files in place and drop what it consumed.

        Removals go first: a reader in between may miss rows, never see one twice.
        """
        folder = self.staging / _COMPACTION
        manifest = Manifest(**json.loads((folder / _MANIFEST).read_text(encoding="utf-8")))
        try:
            for name in manifest.removals:
                path = self.root / name
                path.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    path.parent.rmdir()  # only succeeds once the partition is empty
            for source, target in manifest.moves:
                _move(folder / source, self.root / target)
        except OSError as exc:
            raise LoadError(f"cannot replace {exc.filename}: {exc.strerror or exc}") from exc
        for name in manifest.batches:
            shutil.rmtree(self.staging / name, ignore_errors=True)
        shutil.rmtree(folder)

    def recover(self) -> None:
        """Finish a compaction a crash interrupted; delete what dead writers left open.

        The caller holds the lock.
        """
        if (self.staging / _COMPACTION / _MANIFEST).exists():
            self.apply_compaction()
        if not self.staging.is_dir():
            return
        with _holding(self.root / _CLAIMS_LOCK, self.root):
            for path in self.staging.glob(f"{_OPEN}*"):
                if not _is_owned(path / _OWNER):
                    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _holding(lock: Path, root: Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl`` lock on the file ``lock`` (created if missing)."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise LoadError(f"cannot lock {root}: {exc.strerror or exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _commit(work: Path, target: Path) -> None:
    """Rename an open directory to its committed name; the caller holds the lock.

    The owner's lock file goes first: under the directory lock no recovery can run, and
    a committed directory has no owner.
    """
    (work / _OWNER).unlink(missing_ok=True)
    try:
        os.rename(work, target)
    except OSError as exc:
        raise LoadError(f"cannot commit {target}: {exc.strerror or exc}") from exc


def _move(source: Path, target: Path) -> None:
    """Replace ``target`` by ``source``; nothing to do if a crash came after it."""
    try:
        os.replace(source, target)
    except FileNotFoundError:
        if not source.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)


def _is_owned(owner: Path) -> bool:
    """Whether a live writer holds the lock on ``owner``."""
    try:
        fd = os.open(owner, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
