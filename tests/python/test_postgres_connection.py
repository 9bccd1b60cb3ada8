"""PostgreSQL connection and permission problems give clear messages and exit code 1."""

from __future__ import annotations

import json

import psycopg
from click.testing import CliRunner
from conftest import RUN_ID, postgres_settings, require_postgres
from fixtures.deltalake_tables import DELTALAKE_FIXTURES

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
