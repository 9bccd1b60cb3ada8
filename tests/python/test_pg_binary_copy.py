"""Bulk loads into PostgreSQL go by binary COPY with rows DuckDB encodes (pg_binary_copy.py). The
oracle is the input itself: values at every edge of each type must come back from PostgreSQL
exactly as they went in, NULL apart from the empty string."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pytest
from conftest import make_catalog

from delta2sql import catalog as catalog_module
from delta2sql.errors import CatalogError

pytestmark = pytest.mark.postgres

ROWS = {
    "big": [0, 1, -1, 2**63 - 1, -(2**63), 4_294_967_296, None, 255],
    "small": [0, 1, -1, 2**31 - 1, -(2**31), None, 65_536, -256],
    "flag": [True, False, None, True, False, None, True, False],
    "word": ["", None, "plain", 'quote " and \' and \\ backslash', "tab\tnew\nline\r",
             "unicodé ☃ 𝄞", "%2F url-encoded %20", "x" * 70_000],
}
SCHEMA = pa.schema([("big", pa.int64()), ("small", pa.int32()), ("flag", pa.bool_()), ("word", pa.string())])


@pytest.fixture
def con(tmp_path):
    connection = make_catalog("postgres", tmp_path, "b" + uuid.uuid4().hex[:6]).connect()
    connection.raw.execute("create table edges (n integer, big bigint, small integer, flag boolean, word varchar)")
    yield connection
    connection.close()


def test_every_edge_value_comes_back_as_it_went_in(con, monkeypatch):
    monkeypatch.setattr(catalog_module, "ARROW_CHUNK_ROWS", 3)  # rows cross chunk and slice boundaries
    data = pa.table({"n": pa.array(range(len(ROWS["big"])), pa.int32()), **ROWS},
                    schema=pa.schema([("n", pa.int32()), *SCHEMA]))
    con.load_arrow_batches("edges", data.to_batches(max_chunksize=5))
    back = con.raw.execute("select big, small, flag, word from edges order by n").fetchall()
    assert back == list(zip(*ROWS.values()))
    assert con.raw.execute("select count(*) from edges where word = ''").fetchone()[0] == 1


def test_columns_are_matched_by_name_not_position(con):
    data = pa.table({"word": ["w"], "n": pa.array([7], pa.int32()), "big": [-5]})
    con.load_arrow("edges", data)
    assert con.raw.execute("select n, big, small, flag, word from edges").fetchall() == [(7, -5, None, None, "w")]


def test_a_column_the_table_lacks_is_refused_by_name(con):
    with pytest.raises(CatalogError, match="no column nope"):
        con.load_arrow("edges", pa.table({"n": pa.array([1], pa.int32()), "nope": ["x"]}))


def test_a_failed_batch_leaves_nothing_and_the_connection_usable(con):
    def batches():
        yield pa.record_batch({"n": pa.array([1], pa.int32())})
        raise OSError("the log went away mid-load")

    con.raw.execute("begin")
    with pytest.raises(OSError, match="went away"):
        con.load_arrow_batches("edges", batches())
    con.raw.execute("rollback")
    assert con.raw.execute("select count(*) from edges").fetchone()[0] == 0
