"""A newcomer's first hour (issue 12): catalogs that are missing, empty, of the other engine or
half-made; contradictory options; clean JSON, documented; results on stdout and each error once;
tables that fit 80 columns; plans of tables already migrated; next steps that work; help texts.

Every command answers each mistake with exit 1 and a message naming what to do: exit 2 is a bug.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import duckdb
import psycopg
import pytest
from click.testing import CliRunner
from conftest import (
    RUN_ID,
    documented_events,
    postgres_settings,
    require_postgres,
    write_calibration,
)
from fixtures.deltalake_tables import DELTALAKE_FIXTURES
from fixtures.handwritten_logs import BAD_INPUT_FIXTURES
from rich.console import Console

from delta2sql.cli import main
from delta2sql.console_tables import print_table


def cli(*args: str, env: dict | None = None):
    return CliRunner(env=env).invoke(main, [str(a) for a in args])


def json_events(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("first_hour_tables")
    made = {"orders": root / "orders", "broken": root / "broken"}
    DELTALAKE_FIXTURES["appends"](made["orders"])
    BAD_INPUT_FIXTURES["truncated_json_line"][0](made["broken"])  # versions 0 and 1 land, version 2 is cut short
    return made


@pytest.fixture(scope="module")
def catalogs(tables, tmp_path_factory) -> dict[str, Path]:
    """One catalog per state a newcomer meets, each given as a DuckDB catalog."""
    root = tmp_path_factory.mktemp("first_hour_catalogs")
    empty = root / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    other_engine = root / "other.duckdb"
    sqlite3.connect(other_engine).execute("create table t (x int)").connection.close()
    failed = root / "failed.duckdb"
    result = cli("migrate", tables["broken"], "--catalog", failed, "--batch-size", "1", "--json")
    assert result.exit_code == 1 and failed.exists(), result.output  # versions 0 and 1 were committed
    return {"missing": root / "missing.duckdb", "empty": empty, "other_engine": other_engine, "failed_first_run": failed}


# (command, state) -> (exit code, text the message must hold); TABLE is the table's name
EXPECTED = {
    ("status", "missing"): (1, "no catalog at"),
    ("status", "empty"): (0, "holds no table yet"),
    ("status", "other_engine"): (1, "is a SQLite database, not DuckDB: use --target sqlite"),
    ("status", "failed_first_run"): (0, "n/a: not migrated"),
    ("validate", "missing"): (1, "no catalog at"),
    ("validate", "empty"): (1, "holds no table yet"),
    ("validate", "other_engine"): (1, "is a SQLite database"),
    ("validate", "failed_first_run"): (1, "its first migration has not finished"),
    ("drift", "missing"): (1, "no catalog at"),
    ("drift", "empty"): (1, "holds no table yet"),
    ("drift", "other_engine"): (1, "is a SQLite database"),
    ("drift", "failed_first_run"): (1, "resumes it"),
    ("finalize", "missing"): (1, "no catalog at"),
    ("finalize", "empty"): (1, "holds no table yet"),
    ("finalize", "other_engine"): (1, "is a SQLite database"),
    ("finalize", "failed_first_run"): (1, "resumes it"),
    ("rollback", "missing"): (1, "no catalog at"),
    ("rollback", "empty"): (1, "holds no table yet"),
    ("rollback", "other_engine"): (1, "is a SQLite database"),
    ("rollback", "failed_first_run"): (0, "removed from the catalog"),
    ("report", "missing"): (1, "no catalog at"),
    ("report", "empty"): (1, "holds no table yet"),
    ("report", "other_engine"): (1, "is a SQLite database"),
    ("report", "failed_first_run"): (0, "landing"),
    ("migrate", "other_engine"): (1, "is a SQLite database"),
    ("migrate", "failed_first_run"): (1, "00000000000000000002.json: line 2 is not valid JSON"),  # resumed, same cut
    ("plan", "missing"): (0, "full migration"),
    ("plan", "empty"): (0, "full migration"),
    ("plan", "other_engine"): (1, "is a SQLite database"),
    ("plan", "failed_first_run"): (1, "00000000000000000002.json: line 2 is not valid JSON"),  # plan reads the log
}


@pytest.mark.parametrize("command, state", sorted(EXPECTED))
def test_every_command_on_every_catalog_state(command, state, catalogs, tables, tmp_path):
    catalog = catalogs[state]
    existed = catalog.exists()
    planned = tables["broken" if state == "failed_first_run" else "orders"]
    args = ([planned, "--name", "broken"] if command in ("plan", "migrate")
            else [] if command == "status" else ["broken"])

    def run(*options):
        used = catalog
        if state == "failed_first_run" and command == "rollback":  # it changes the catalog: work on a copy
            used = tmp_path / f"copy{len(options)}.duckdb"
            used.write_bytes(catalog.read_bytes())
        return cli(command, *args, "--catalog", used, *options)

    human, machine = run(), run("--json")
    code, text = EXPECTED[command, state]
    assert (human.exit_code, machine.exit_code) == (code, code), human.output
    assert text in human.output
    finished = [e for e in json_events(machine) if e["event"] == "migration_finished"]
    if code == 1 and finished:  # a table that failed is migrate's result: on stdout, once
        assert finished[0]["status"] == "failed" and text in finished[0]["error"]
        assert human.stdout.count(text) == 1 and text not in human.stderr
    elif code == 1:
        [error] = [e for e in json_events(machine) if e["event"] == "error"]
        assert text in error["error"] and error["unexpected"] is False
        assert text in human.stderr and text not in human.stdout  # errors go to stderr
    assert catalog.exists() == existed  # nothing but migrate creates a catalog


def test_a_postgres_schema_without_a_catalog_is_not_created(tmp_path):
    require_postgres()
    schema = f"d2s_{RUN_ID}_nothing_here"
    env = {"DELTA2SQL_PG_SCHEMA": schema}
    for command in (["status"], ["validate", "orders"], ["drift", "orders"], ["report", "orders"]):
        result = cli(*command, "--target", "postgres", env=env)
        assert result.exit_code == 1 and "no catalog in" in result.stderr and schema in result.stderr, result.output
    s = postgres_settings()
    with psycopg.connect(host=s["host"], port=s["port"], user=s["user"], dbname=s["dbname"],
                         password=s.get("password") or None) as con:
        assert con.execute("select count(*) from pg_namespace where nspname = %s", [schema]).fetchone() == (0,)


def test_status_of_a_failed_first_run_says_what_happened(catalogs):
    [row] = [e for e in json_events(cli("status", "--catalog", catalogs["failed_first_run"], "--json"))]
    assert (row["status"], row["run_status"], row["drift"]) == ("landing", "failed", "n/a: not migrated")
    assert "00000000000000000002.json" in row["run_error"]


def test_contradictory_options_are_refused(tables, tmp_path):
    catalog = tmp_path / "lake.duckdb"
    result = cli("migrate", tables["orders"], "--target", "postgres", "--catalog", catalog)
    assert result.exit_code == 1 and "drop one of the two" in result.stderr
    result = cli("migrate", tables["orders"], "--target", "sqlite", "--catalog", tmp_path / "x.duckdb")
    assert result.exit_code == 1 and "names a DuckDB file, but the target is SQLite" in result.stderr
    result = cli("migrate", tables["orders"], "--catalog", tmp_path / "no" / "such" / "folder.duckdb")
    assert result.exit_code == 1 and "folder" in result.stderr and "does not exist" in result.stderr
    assert not (tmp_path / "no").exists()
    result = cli("status", "--target", "nosql")
    assert result.exit_code == 1 and "is not one of" in result.output  # a usage error is no bug: not 2
    assert list(tmp_path.iterdir()) == []


def test_files_that_are_no_catalog_are_named_as_such(tmp_path):
    empty, text = tmp_path / "empty.duckdb", tmp_path / "notes.duckdb"
    empty.touch()
    text.write_text("not a database at all\n")
    result = cli("status", "--catalog", empty)
    assert result.exit_code == 1 and "is an empty file, not a DuckDB database" in result.stderr
    result = cli("status", "--catalog", text)
    assert result.exit_code == 1 and "is not a DuckDB database" in result.stderr
    assert empty.read_bytes() == b"" and text.read_text() == "not a database at all\n"


def test_a_failed_first_migrate_leaves_no_empty_catalog(tables, tmp_path):
    catalog = tmp_path / "lake.duckdb"
    result = cli("migrate", tables["broken"], "--catalog", catalog)  # one batch: nothing committed
    assert result.exit_code == 1
    assert not catalog.exists() and list(tmp_path.iterdir()) == []
    assert result.output.count("00000000000000000002.json") == 1  # the error, once
    assert "not migrated" in result.stdout or "not migrated" in result.stderr


MARKUP = re.compile(r"\[/?(red|green|yellow|bold|cyan|magenta)?\]|\x1b\[")


def test_json_events_are_clean_and_documented(tables, tmp_path):
    catalog, table = tmp_path / "lake.duckdb", tmp_path / "orders"
    DELTALAKE_FIXTURES["appends"](table)
    write_calibration("duckdb", process_seconds=1.0, build_seconds=2.0)  # estimates in plan, migrate and status
    runs = [
        cli("plan", table, "--catalog", catalog, "--json"),
        cli("migrate", table, "--catalog", catalog, "--json"),
        cli("migrate", "--dry-run", table, "--catalog", catalog, "--json"),
        cli("status", "--catalog", catalog, "--json"),
        cli("validate", "orders", "--catalog", catalog, "--json"),
        cli("drift", "orders", "--catalog", catalog, "--json"),
        cli("finalize", "orders", "--catalog", catalog, "--json"),
        cli("report", "orders", "--catalog", catalog, "--json"),
        cli("rollback", "orders", "--catalog", catalog, "--json"),
        cli("validate", "nope", "--catalog", catalog, "--json"),
        cli("migrate", tables["broken"], "--catalog", tmp_path / "other.duckdb", "--json"),
    ]
    documented = documented_events()
    common = {"event", "ts", "message"}
    seen = set()
    for result in runs:
        assert result.stderr == "", result.stderr  # with --json, stdout carries everything
        for event in json_events(result):
            seen.add(event["event"])
            assert event["event"] in documented, event
            assert set(event) - common <= documented[event["event"]], (event["event"], set(event) - common)
            assert not MARKUP.search(event.get("message", "")), event["message"]
    assert {"migration_finished", "plan", "table_status", "check", "validation_finished", "drift_finished",
            "finalized", "rolled_back", "error", "progress", "estimate", "estimate_record"} <= seen


def test_results_on_stdout_progress_on_stderr(tables, tmp_path):
    catalog = tmp_path / "lake.duckdb"
    result = cli("migrate", tables["orders"], "--catalog", catalog)
    assert result.exit_code == 0
    assert "orders: migrated versions" in result.stdout
    assert "landing orders" in result.stderr and "landing orders" not in result.stdout
    assert "next: delta2sql validate orders --catalog" in result.stderr
    assert "migrated" not in result.stderr.split("next:")[0].replace("landing orders", "")
    status = cli("status", "--catalog", catalog)
    assert "orders" in status.stdout and status.stderr == ""
    validate = cli("validate", "orders", "--catalog", catalog)
    assert "passed, 0 failed" in validate.stdout and "0/0" not in validate.stderr  # no empty progress bar


def test_plain_dbt_command_printed_by_migrate_is_complete(tables, tmp_path):
    catalog = tmp_path / "lake.duckdb"
    [finished] = [e for e in json_events(cli("migrate", tables["orders"], "--catalog", catalog, "--json"))
                  if e["event"] == "migration_finished"]
    command = finished["dbt_command"]
    assert f"DELTA2SQL_CATALOG={catalog.resolve()}" in command and "DELTA2SQL_TARGET=duckdb" in command
    assert "--project-dir" in command and "--profiles-dir" in command


def cell_words_intact(output: str, rows: list[list[str]]) -> list[str]:
    """Words of `rows` that the output broke (neither whole on a line, nor cut with an ellipsis)."""
    tokens = set(output.split())
    broken = []
    for row in rows:
        for word in " ".join(row).split():
            whole = re.search(rf"(?<!\S){re.escape(word)}", output)
            if not whole and not any(t.endswith("…") and word.startswith(t[:-1]) for t in tokens):
                broken.append(word)
    return broken


@pytest.mark.parametrize("width", [80, 120, 200])
def test_tables_never_break_a_word(width):
    headers = ["table", "status", "versions", "last run", "validation", "drift"]
    rows = [
        ["sales_orders_eu_west_1_partitioned", "migrated", "19000..20000 (cut over at 20000)",
         "catch-up migrated: 1000/1000 batches", "18 passed, 0 failed at 2026-11-26T18:05:17",
         "12 versions behind; 3 landed log files resized"],
        ["box📦", "landing", "0..2", "full failed: 2/3 batches (version 2 (00000000000000000002.json) ends in a "
         "truncated JSON line)", "never validated", "n/a: not migrated"],
    ]
    console = Console(width=width, record=True, file=open("/dev/null", "w"))
    print_table(console, "catalog lake.duckdb", headers, rows)
    output = console.export_text()
    assert max(len(line) for line in output.splitlines()) <= width
    assert cell_words_intact(output, rows) == []


def test_status_and_fleet_summary_at_80_columns(tables, tmp_path):
    manifest = tmp_path / "tables.yml"
    manifest.write_text(f"tables:\n  - path: {tables['orders']}\n    name: orders_with_a_rather_long_name\n"
                        f"  - path: {tables['broken']}\n")
    catalog = tmp_path / "lake.duckdb"
    fleet = cli("migrate", "--manifest", manifest, "--catalog", catalog, "--batch-size", "1", env={"COLUMNS": "80"})
    assert fleet.exit_code == 1
    status = cli("status", "--catalog", catalog, env={"COLUMNS": "80"})
    status_rows = [[e["table_name"], e["status"], e["run_status"] or "", e["drift"]] for e in
                   json_events(cli("status", "--catalog", catalog, "--json"))]
    fleet_rows = [[e["name"], e["status"], f"{e['replay_start_version']}..{e['latest_version']}"] for e in
                  json_events(cli("migrate", "--manifest", manifest, "--catalog", catalog, "--json"))
                  if e["event"] == "migration_finished" and e["status"] == "migrated"]
    summary = fleet.stdout[fleet.stdout.index("migration summary"):]  # the lines above are the terminal's to wrap
    for output, rows in ((summary, fleet_rows), (status.stdout, status_rows)):
        assert max(len(line) for line in output.splitlines()) <= 80, output
        assert rows and cell_words_intact(output, rows) == [], output


def test_plan_of_a_migrated_table_reports_what_would_run(tmp_path):
    table, catalog = tmp_path / "orders", tmp_path / "lake.duckdb"
    DELTALAKE_FIXTURES["appends"](table)
    assert cli("migrate", table, "--catalog", catalog).exit_code == 0
    [plan] = [e for e in json_events(cli("plan", table, "--catalog", catalog, "--json")) if e["event"] == "plan"]
    from deltalake import DeltaTable, write_deltalake  # the oracle for the versions: delta-rs

    latest = DeltaTable(str(table)).version()
    assert (plan["mode"], plan["latest_version"], plan["commit_files"]) == ("up_to_date", latest, 0)
    for _ in range(2):
        write_deltalake(str(table), DeltaTable(str(table)).to_pyarrow_table().slice(0, 1), mode="append")
    dry = cli("migrate", "--dry-run", table, "--catalog", catalog)
    assert dry.exit_code == 0
    assert f"catch-up: versions {latest + 1}..{latest + 2}, 2 commit files" in dry.stdout


def test_finalize_on_changed_log_names_the_real_next_step(tmp_path):
    table, catalog = tmp_path / "orders", tmp_path / "lake.duckdb"
    DELTALAKE_FIXTURES["appends"](table)
    assert cli("migrate", table, "--catalog", catalog).exit_code == 0
    first = table / "_delta_log" / "00000000000000000000.json"
    first.write_bytes(first.read_bytes() + b"\n")  # a landed commit changed
    result = cli("finalize", "orders", "--catalog", catalog)
    assert result.exit_code == 1 and "--full-refresh" in result.stderr
    assert cli("migrate", table, "--catalog", catalog, "--full-refresh").exit_code == 0  # the step given works


def test_help_texts():
    migrate = cli("migrate", "--help").output
    assert "SQLite" in migrate and "DELTA2SQL_CATALOG" in migrate
    assert "[duckdb|postgres|sqlite]" in migrate and "DELTA2SQL_TARGET" in migrate
    plan = cli("plan", "--help").output
    assert "JSON commit files per committed batch" in plan
