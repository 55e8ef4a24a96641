"""Run state kept in the destination: checkpoints for resume and watermarks for sync.

A SQL destination keeps its state in its own database, in tables with the same schema
and prefix as its data (so each set of prefixed tables has its own runs and
watermarks); a Parquet destination in a SQLite file beside its datasets. Data is
written (idempotently) before its checkpoint, so a crash between the two costs a
re-fetch of one batch, never a gap or a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import NamedTuple

import sqlalchemy as sa

from extractor.errors import LoadError
from extractor.load._ddl import as_utc, check_names
from extractor.load._driver_errors import translated
from extractor.load._turns import take_turn

_CHUNK = 500


class Moving(NamedTuple):
    """A loaded instance whose status can still change: when it was triggered, and when
    it was last fetched (UTC)."""

    trigger_time: datetime | None
    extracted_at: datetime | None


class StateStore:
    """Checkpoints and watermarks in one database (any SQLAlchemy engine)."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        schema: str | None = None,
        table_prefix: str = "",
        label: str | None = None,
    ) -> None:
        check_names(table_prefix=table_prefix)
        self.engine = engine
        self._schema = schema
        meta = sa.MetaData(schema=schema)
        self._checkpoints = sa.Table(
            f"{table_prefix}extractor_checkpoints",
            meta,
            sa.Column("run_key", sa.String(64), primary_key=True),
            sa.Column("instance_id", sa.Text, primary_key=True),
            sa.Column("outcome", sa.String(16), nullable=False),
        )
        self._runs = sa.Table(
            f"{table_prefix}extractor_runs",
            meta,
            sa.Column("run_key", sa.String(64), primary_key=True),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("finished_at", sa.DateTime(timezone=True)),
            sa.Column("description", sa.Text),
        )
        self._watermarks = sa.Table(
            f"{table_prefix}extractor_watermarks",
            meta,
            sa.Column("name", sa.String(200), primary_key=True),
            sa.Column("value", sa.DateTime(timezone=True), nullable=False),
        )
        self._where = label or engine.url.render_as_string(hide_password=True)
        if engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:"):
            # Each thread of a run would open its own empty database.
            raise LoadError(
                "an in-memory SQLite database cannot keep a run's state; "
                "give a file (sqlite:///path.db)"
            )
        with translated(f"creating the state tables in {self._where}"), self._writing() as conn:
            meta.create_all(conn)

    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        """A transaction that waits for the database's other writers (see ``_turns``)."""
        with translated(f"writing the run state in {self._where}"), self.engine.begin() as conn:
            take_turn(conn, self._schema)
            yield conn

    @contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        with translated(f"reading the run state in {self._where}"), self.engine.connect() as conn:
            yield conn

    def begin_run(self, run_key: str, description: str) -> bool:
        """Start or resume a run; return True when an unfinished run is resumed."""
        with self._writing() as conn:
            row = conn.execute(
                sa.select(self._runs.c.finished_at).where(self._runs.c.run_key == run_key)
            ).first()
            if row is not None and row.finished_at is None:
                return True
            conn.execute(self._checkpoints.delete().where(self._checkpoints.c.run_key == run_key))
            conn.execute(self._runs.delete().where(self._runs.c.run_key == run_key))
            conn.execute(
                self._runs.insert().values(
                    run_key=run_key, started_at=datetime.now(UTC), description=description
                )
            )
        return False

    def finish_run(self, run_key: str) -> None:
        with self._writing() as conn:
            conn.execute(
                self._runs.update()
                .where(self._runs.c.run_key == run_key)
                .values(finished_at=datetime.now(UTC))
            )
            conn.execute(self._checkpoints.delete().where(self._checkpoints.c.run_key == run_key))

    def done(self, run_key: str, ids: Sequence[str]) -> set[str]:
        """Return which of ``ids`` this run has already loaded or recorded as failed."""
        found: set[str] = set()
        c = self._checkpoints.c
        with self._reading() as conn:
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i : i + _CHUNK]
                found.update(
                    conn.execute(
                        sa.select(c.instance_id).where(
                            c.run_key == run_key, c.instance_id.in_(chunk)
                        )
                    ).scalars()
                )
        return found

    def record(self, run_key: str, outcomes: Iterable[tuple[str, str]]) -> None:
        """Checkpoint ``(instance_id, outcome)`` pairs; outcome is loaded or failed."""
        rows = dict(outcomes)
        if not rows:
            return
        c = self._checkpoints.c
        with self._writing() as conn:
            ids = list(rows)
            for i in range(0, len(ids), _CHUNK):
                conn.execute(
                    self._checkpoints.delete().where(
                        c.run_key == run_key, c.instance_id.in_(ids[i : i + _CHUNK])
                    )
                )
            conn.execute(
                self._checkpoints.insert(),
                [{"run_key": run_key, "instance_id": k, "outcome": v} for k, v in rows.items()],
            )

    def watermark(self, name: str) -> datetime | None:
        with self._reading() as conn:
            value = conn.execute(
                sa.select(self._watermarks.c.value).where(self._watermarks.c.name == name)
            ).scalar()
        return as_utc(value)

    def set_watermark(self, name: str, value: datetime) -> None:
        with self._writing() as conn:
            conn.execute(self._watermarks.delete().where(self._watermarks.c.name == name))
            # In UTC: SQLite keeps the wall-clock digits and drops the zone.
            conn.execute(self._watermarks.insert().values(name=name, value=value.astimezone(UTC)))
