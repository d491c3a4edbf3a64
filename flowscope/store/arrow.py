"""Columns -> an Arrow IPC stream, the fast way to hand chDB a big batch.

JSONEachRow costs a `json.dumps` per row in Python (~50 k rows/s for `flows`); one `pa.array`
per column runs in C (numpy columns without a copy). Integer columns get their exact ClickHouse
width (UInt64 values above 2**63 need it); DateTime64(3) columns take epoch milliseconds or
'YYYY-MM-DD hh:mm:ss.fff' text; Array(Tuple(...)) columns (PER_MINUTE) take (offsets, one array per
tuple element), as `FlowColumns.per_minute` makes them; everything else travels as text, which ClickHouse parses as it
parses JSON values (IPv6, LowCardinality, ...).

A batch is a list of chunks, each a list of columns in `names` order: a sequence (list, tuple,
numpy array) or one value that every row of the chunk shares.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

_INTS = {"UInt8": "uint8", "UInt16": "uint16", "UInt32": "uint32", "UInt64": "uint64",
         "Int8": "int8", "Int16": "int16", "Int32": "int32", "Int64": "int64"}
_MS = "DateTime64(3"
_TUPLES = "Array(Tuple("


def _column(pa: Any, values: Any, ch_type: str, n: int) -> Any:
    if ch_type.startswith(_TUPLES):  # e.g. PER_MINUTE: (offsets, one array per tuple element)
        inner = [_column(pa, [], t.strip(), 0).type for t in ch_type[len(_TUPLES):-2].split(",")]
        if not n:
            return pa.array([], pa.list_(pa.struct([(f"f{i}", t) for i, t in enumerate(inner)])))
        offsets, *parts = values
        cells = pa.StructArray.from_arrays([pa.array(p, t) for p, t in zip(parts, inner)],
                                           [f"f{i}" for i in range(len(inner))])
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), cells)
    shared = not hasattr(values, "__len__") or isinstance(values, str)  # one value for the whole chunk
    if shared and not ch_type.startswith(_MS):
        return pa.repeat(pa.scalar(values, _column(pa, [], ch_type, 0).type), n)
    if shared:
        values = [values] * n
    name = _INTS.get(ch_type)
    if name is not None:
        return pa.array(values, getattr(pa, name)())
    if ch_type in ("Float32", "Float64"):
        return pa.array(values, pa.float64())
    if ch_type.startswith(_MS):
        arr = pa.array(values)
        if pa.types.is_string(arr.type):
            arr = arr.cast(pa.timestamp("ms"))
        return arr.cast(pa.timestamp("ms", "UTC"))
    return pa.array(values, pa.string())


def stream(names: Sequence[str], chunks: Sequence[Sequence[Any]], lengths: Sequence[int],
           ch_types: Sequence[str]) -> bytes:
    """One Arrow IPC stream (format `ArrowStream`) of every chunk (`lengths`: rows per chunk)."""
    import pyarrow as pa  # imported on first insert: keeps start-up light
    from pyarrow import ipc

    columns = [pa.chunked_array([_column(pa, chunk[i], t, n) for chunk, n in zip(chunks, lengths)],
                                _column(pa, [], t, 0).type)
               for i, t in enumerate(ch_types)]
    table = pa.Table.from_arrays(columns, names=list(names))
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue()
