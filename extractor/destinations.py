"""Destinations of a run: a SQL database or a Parquet directory, each with its run state."""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as ds
import sqlalchemy as sa

from extractor.errors import LoadError
from extractor.frames import FlowFrames
from extractor.loaders import WriteMode, connect, write_parquet, write_sql
from extractor.schema import FAILURES
from extractor.state import StateStore

_STATE_FILE = "_extractor_state.sqlite"


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
        self.engine = connect(url_or_engine)
        self.mode: WriteMode = mode
        self.schema = schema
        self.table_prefix = table_prefix
        self.label = self.engine.url.render_as_string(hide_password=True)
        self.state: StateStore | None = StateStore(self.engine, schema=schema)

    def write(self, frames: FlowFrames) -> None:
        write_sql(
            frames, self.engine, mode=self.mode, schema=self.schema, table_prefix=self.table_prefix
        )
        if self.mode == "replace":
            self.mode = "upsert"  # replace empties the tables once per run, not per batch

    def failed_ids(self) -> list[str]:
        table = sa.Table(
            f"{self.table_prefix}{FAILURES.name}",
            sa.MetaData(schema=self.schema),
            sa.Column("instance_id", sa.Text),
        )
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(sa.select(table.c.instance_id)).scalars())
        except sa.exc.SQLAlchemyError:
            return []


class ParquetDestination:
    """A directory of Parquet datasets; run state in a SQLite file beside them."""

    def __init__(self, path: str | Path, *, mode: WriteMode = "upsert") -> None:
        self.path = Path(path)
        self.mode: WriteMode = mode
        self.label = str(self.path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LoadError(f"cannot create {self.path}: {exc.strerror}") from None
        engine = sa.create_engine(f"sqlite:///{self.path / _STATE_FILE}")
        self.state: StateStore | None = StateStore(engine)

    def write(self, frames: FlowFrames) -> None:
        write_parquet(frames, self.path, mode=self.mode)
        if self.mode == "replace":
            self.mode = "upsert"

    def failed_ids(self) -> list[str]:
        folder = self.path / FAILURES.name
        if not folder.exists():
            return []
        table = ds.dataset(folder, format="parquet").to_table(columns=["instance_id"])
        return [str(v) for v in table.column("instance_id").to_pylist()]
