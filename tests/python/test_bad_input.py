"""Bad input fails cleanly: a clear error naming the file or version, exit code 1, and the
table is not marked migrated. Survivable hints are covered in test_fixture_tables.py."""

from __future__ import annotations

import json

import duckdb
import pytest
from click.testing import CliRunner
from fixtures.handwritten_logs import (
    BAD_INPUT_FIXTURES,
    _part,
    build_add_without_path,
    build_checkpoint_listing_a_file_twice,
    build_file_added_and_removed_in_one_version,
)

from delta2sql.cli import main

# What each error must name (the offending file or version), from the fixture's description.
MUST_NAME = {
    "no_delta_log": "no _delta_log",
    "empty_delta_log": "no commit or checkpoint",
    "truncated_json_line": "00000000000000000002.json: line",
    "missing_middle_version": "version 2 is missing",
    "no_protocol_or_metadata": "no protocol action",
    "corrupt_checkpoint_no_fallback": "00000000000000000005.checkpoint.parquet is not readable",
    "multipart_missing_part_no_fallback": "multi-part checkpoint at version 4 is missing parts",
}


def test_every_bad_fixture_has_an_expectation():
    assert set(MUST_NAME) == set(BAD_INPUT_FIXTURES)


def migrated_rows(catalog_path) -> list[tuple]:
    if not catalog_path.exists():
        return []
    con = duckdb.connect(str(catalog_path))
    try:
        if not con.execute("select count(*) from information_schema.tables where table_name = 'delta_log_tables'").fetchone()[0]:
            return []
        return con.execute("select table_name, status from delta_log_tables").fetchall()
    finally:
        con.close()


def failed_runs(catalog_path) -> list[tuple]:
    if not migrated_rows(catalog_path):
        return []
    with duckdb.connect(str(catalog_path)) as con:
        return con.execute("select error from migration_runs where status = 'failed'").fetchall()


def failed_migration_errors(table, catalog_path) -> list[str]:
    """Migrate `table` through the CLI, which must exit 1; the `error` of each JSON event."""
    result = CliRunner().invoke(main, ["migrate", str(table), "--catalog", str(catalog_path), "--json"])
    assert result.exit_code == 1, result.output
    return [e["error"] for e in map(json.loads, result.output.splitlines()) if e.get("error")]


@pytest.mark.parametrize("name", sorted(BAD_INPUT_FIXTURES))
def test_bad_input_fails_cleanly(tmp_path, name):
    build, _ = BAD_INPUT_FIXTURES[name]
    table = tmp_path / name
    build(table)
    catalog_path = tmp_path / "catalog.duckdb"
    errors = failed_migration_errors(table, catalog_path)
    assert errors and MUST_NAME[name] in errors[0]
    # nothing published: at most a table still 'landing', whose run records the failure
    assert [status for _, status in migrated_rows(catalog_path) if status != "landing"] == []
    assert failed_runs(catalog_path) in ([], [(errors[0],)])


def test_failed_remigration_keeps_the_previous_catalog(tmp_path):
    """A table that migrated once and then fails (log corrupted since) keeps its old rows."""
    from fixtures.deltalake_tables import DELTALAKE_FIXTURES

    table = tmp_path / "t"
    DELTALAKE_FIXTURES["appends"](table)
    catalog_path = tmp_path / "catalog.duckdb"
    assert CliRunner().invoke(main, ["migrate", str(table), "--catalog", str(catalog_path), "--json"]).exit_code == 0
    before = migrated_rows(catalog_path)
    last = sorted((table / "_delta_log").glob("*.json"))[-1]
    last.write_text(last.read_text()[:-20])
    result = CliRunner().invoke(main, ["migrate", str(table), "--catalog", str(catalog_path), "--json"])
    assert result.exit_code == 1 and last.name in result.output
    assert migrated_rows(catalog_path) == before == [("t", "migrated")]


def test_add_without_path_fails_the_build_and_says_which_column(tmp_path):
    """A required field missing from an otherwise well-formed action is caught by the catalog
    build's structure tests: the table is not marked migrated and the error counts
    the nulls per column (the add of version 1 is the only one without a path)."""
    build_add_without_path(tmp_path / "t")
    catalog_path = tmp_path / "catalog.duckdb"
    errors = failed_migration_errors(tmp_path / "t", catalog_path)
    assert errors and "not_null_columns_stg_delta_log__adds" in errors[0]
    assert migrated_rows(catalog_path) == [("t", "landed")]  # published, never built
    assert "path: 1 nulls" in errors[0]
    with duckdb.connect(str(catalog_path)) as con:  # failures are read back, never stored (ADR 0005)
        assert con.execute("select count(*) from information_schema.tables "
                           "where table_name like 'not_null_columns_%'").fetchone() == (0,)


def test_a_file_added_and_removed_in_one_version_fails_the_build_naming_it(tmp_path):
    """The protocol forbids it and readers disagree on what it means (ADR 0001): the structure
    test names the version and the file, and the table is not marked migrated."""
    build_file_added_and_removed_in_one_version(tmp_path / "t")
    catalog_path = tmp_path / "catalog.duckdb"
    errors = failed_migration_errors(tmp_path / "t", catalog_path)
    assert errors and "assert_no_file_added_and_removed_in_one_version" in errors[0]
    assert f"two actions at version 4 on {_part(4)}" in errors[0]
    assert migrated_rows(catalog_path) == [("t", "landed")]


def test_a_checkpoint_listing_a_file_twice_fails_the_build(tmp_path):
    """A checkpoint's file that no later commit acts on is not ordered against anything (the
    replay leaves it out of int_file_events_ordered): listed twice, it is two live files with
    one key, which delta_files' unique key refuses."""
    build_checkpoint_listing_a_file_twice(tmp_path / "t")
    catalog_path = tmp_path / "catalog.duckdb"
    errors = failed_migration_errors(tmp_path / "t", catalog_path)
    assert errors and "unique_key_delta_files" in errors[0]
    assert "assert_no_file_added_and_removed_in_one_version" not in errors[0]  # that one sees commits' files
    assert _part(2) in errors[0]
    assert migrated_rows(catalog_path) == [("t", "landed")]


def test_a_commit_removed_after_listing_fails_naming_it(tmp_path, monkeypatch):
    """A commit listed, then removed before its batch reads it (a cleanup racing the migration):
    the run fails naming that file, and the table is not migrated."""
    import deltalake
    import pyarrow as pa

    from delta2sql import runs

    table = tmp_path / "table"
    for value in range(3):
        deltalake.write_deltalake(str(table), pa.table({"x": [value]}), mode="append")
    victim = table / "_delta_log" / "00000000000000000001.json"
    listed = runs.plan_segment

    def plan_then_remove(*args, **kwargs):
        segment = listed(*args, **kwargs)
        victim.unlink()
        return segment

    monkeypatch.setattr(runs, "plan_segment", plan_then_remove)
    catalog_path = tmp_path / "catalog.duckdb"
    errors = failed_migration_errors(table, catalog_path)
    assert errors and f"{victim}: listed, but gone when read" in errors[0], errors
    assert all(status == "landing" for _, status in migrated_rows(catalog_path))


def test_a_commit_that_cannot_be_read_fails_naming_it(tmp_path, monkeypatch):
    """A listed commit whose read fails (permissions, an I/O error; this suite runs as root, so
    the error is raised by a stand-in for `open`): the run fails naming that file and the reason."""
    import deltalake
    import pyarrow as pa

    from delta2sql import log_store

    table = tmp_path / "table"
    for value in range(3):
        deltalake.write_deltalake(str(table), pa.table({"x": [value]}), mode="append")
    victim = table / "_delta_log" / "00000000000000000001.json"

    def refusing_open(path, *args, **kwargs):
        if str(path) == str(victim):
            raise PermissionError(13, "Permission denied", str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(log_store, "open", refusing_open, raising=False)
    catalog_path = tmp_path / "catalog.duckdb"
    errors = failed_migration_errors(table, catalog_path)
    assert errors and f"{victim}: cannot be read: Permission denied" in errors[0], errors
    assert all(status == "landing" for _, status in migrated_rows(catalog_path))
