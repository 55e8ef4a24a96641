"""Files of a Parquet write, staged first and put in place only once all are written."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow import feather

from extractor.errors import LoadError

_COMPRESSION = "snappy"
_MAX_OPEN_FILES = 1024


def data_files(folder: Path) -> list[Path]:
    """The Parquet files a dataset reader would see in ``folder``."""
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.suffix == ".parquet" and not p.name.startswith((".", "_"))
    )


def make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LoadError(f"cannot create directory {path}: {exc.strerror or exc}") from exc


class StagedChanges:
    """New files written where readers do not look, then moved into place together.

    Writing is the slow part that can fail (full disk, a bad value); while it runs no
    file a reader sees has changed, and :meth:`discard` removes what was staged. Only
    :meth:`apply` touches the visible files: a quick series of :func:`os.replace` calls,
    each atomic, so a reader meets every file whole, old or new. Staged files live on
    the same file system as their targets: beside them under a dot-name, or in a
    dot-directory of the same dataset (readers skip names starting with ``.`` or ``_``).
    Index files staged ``first`` move before the data files, the others after them.
    """

    def __init__(self) -> None:
        self._first: list[tuple[Path, Path]] = []
        self._moves: list[tuple[Path, Path]] = []
        self._last: list[tuple[Path, Path]] = []
        self._removals: list[Path] = []
        self._scratch: list[Path] = []

    @classmethod
    def combine(cls, parts: list[StagedChanges]) -> StagedChanges:
        """Join changes staged separately (one per dataset) into one set to apply."""
        combined = cls()
        for part in parts:
            combined._first += part._first
            combined._moves += part._moves
            combined._last += part._last
            combined._removals += part._removals
            combined._scratch += part._scratch
        return combined

    def write_parquet(self, data: pa.Table, target: Path) -> None:
        """Stage ``data`` as the Parquet file ``target``."""
        self._moves.append((self._stage_file(_parquet_writer(data), target), target))

    def write_arrow(self, data: pa.Table, target: Path, *, first: bool = False) -> None:
        """Stage ``data`` as the Arrow IPC file ``target``."""
        moves = self._first if first else self._last
        moves.append((self._stage_file(_arrow_writer(data), target), target))

    def write_partitions(self, data: pa.Table, root: Path, column: str) -> set[str]:
        """Stage ``data`` as ``root/<column>=<value>/part-<i>.parquet`` files.

        ``column`` (text, or dictionary-encoded text) holds each row's partition value and
        is left out of the files. Data files
        already in a written partition that this write does not replace are removed.

        Returns:
            The partition values written.
        """
        if not data.num_rows:
            return set()
        stage = root / f".staging-{uuid.uuid4().hex}"
        self._scratch.append(stage)
        values = data.column(column).unique()
        try:
            ds.write_dataset(
                data,
                stage,
                format="parquet",
                partitioning=ds.partitioning(pa.schema([data.schema.field(column)]), flavor="hive"),
                basename_template="part-{i}.parquet",
                file_options=ds.ParquetFileFormat().make_write_options(compression=_COMPRESSION),
                max_partitions=max(len(values), 1),
                max_open_files=max(_MAX_OPEN_FILES, len(values) + 1),
                existing_data_behavior="error",
            )
        except OSError as exc:
            raise LoadError(f"cannot write under {root}: {exc.strerror or exc}") from exc
        written = set()
        for folder in sorted(p for p in stage.iterdir() if p.is_dir()):
            written.add(folder.name.split("=", 1)[1])
            target = root / folder.name
            new = data_files(folder)
            self._moves.extend((f, target / f.name) for f in new)
            names = {f.name for f in new}
            self._removals.extend(f for f in data_files(target) if f.name not in names)
        return written

    def remove(self, path: Path) -> None:
        """Remove ``path`` when the changes apply; its folder too if left empty."""
        self._removals.append(path)

    def discard(self) -> None:
        """Delete everything staged."""
        for temporary, _ in self._first + self._moves + self._last:
            temporary.unlink(missing_ok=True)
        for scratch in self._scratch:
            shutil.rmtree(scratch, ignore_errors=True)

    def apply(self) -> None:
        """Move the staged files into place, then remove the files that go."""
        try:
            for temporary, target in self._first + self._moves:
                target.parent.mkdir(exist_ok=True)
                os.replace(temporary, target)
            for path in self._removals:
                path.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    path.parent.rmdir()  # only succeeds once the partition is empty
            for temporary, target in self._last:
                os.replace(temporary, target)
        except OSError as exc:
            self.discard()
            raise LoadError(f"cannot replace {exc.filename}: {exc.strerror or exc}") from exc
        for scratch in self._scratch:
            shutil.rmtree(scratch, ignore_errors=True)

    def _stage_file(self, write: Callable[[Path], None], target: Path) -> Path:
        make_dir(target.parent)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            write(temporary)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise LoadError(f"cannot write {target}: {exc.strerror or exc}") from exc
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return temporary


def _parquet_writer(data: pa.Table) -> Callable[[Path], None]:
    return lambda path: pq.write_table(data, path, compression=_COMPRESSION)


def _arrow_writer(data: pa.Table) -> Callable[[Path], None]:
    return lambda path: feather.write_feather(data, path, compression="uncompressed")
