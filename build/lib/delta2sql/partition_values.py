"""Partition values as typed values, for comparing the catalog with delta-rs.

The catalog keeps each partition value as the log wrote it (a string, PROTOCOL.md "Partition
Value Serialization"); delta-rs reports typed values. Writers serialize the same value in
different ways (`2020-01-01 08:09:10.001` or `...10.001000`, ISO 8601 `2024-01-01T10:00:00Z`,
`inf` or `Infinity`, `1.5` or `1.50`), so the two are compared as values: each side is turned
into one canonical text per value of the column's Delta type, the log's string by parsing it
here, delta-rs's value by rendering it. Validation compares those texts (reference.py, the
snapshot test). A string that does not parse as its type is kept as it is, so it differs.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import struct

_INTEGERS = {"byte", "short", "integer", "long"}


def _utc_naive(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def _float32(value: float) -> float:
    return struct.unpack("f", struct.pack("f", value))[0]


def _render(value, delta_type: str) -> str:
    """The canonical text of a typed value of `delta_type`."""
    if isinstance(value, dt.datetime):
        return _utc_naive(value).isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(_float32(value) if delta_type == "float" else value)
    if isinstance(value, decimal.Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _parse(text: str, delta_type: str):
    """The typed value the log's string serializes, per the Delta type of its column."""
    if delta_type in ("timestamp", "timestamp_ntz"):
        # 'YYYY-MM-DD HH:MM:SS[.ffffff]', or ISO 8601 adjusted to UTC ('...T...Z'); no zone means UTC
        return dt.datetime.fromisoformat(text)
    if delta_type == "date":
        return dt.date.fromisoformat(text)
    if delta_type.startswith("decimal"):
        return decimal.Decimal(text)
    if delta_type == "boolean":
        return {"true": True, "false": False}[text.lower()]
    if delta_type in ("float", "double"):
        return float(text)  # 'NaN', 'inf', 'Infinity', '-Infinity' included
    if delta_type in _INTEGERS:
        return int(text)
    if delta_type == "binary":
        return text.encode("utf-8")
    return text


def typed_from_log(text: str | None, delta_type: str) -> str | None:
    """Canonical text of a partition value as the log serialized it. An empty string is null
    for every type but string (no other type has an empty value; delta-rs reads it as null)."""
    if text is None or (text == "" and delta_type != "string"):
        return None
    try:
        return _render(_parse(text, delta_type), delta_type)
    except (ValueError, KeyError, ArithmeticError):
        return text  # not a value of its type: compared as written, so it shows as a difference


def typed_from_reader(value, delta_type: str) -> str | None:
    """Canonical text of a partition value as a reader (delta-rs) returned it, typed."""
    if value is None:
        return None
    if isinstance(value, str):
        return typed_from_log(value, delta_type)
    return _render(value, delta_type)


def typed_json(values: dict[str, str | None]) -> str:
    """The sorted-key JSON text of a partition tuple of canonical texts."""
    return json.dumps(dict(sorted(values.items())), separators=(",", ":"), ensure_ascii=False)
