"""The checkpoint comparison pair by pair, on hand-built rows: each Parquet row against the JSON
the catalog stored for its line, read back into the row's type. The expected verdicts are
written out by hand from the rows below, not taken from the code."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

from delta2sql.catalog import connect_duckdb
from delta2sql.reference import _compare_checkpoint_rows

ADD = pa.struct([
    ("path", pa.string()),
    ("size", pa.int64()),
    ("partitionValues", pa.map_(pa.string(), pa.string())),
    ("stats_parsed", pa.struct([("numRecords", pa.int64()), ("minValues", pa.struct([("x", pa.float64())]))])),
])
TXN = pa.struct([("appId", pa.string()), ("version", pa.int64()), ("lastUpdated", pa.timestamp("us", tz="UTC"))])
WHEN = dt.datetime(2026, 12, 7, 12, 0, 0, 123456, tzinfo=dt.UTC)


def parquet_rows(rows: list[dict]) -> pa.Table:
    """Rows as pyarrow reads a checkpoint: one column per action, numbered from line 1."""
    table = pa.table({"add": pa.array([r.get("add") for r in rows], ADD),
                      "txn": pa.array([r.get("txn") for r in rows], TXN)})
    return table.append_column("__line_number", pa.array(range(1, len(rows) + 1), pa.int64()))


def catalog_rows(lines: dict[int, str]) -> pa.Table:
    return pa.table({"line_number": pa.array(list(lines), pa.int64()), "action_json": pa.array(list(lines.values()))})


def compare(parquet: list[dict], catalog: dict[int, str]) -> tuple[dict[str, int], dict[int, tuple]]:
    comparer = connect_duckdb()
    comparer.execute("set TimeZone = 'UTC'")
    try:
        counts, differences = _compare_checkpoint_rows(comparer, parquet_rows(parquet), catalog_rows(catalog),
                                                       ["add", "txn"])
    finally:
        comparer.close()
    return counts, {r["line_number"]: (r["parquet_action"], r["catalog_action"]) for r in differences.to_pylist()}


FILE_A = {"path": "a.parquet", "size": 10, "partitionValues": [("p", "1")],
          "stats_parsed": {"numRecords": 5, "minValues": {"x": 0.1}}}
FILE_A_JSON = ('{"add":{"path":"a.parquet","size":10,"partitionValues":{"p":"1"},'
               '"stats_parsed":{"numRecords":5,"minValues":{"x":0.1}}}}')
TXN_JSON = '{"txn":{"appId":"app","version":3,"lastUpdated":"2026-12-07 12:00:00.123456+00"}}'
TXN_ROW = {"appId": "app", "version": 3, "lastUpdated": WHEN}


def test_equal_rows_are_counted_and_not_kept():
    counts, differences = compare([{"add": FILE_A}, {"txn": TXN_ROW}], {1: FILE_A_JSON, 2: TXN_JSON})
    assert counts == {"action_rows": 2, "equal_rows": 2}
    assert differences == {}


@pytest.mark.parametrize("stored, why", [
    (FILE_A_JSON.replace('"size":10', '"size":11'), "another size"),
    (FILE_A_JSON.replace('"p":"1"', '"p":"2"'), "another partition value"),
    (FILE_A_JSON.replace('"p":"1"', '"p":null'), "a value lost to null"),
    (FILE_A_JSON.replace('"x":0.1', '"x":0.1000001'), "a double rounded"),
    (FILE_A_JSON.replace(',"stats_parsed":{"numRecords":5,"minValues":{"x":0.1}}', ""), "a field dropped"),
])
def test_a_value_that_differs_as_its_type_is_kept_with_both_sides(stored, why):
    counts, differences = compare([{"add": FILE_A}], {1: stored})
    assert counts == {"action_rows": 1, "equal_rows": 0}, why
    parquet_text, catalog_text = differences[1]
    assert parquet_text.startswith("add:") and catalog_text.startswith("add:"), why
    assert json.loads(parquet_text[4:])["path"] == "a.parquet"
    assert parquet_text != catalog_text, why


def test_a_timestamp_rounded_to_milliseconds_differs():
    stored = TXN_JSON.replace(".123456", ".123")
    counts, differences = compare([{"txn": TXN_ROW}], {1: stored})
    assert counts == {"action_rows": 1, "equal_rows": 0}
    assert differences[1][0].startswith("txn:") and differences[1][1].startswith("txn:")


def test_another_action_on_the_line_differs():
    counts, differences = compare([{"add": FILE_A}], {1: TXN_JSON})
    assert counts == {"action_rows": 1, "equal_rows": 0}
    assert differences[1][0].startswith("add:") and differences[1][1].startswith("txn:")


def test_a_stored_row_holding_none_of_the_files_actions_shows_as_its_text():
    stored = '{"commitInfo":{"operation":"WRITE"}}'
    counts, differences = compare([{"add": FILE_A}], {1: stored})
    assert counts == {"action_rows": 1, "equal_rows": 0}
    assert differences[1][1] == "none of the file's actions: " + stored


def test_missing_and_extra_catalog_lines():
    """Line 2 is missing from the catalog; line 3 holds no action in the file but a stored row;
    line 4 holds no action and nothing is stored for it, which is no difference."""
    counts, differences = compare([{"add": FILE_A}, {"txn": TXN_ROW}, {}, {}], {1: FILE_A_JSON, 3: TXN_JSON})
    assert counts == {"action_rows": 2, "equal_rows": 1}
    assert differences[2][0].startswith("txn:") and differences[2][1] is None  # removed
    assert differences[3][0] is None and differences[3][1].startswith("txn:")  # added
    assert set(differences) == {2, 3}
