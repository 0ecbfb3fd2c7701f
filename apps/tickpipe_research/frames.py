"""ClickHouse's Arrow output turned into the frame a caller asked for: pandas, polars or Arrow.

ClickHouse answers in the `ArrowStream` format; the bytes become a `pyarrow.Table` without copying
row by row. Time columns arrive as timestamps in UTC (`DateTime64(3, 'UTC')`); any timestamp column
without a zone is given UTC here, so every time a caller sees is timezone-aware. String columns
ClickHouse wrote as binary are cast to strings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypeAlias, overload

if TYPE_CHECKING:
    import pandas
    import polars
    import pyarrow

FrameKind: TypeAlias = Literal["pandas", "polars", "arrow"]
KINDS: tuple[FrameKind, ...] = ("pandas", "polars", "arrow")


def arrow_table(data: bytes) -> pyarrow.Table:
    """An ArrowStream answer as a table with UTC timestamps and string (not binary) text."""
    import pyarrow as pa
    import pyarrow.ipc

    table = pyarrow.ipc.open_stream(pa.BufferReader(data)).read_all()
    fields = [_normalised(field) for field in table.schema]
    schema = pa.schema(fields, metadata=table.schema.metadata)
    return table if schema.equals(table.schema) else table.cast(schema)


def _normalised(field: Any) -> Any:
    import pyarrow as pa

    kind = field.type
    if pa.types.is_timestamp(kind) and kind.tz is None:
        return field.with_type(pa.timestamp(kind.unit, tz="UTC"))
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return field.with_type(pa.string())
    if pa.types.is_list(kind) and (pa.types.is_binary(kind.value_type)):
        return field.with_type(pa.list_(pa.string()))
    return field


@overload
def convert(table: pyarrow.Table, as_: Literal["arrow"]) -> pyarrow.Table: ...
@overload
def convert(table: pyarrow.Table, as_: Literal["pandas"]) -> pandas.DataFrame: ...
@overload
def convert(table: pyarrow.Table, as_: Literal["polars"]) -> polars.DataFrame: ...
@overload
def convert(table: pyarrow.Table, as_: FrameKind) -> Any: ...
def convert(table: pyarrow.Table, as_: FrameKind) -> Any:
    """The table as `as_`: "pandas" (a DataFrame, datetime64[ms, UTC] times), "polars" or "arrow"."""
    if as_ == "arrow":
        return table
    if as_ == "pandas":
        return table.to_pandas()
    if as_ == "polars":
        import polars as pl

        return pl.from_arrow(table)
    raise ValueError(f"as_ must be one of {', '.join(KINDS)} (got {as_!r})")
