"""Destinations of a run: a SQL database or a Parquet directory, each with its run state."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import pyarrow.dataset as ds
import sqlalchemy as sa

from extractor.errors import LoadError
from extractor.load import ParquetLoader, SqlLoader, WriteMode
from extractor.load._state import StateStore
from extractor.tables._frames import FlowFrames
from extractor.tables._schema import FAILURES, INSTANCES

_STATE_FILE = "_extractor_state.sqlite"


class Moving(NamedTuple):
    """A loaded instance whose status can still change: when it was triggered, and when
    it was last fetched (UTC)."""

    trigger_time: datetime | None
    extracted_at: datetime | None


class SqlDestination:
    """Any SQLAlchemy database; run state lives in the same database."""

    def __init__(
        self,
        url_or_engine: str | sa.Engine,
        *,
        mode: WriteMode = "upsert",
        schema: str | None = None,
        table_prefix: str = "",
    ) -> None:
        self._loader = SqlLoader(url_or_engine, schema=schema, table_prefix=table_prefix)
        self.engine = self._loader.engine
        self.mode: WriteMode = mode
        self.schema = schema
        self.table_prefix = table_prefix
        self.label = self._loader.label
        # The tables (and the schema) first, so that the state tables find their schema
        # and any refusal names this database and the driver's reason.
        self._loader.prepare()
        self.state: StateStore | None = StateStore(
            self.engine, schema=schema, table_prefix=table_prefix, label=self.label
        )

    def write(self, frames: FlowFrames) -> None:
        self._loader.write(frames, mode=self.mode)
        if self.mode == "replace":
            self.mode = "upsert"  # replace empties the tables once per run, not per batch

    def finish(self) -> None:
        """Nothing to do: each batch is committed in its own transaction."""

    def _table(self, name: str, *columns: sa.Column[object]) -> sa.Table:
        return sa.Table(f"{self.table_prefix}{name}", sa.MetaData(schema=self.schema), *columns)

    def _exists(self, name: str) -> bool:
        return sa.inspect(self.engine).has_table(f"{self.table_prefix}{name}", self.schema)

    def failed_ids(self) -> list[str]:
        if not self._exists(FAILURES.name):
            return []
        table = self._table(FAILURES.name, sa.Column("instance_id", sa.Text))
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(table.c.instance_id)).scalars())

    def terminal_ids(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` are loaded in a terminal status (nothing left to fetch)."""
        if not ids or not self._exists(INSTANCES.name):
            return set()
        table = self._table(
            INSTANCES.name,
            sa.Column("instance_id", sa.Text),
            sa.Column("is_terminal", sa.Boolean),
        )
        query = sa.select(table.c.instance_id).where(
            table.c.instance_id.in_(ids), table.c.is_terminal.is_(True)
        )
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def moving(self) -> dict[str, Moving]:
        """Instances loaded in a status that can still change (RUNNING, WAIT, ...)."""
        if not self._exists(INSTANCES.name):
            return {}
        table = self._table(
            INSTANCES.name,
            sa.Column("instance_id", sa.Text),
            sa.Column("is_terminal", sa.Boolean),
            sa.Column("trigger_time", sa.DateTime(timezone=True)),
            sa.Column("extracted_at", sa.DateTime(timezone=True)),
        )
        query = sa.select(table.c.instance_id, table.c.trigger_time, table.c.extracted_at).where(
            sa.or_(table.c.is_terminal.is_(False), table.c.is_terminal.is_(None))
        )
        with self.engine.connect() as conn:
            return {i: Moving(_utc(t), _utc(e)) for i, t, e in conn.execute(query)}


class ParquetDestination:
    """A directory of Parquet datasets; run state in a SQLite file beside them.

    Batches are staged as they come and become visible together when the run
    finishes (:meth:`finish`), each partition rewritten once.
    """

    def __init__(self, path: str | Path, *, mode: WriteMode = "upsert") -> None:
        self.path = Path(path)
        self.mode: WriteMode = mode
        self.label = str(self.path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LoadError(f"cannot create {self.path}: {exc.strerror}") from None
        engine = sa.create_engine(f"sqlite:///{self.path / _STATE_FILE}")
        self.state: StateStore | None = StateStore(engine, label=str(self.path / _STATE_FILE))
        self.loader = ParquetLoader(self.path)

    def write(self, frames: FlowFrames) -> None:
        self.loader.write(frames, mode=self.mode)
        if self.mode == "replace":
            self.mode = "upsert"

    def finish(self) -> None:
        """Fold the run's staged batches into the visible files."""
        self.loader.compact()

    def _read(self, name: str, expression: ds.Expression | None = None) -> list[str]:
        return [str(v) for v in self._columns(name, ["instance_id"], expression)[0]]

    def _columns(
        self, name: str, columns: list[str], expression: ds.Expression | None = None
    ) -> list[list[object]]:
        folder = self.path / name
        if not any(folder.glob("**/*.parquet")):
            return [[] for _ in columns]
        dataset = ds.dataset(folder, format="parquet", partitioning="hive")
        table = dataset.to_table(columns=columns, filter=expression)
        return [table.column(c).to_pylist() for c in columns]

    def failed_ids(self) -> list[str]:
        return self._read(FAILURES.name)

    def terminal_ids(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` are loaded in a terminal status (nothing left to fetch)."""
        if not ids:
            return set()
        wanted = ds.field("instance_id").isin(ids) & (ds.field("is_terminal") == True)  # noqa: E712
        return set(self._read(INSTANCES.name, wanted))

    def moving(self) -> dict[str, Moving]:
        """Instances loaded in a status that can still change (RUNNING, WAIT, ...)."""
        moving = (ds.field("is_terminal") == False) | ds.field("is_terminal").is_null()  # noqa: E712
        ids, times, extracted = self._columns(
            INSTANCES.name, ["instance_id", "trigger_time", "extracted_at"], moving
        )
        return {
            str(i): Moving(_utc(t), _utc(e)) for i, t, e in zip(ids, times, extracted, strict=True)
        }


def _utc(value: object) -> datetime | None:
    """A trigger time as read back: SQLite's are naive, and mean UTC."""
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
