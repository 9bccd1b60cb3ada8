"""PostgreSQL connection and permission problems give clear messages and exit code 1."""

from __future__ import annotations

import json
import logging

import psycopg
import pyarrow as pa
import pytest
from click.testing import CliRunner
from conftest import RUN_ID, invoke_cli, make_catalog, postgres_settings, require_postgres
from fixtures.deltalake_tables import DELTALAKE_FIXTURES

from delta2sql import catalog as catalog_module
from delta2sql import landing_schema
from delta2sql.cli import main


def errors(output: str) -> list[str]:
    return [e["error"] for e in map(json.loads, output.splitlines()) if e.get("error")]


def test_unreachable_server_is_a_clear_error(tmp_path, monkeypatch):
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["appends"](table)
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", "1")  # nothing listens there
    result = CliRunner().invoke(main, ["migrate", str(table), "--target", "postgres", "--json"])
    assert result.exit_code == 1
    assert "cannot connect to PostgreSQL" in errors(result.output)[0]


def test_missing_privilege_is_a_clear_error(tmp_path, monkeypatch):
    require_postgres()
    s = postgres_settings()
    role = f"d2s_{RUN_ID}_reader"
    with psycopg.connect(host=s["host"], port=s["port"], user=s["user"], dbname=s["dbname"], autocommit=True) as con:
        con.execute(f'drop role if exists "{role}"')
        con.execute(f'create role "{role}" login')  # no CREATE on the database: no new schema
    try:
        table = tmp_path / "t"
        DELTALAKE_FIXTURES["appends"](table)
        monkeypatch.setenv("PGUSER", role)
        monkeypatch.setenv("DELTA2SQL_PG_SCHEMA", f"d2s_{RUN_ID}_forbidden")
        result = CliRunner().invoke(main, ["migrate", str(table), "--target", "postgres", "--json"])
        assert result.exit_code == 1
        assert f"PostgreSQL user {role} may not use schema d2s_{RUN_ID}_forbidden" in errors(result.output)[0]
    finally:
        with psycopg.connect(host=s["host"], port=s["port"], user=s["user"], dbname=s["dbname"], autocommit=True) as con:
            con.execute(f'drop role if exists "{role}"')


def test_an_index_that_cannot_be_made_is_a_warning_and_the_table_migrates(tmp_path, monkeypatch, caplog):
    """The landed actions' index only speeds up the build: where it cannot be made in time (here
    another session's open transaction holds the table, as another run's batch does), the table
    still migrates, says so, and the next run makes it. Making it logs nothing (its statements
    once went through sqlglot, which warned on stderr that it could not parse `reset`)."""
    DELTALAKE_FIXTURES["appends"](tmp_path / "t")
    catalog = make_catalog("postgres", tmp_path, "unindexed")
    catalog_module._translate.cache_clear()  # sqlglot warns when it parses, not when a translation is cached
    with caplog.at_level(logging.WARNING):
        assert invoke_cli(catalog, "migrate", str(tmp_path / "t")).exit_code == 0
    assert [r.getMessage() for r in caplog.records] == []
    with catalog.connect() as con:
        assert con.execute("select to_regclass(?) is not null", [landing_schema.ACTION_TYPE_INDEX]).fetchone() == (True,)
    monkeypatch.setattr(landing_schema, "INDEX_LOCK_TIMEOUT", "300ms")
    with catalog.connect() as con, catalog.connect() as writer:
        con.execute(f"drop index {landing_schema.ACTION_TYPE_INDEX}")
        with writer.raw.transaction():  # a batch being written elsewhere: compatible with a landing, not with an index
            writer.raw.execute("lock table delta_log_actions in row exclusive mode")
            DELTALAKE_FIXTURES["appends"](tmp_path / "u")
            result = invoke_cli(catalog, "migrate", str(tmp_path / "u"))
        assert result.exit_code == 0, result.output
        events = [json.loads(line) for line in result.output.splitlines()]
        warnings = [e["message"] for e in events if e["event"] == "warning"]
        why = "the build reads every landed action per node"
        timed_out = "canceling statement due to lock timeout"
        assert warnings == [f"u: no index {landing_schema.ACTION_TYPE_INDEX} ({why}): {timed_out}"]
        assert [e["status"] for e in events if e["event"] == "migration_finished"] == ["migrated"]
        assert con.execute("select to_regclass(?) is null", [landing_schema.ACTION_TYPE_INDEX]).fetchone() == (True,)

        DELTALAKE_FIXTURES["appends"](tmp_path / "v")
        assert invoke_cli(catalog, "migrate", str(tmp_path / "v")).exit_code == 0  # the lock is free: made
        assert con.execute("select to_regclass(?) is not null", [landing_schema.ACTION_TYPE_INDEX]).fetchone() == (True,)


def test_bulk_load_streams_every_batch_and_surfaces_a_failed_copy(tmp_path):
    """load_arrow_batches encodes the next batch while the server copies this one: every row of
    every batch arrives once, and a COPY the server refuses raises at once (the encoder thread
    is stopped and drained, never left blocked on its queue) and leaves none of its rows: one
    load is one COPY statement."""
    require_postgres()
    catalog = make_catalog("postgres", tmp_path, "bulk")
    batches = [pa.record_batch({"id": list(range(start, start + 1000)), "note": [f"'q\"uote,{start}\n"] * 1000})
               for start in range(0, 5000, 1000)]
    with catalog.connect() as con:
        con.execute("create table bulk_rows (id bigint primary key, note varchar)")
        con.load_arrow_batches("bulk_rows", iter(batches))
        assert con.execute("select count(*), count(distinct id), min(note) from bulk_rows").fetchone() == \
            (5000, 5000, "'q\"uote,0\n")
        with pytest.raises(psycopg.errors.UniqueViolation):  # batch 3 repeats ids already loaded
            con.load_arrow_batches("bulk_rows", iter([batches[0][:0], pa.record_batch(
                {"id": [9_000, 9_001], "note": ["a", "b"]}), batches[2], batches[3], batches[4]]))
        assert con.execute("select count(*) from bulk_rows").fetchone()[0] == 5000
