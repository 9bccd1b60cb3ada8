"""Rows for PostgreSQL's binary COPY, encoded by DuckDB from Arrow batches.

Why not CSV: shipping the wide benchmark's 1,911,002 landed actions (1.2 GB) by CSV COPY took
22.0 s, most of it the server parsing CSV (JSON in `action_json` doubles every quote). The same
rows in the binary format take 11.8 s end to end, DuckDB encoding them on the other core while
the server ingests (catalog.py). ADBC's PostgreSQL driver writes this format too (10.3 s), but on
a connection of its own, outside the batch's transaction, and a batch's rows must commit with
its progress row.

The format (PostgreSQL docs, COPY, "Binary Format"): a header, then per row a 16-bit field count
and per field a 32-bit byte length (-1 for NULL) followed by the value in the type's binary
form: integers big-endian, a boolean one byte, text its UTF-8 bytes; then a 16-bit -1.
Each row is one BLOB built by a DuckDB expression, so the bytes of a chunk of rows are the data
buffer of one Arrow binary array.
"""

from __future__ import annotations

import pyarrow as pa

from delta2sql.errors import CatalogError
from delta2sql.sql_text import sql_identifier

HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")  # signature, flags, extension
TRAILER = (-1).to_bytes(2, "big", signed=True)


def _blob(data: bytes) -> str:
    """A DuckDB BLOB literal of `data`."""
    return "'" + "".join(f"\\x{b:02X}" for b in data) + "'::blob"


def _length(size: int) -> str:
    return _blob(size.to_bytes(4, "big", signed=True))


_NULL = _length(-1)


def field_sql(column: str, pg_type: str) -> str:
    """One field of a row: its length and value, or the NULL marker."""
    name = sql_identifier(column)
    if pg_type == "bigint":  # BIT renders an integer's two's complement most significant bit first
        value = f"{_length(8)} || {name}::bigint::bit::blob"
    elif pg_type == "integer":
        value = f"{_length(4)} || {name}::integer::bit::blob"
    elif pg_type == "boolean":
        value = f"{_length(1)} || {name}::boolean::tinyint::bit::blob"
    elif pg_type in ("text", "character varying"):
        value = f"octet_length(encode({name}::varchar))::integer::bit::blob || encode({name}::varchar)"
    else:
        raise CatalogError(f"binary COPY into PostgreSQL does not encode {pg_type} (column {column})")
    return f"case when {name} is null then {_NULL} else {value} end"


def rows_sql(relation: str, columns: list[tuple[str, str]]) -> str:
    """A query over `relation` giving each row's binary COPY bytes as one BLOB column, `row`."""
    count = _blob(len(columns).to_bytes(2, "big"))
    return f"select {_concatenated([count] + [field_sql(c, t) for c, t in columns])} as row from {relation}"


def _concatenated(parts: list[str]) -> str:
    """`a || b || c ...` as a balanced tree: a chain copies its growing prefix at every step, a tree
    copies each byte about log2(n) times (45 fields, the wide benchmark's rows: 8.8 s -> 6.1 s)."""
    if len(parts) == 1:
        return parts[0]
    middle = len(parts) // 2
    return f"({_concatenated(parts[:middle])} || {_concatenated(parts[middle:])})"


def payload(rows: pa.Array) -> memoryview:
    """The bytes of every value of a binary array, back to back: its data buffer between the first
    and the last offset (no copy)."""
    width = 8 if pa.types.is_large_binary(rows.type) else 4
    _, offsets, data = rows.buffers()

    def offset(i: int) -> int:
        return int.from_bytes(offsets[i * width:(i + 1) * width].to_pybytes(), "little", signed=True)

    return memoryview(data)[offset(rows.offset):offset(rows.offset + len(rows))]
