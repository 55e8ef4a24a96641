"""Rows -> Arrow tables and pandas DataFrames, typed by :mod:`extractor.tables._schema`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

import pandas as pd
import pyarrow as pa

from extractor.tables._flattener import Columns, Row, Rows
from extractor.tables._schema import (
    DEPENDENCIES,
    FAILURES,
    INSTANCES,
    PARAMETERS,
    QUARANTINE,
    RELATIONS,
    TABLES,
    TASKS,
    LogicalType,
    Table,
)

_ARROW_TYPES: Mapping[LogicalType, pa.DataType] = {
    "string": pa.string(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
}

_PANDAS_TYPES: Mapping[pa.DataType, Any] = {
    pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
    pa.string(): pd.StringDtype(),
    pa.float64(): pd.Float64Dtype(),
}


def arrow_schema(table: Table) -> pa.Schema:
    """Return the Arrow schema of a declared table, with keys and descriptions as metadata."""
    fields = [
        pa.field(
            c.name,
            _ARROW_TYPES[c.type],
            nullable=c.nullable,
            metadata={"description": c.description, "source": c.source},
        )
        for c in table.columns
    ]
    return pa.schema(fields, metadata={"primary_key": ",".join(table.primary_key)})


def columns_to_arrow(columns: Columns) -> pa.Table:
    """Type one table's columns into an Arrow table of its declared schema."""
    schema = arrow_schema(columns.table)
    arrays = [pa.array(columns.values[f.name], type=f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def rows_to_arrow(table: Table, rows: Iterable[Row]) -> pa.Table:
    """Build a typed Arrow table from rows keyed by the table's column names.

    Raises:
        KeyError: a row lacks one of the table's columns.
    """
    columns = Columns(table)
    for row in rows:
        columns.add(row)
    return columns_to_arrow(columns)


class _Frame:
    """A :class:`FlowFrames` attribute that reads one table as pandas."""

    def __init__(self, table: Table) -> None:
        self.name = table.name
        self.__doc__ = f"The ``{table.name}`` table as pandas."

    @overload
    def __get__(self, frames: None, owner: type) -> _Frame: ...

    @overload
    def __get__(self, frames: FlowFrames, owner: type | None = None) -> pd.DataFrame: ...

    def __get__(self, frames: FlowFrames | None, owner: type | None = None) -> Any:
        return self if frames is None else frames.frame(self.name)


@dataclass
class FlowFrames:
    """The flattened tables of a batch of flow instances.

    Arrow tables are the storage; the pandas properties convert on first access.
    ``unknown_fields`` counts API fields this version does not know (kept in
    ``extra_json``), by dotted path.
    """

    tables: dict[str, pa.Table]
    unknown_fields: Counter[str] = field(default_factory=Counter)
    _pandas: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for t in TABLES:
            self.tables.setdefault(t.name, arrow_schema(t).empty_table())

    @classmethod
    def concat(cls, parts: Iterable[FlowFrames]) -> FlowFrames:
        """Join several batches into one."""
        parts = list(parts)
        if not parts:
            return cls(tables={})  # every table empty
        tables = {t.name: pa.concat_tables([p.tables[t.name] for p in parts]) for t in TABLES}
        return cls(tables=tables, unknown_fields=sum((p.unknown_fields for p in parts), Counter()))

    def to_arrow(self) -> dict[str, pa.Table]:
        """Return every table as Arrow, keyed by table name."""
        return dict(self.tables)

    def frame(self, name: str) -> pd.DataFrame:
        """Return one table as pandas, with nullable dtypes so that null IDs never turn ints
        into floats."""
        if name not in self._pandas:
            self._pandas[name] = self.tables[name].to_pandas(
                types_mapper=_PANDAS_TYPES.get, date_as_object=True
            )
        return self._pandas[name]

    instances = _Frame(INSTANCES)
    tasks = _Frame(TASKS)
    dependencies = _Frame(DEPENDENCIES)
    relations = _Frame(RELATIONS)
    parameters = _Frame(PARAMETERS)
    quarantine = _Frame(QUARANTINE)
    failures = _Frame(FAILURES)
    """Instances that failed to fetch or flatten, with the reason."""

    @property
    def row_counts(self) -> dict[str, int]:
        return {name: t.num_rows for name, t in self.tables.items()}

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.row_counts.items())
        return f"FlowFrames({counts})"


def build_frames(rows: Rows, failures: Iterable[Row] = ()) -> FlowFrames:
    """Type the flattener's rows (and ``failed_instances`` rows) into a :class:`FlowFrames`."""
    tables = {name: columns_to_arrow(columns) for name, columns in rows.by_table().items()}
    tables[FAILURES.name] = rows_to_arrow(FAILURES, failures)
    return FlowFrames(tables=tables, unknown_fields=rows.unknown_fields)
