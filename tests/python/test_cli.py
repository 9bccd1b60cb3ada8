"""The command line: exit codes, --json events, readable output, odd names and paths."""

from __future__ import annotations

import json
import shutil

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from deltalake import write_deltalake
from fixtures.deltalake_tables import DELTALAKE_FIXTURES
from fixtures.handwritten_logs import HANDWRITTEN_FIXTURES

from delta2sql.cli import main


def events(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_migrate_and_validate_json_events(tmp_path):
    table = tmp_path / "events"
    DELTALAKE_FIXTURES["partitioned"](table)
    catalog = tmp_path / "lake.duckdb"
    result = CliRunner().invoke(main, ["migrate", str(table), "--catalog", str(catalog), "--json"])
    assert result.exit_code == 0, result.output
    finished = [e for e in events(result.output) if e["event"] == "migration_finished"]
    assert finished[0]["status"] == "migrated" and finished[0]["name"] == "events"
    assert any(e["event"] == "progress" for e in events(result.output))

    result = CliRunner().invoke(main, ["validate", "events", "--catalog", str(catalog), "--json"])
    assert result.exit_code == 0, result.output
    checks = [e for e in events(result.output) if e["event"] == "check"]
    assert checks and all(c["status"] == "pass" for c in checks)
    con = duckdb.connect(str(catalog))
    try:
        stored = con.execute("select count(*), count(distinct level) from validation_results where table_name = 'events'").fetchone()
    finally:
        con.close()
    assert stored == (len(checks), 3)


def test_validate_unknown_table_is_a_clear_error(tmp_path):
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["appends"](table)
    catalog = tmp_path / "lake.duckdb"
    assert CliRunner().invoke(main, ["migrate", str(table), "--catalog", str(catalog), "--json"]).exit_code == 0
    result = CliRunner().invoke(main, ["validate", "nope", "--catalog", str(catalog), "--json"])
    assert result.exit_code == 1 and "no table 'nope' in catalog" in result.output


def test_odd_names_and_paths_round_trip(tmp_path):
    """Quotes, unicode and spaces in the table name, its directory and the catalog path; the
    URL-encoded file paths of the log are kept exactly as written."""
    odd_dir = tmp_path / "dir with 'quote' and é" / "événements 'prod' %20"
    HANDWRITTEN_FIXTURES["url_encoded_paths"](odd_dir)
    name = "événements 'prod' %20"
    catalog = tmp_path / "cata'log; dir" / "catalog é 1.v#2.duckdb"  # ';' and '#' where dbt-duckdb names it the same
    catalog.parent.mkdir()  # migrate creates the catalog, not its folders
    result = CliRunner().invoke(main, ["migrate", str(odd_dir), "--name", name, "--catalog", str(catalog), "--json"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["validate", name, "--catalog", str(catalog), "--json"])
    assert result.exit_code == 0, result.output

    written = set()
    for commit in (odd_dir / "_delta_log").glob("*.json"):
        for line in commit.read_text(encoding="utf-8").splitlines():
            action = json.loads(line)
            if "add" in action:
                written.add(action["add"]["path"])
    con = duckdb.connect(str(catalog))
    try:
        [(uri,)] = con.execute("select table_uri from delta_tables where table_name = ?", [name]).fetchall()
        stored = {p for (p,) in con.execute("select path from delta_files where table_name = ?", [name]).fetchall()}
    finally:
        con.close()
    assert uri == str(odd_dir.resolve())
    assert stored == written and any("%" in p for p in stored)


def test_quote_in_catalog_file_name_is_refused_before_writing(tmp_path):
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["appends"](table)
    catalog = tmp_path / "it's.duckdb"
    result = CliRunner().invoke(main, ["migrate", str(table), "--catalog", str(catalog), "--json"])
    assert result.exit_code == 1 and "quotes are not allowed" in result.output
    assert not catalog.exists()


@pytest.mark.parametrize("catalog_path", ["a#b/lake.duckdb", "a?b/lake.duckdb", "a/lake;1.duckdb", "a/lake#1.duckdb"])
def test_path_dbt_duckdb_reads_as_a_url_is_refused_before_writing(tmp_path, catalog_path):
    """dbt-duckdb takes the database's name from the path parsed as a URL: for `a#b/lake.duckdb`,
    "a", a catalog DuckDB does not have. Such a migration used to land, then fail in dbt."""
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["appends"](table)
    catalog = tmp_path / catalog_path
    catalog.parent.mkdir()
    result = CliRunner().invoke(main, ["migrate", str(table), "--catalog", str(catalog), "--json"])
    assert result.exit_code == 1 and "reads a DuckDB catalog's path as a URL" in result.output, result.output
    assert str(catalog) in result.output
    assert not catalog.exists()


def test_migrate_is_repeatable(tmp_path):
    """Migrating the same table twice leaves one copy of it."""
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["overwrite"](table)
    catalog = tmp_path / "lake.duckdb"
    for _ in range(2):
        assert CliRunner().invoke(main, ["migrate", str(table), "--catalog", str(catalog), "--json"]).exit_code == 0
    con = duckdb.connect(str(catalog))
    try:
        versions = con.execute("select count(*), count(distinct version) from delta_commits").fetchone()
    finally:
        con.close()
    assert versions == (4, 4)
    shutil.rmtree(table)


def test_plan_and_dry_run_write_nothing(tmp_path):
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["checkpoints"](table)
    log_before = sorted((p.name, p.stat().st_mtime_ns) for p in (table / "_delta_log").iterdir())
    catalog = tmp_path / "lake.duckdb"
    for args in (["plan", str(table), "--json"], ["migrate", str(table), "--dry-run", "--catalog", str(catalog), "--json"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        [plan] = [e for e in events(result.output) if e["event"] == "plan"]
        checkpoint = table / "_delta_log" / f"{20:020d}.checkpoint.parquet"
        assert plan["checkpoint"] == "classic at version 20"
        assert plan["checkpoint_actions"] == pq.read_metadata(checkpoint).num_rows
        commits = [table / "_delta_log" / f"{v:020d}.json" for v in range(21, 25)]
        assert plan["commit_files"] == 4
        # no more than 50 commits: the sample is all of them, so the count is exact
        assert plan["commit_actions_estimate"] == sum(1 for c in commits for line in c.read_text().splitlines()
                                                      if line.strip())
        assert plan["estimate"] is None and "delta2sql calibrate --target duckdb" in plan["estimate_basis"]
    assert not catalog.exists()
    assert sorted((p.name, p.stat().st_mtime_ns) for p in (table / "_delta_log").iterdir()) == log_before


def test_status_reports_validation_and_versions_behind(tmp_path):
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["appends"](table)
    catalog = tmp_path / "lake.duckdb"
    assert CliRunner().invoke(main, ["migrate", str(table), "--catalog", str(catalog), "--json"]).exit_code == 0
    validation = CliRunner().invoke(main, ["validate", "--catalog", str(catalog), "--json"])
    checks = [e for e in events(validation.output) if e["event"] == "check"]
    write_deltalake(str(table), pa.table({"id": pa.array([99], pa.int64()), "label": pa.array(["row-99"])}), mode="append")
    result = CliRunner().invoke(main, ["status", "--catalog", str(catalog), "--json"])
    assert result.exit_code == 0, result.output
    [row] = [e for e in events(result.output) if e["event"] == "table_status"]
    assert row["status"] == "migrated" and row["versions_behind"] == 1 and row["drift"] == "1 versions behind"
    assert (row["passed"], row["failed"]) == (len(checks), 0)
    assert (row["run_mode"], row["run_status"]) == ("full", "migrated")
    assert row["batches_committed"] == row["num_batches"] == 1  # four commits, one batch of up to 1000
    human = CliRunner(env={"COLUMNS": "250"}).invoke(main, ["status", "--catalog", str(catalog)])
    assert human.exit_code == 0 and "1/1 batches" in human.output


def test_version_of_the_command_group():
    """`delta2sql --version` names the installed distribution's version; a subcommand's
    `--version N` keeps meaning a table version."""
    from importlib.metadata import version

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"delta2sql {version('delta2sql')}"
    result = CliRunner().invoke(main, ["plan", "--help"])
    assert "--version INTEGER" in result.output
