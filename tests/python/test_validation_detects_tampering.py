"""The validation checks are not vacuous: each one fails when what it guards is tampered with."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import RecordingReporter
from fixtures.deltalake_tables import DELTALAKE_FIXTURES

from delta2sql.dbt_runner import run_dbt
from delta2sql.fingerprint import relation_fingerprint
from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.reference import create_reference_tables
from delta2sql.validate import validate_tables


@pytest.fixture
def migrated(tmp_path, catalog):
    table = tmp_path / "events"
    DELTALAKE_FIXTURES["checkpoints"](table)
    [outcome] = migrate_tables([TableSpec(table, "events")], catalog, RecordingReporter())
    assert outcome.status == "migrated", outcome.error
    assert all(c.status == "pass" for c in validate_tables(catalog, RecordingReporter()))
    return table, catalog


def failing_checks(catalog) -> set[str]:
    return {c.check_name for c in validate_tables(catalog, RecordingReporter()) if c.status != "pass"}


def tamper_catalog(catalog, sql: str) -> None:
    with catalog.connect() as con:
        before = relation_fingerprint(con, "delta_log_actions", "events")
        con.execute(sql)
        assert relation_fingerprint(con, "delta_log_actions", "events") != before  # it touched rows
    run_dbt(["run", "--full-refresh"], catalog, RecordingReporter())  # the catalog tables are incremental


def test_changed_log_file_is_detected(migrated):
    table, catalog = migrated
    commit = sorted((table / "_delta_log").glob("*.json"))[-1]
    commit.write_bytes(commit.read_bytes().replace(b'"dataChange":true', b'"dataChange":false', 1))
    assert failing_checks(catalog) == {"assert_log_files_unchanged", "assert_json_commits_rebuild_exactly"}


def test_altered_commit_line_is_detected(migrated):
    _, catalog = migrated
    tamper_catalog(catalog, """
        update delta_log_actions set action_json = action_json || ' '
        where source = 'commit' and action_type = 'commitInfo' and version = 22
    """)
    assert failing_checks(catalog) == {"assert_json_commits_rebuild_exactly"}


def test_lost_checkpoint_row_is_detected(migrated):
    _, catalog = migrated
    tamper_catalog(catalog, """
        delete from delta_log_actions
        where source = 'checkpoint' and action_type = 'add'
            and line_number = (select min(line_number) from delta_log_actions where source = 'checkpoint' and action_type = 'add')
    """)
    assert {"assert_checkpoint_actions_match_parquet", "assert_snapshot_matches_delta_rs"} <= failing_checks(catalog)


def test_altered_checkpoint_action_is_detected(migrated):
    """Only the stored action text changes (the typed columns stay right), so only the
    checkpoint comparison, which reads that text back, can see it."""
    _, catalog = migrated
    tamper_catalog(catalog, """
        update delta_log_actions set action_json = replace(action_json, '"size":', '"size":9')
        where source = 'checkpoint' and action_type = 'add'
            and line_number = (select max(line_number) from delta_log_actions where source = 'checkpoint' and action_type = 'add')
    """)
    assert failing_checks(catalog) == {"assert_checkpoint_actions_match_parquet"}
    with catalog.connect() as con:  # the row itself is named, with both sides
        [(parquet_action, catalog_action)] = con.execute(
            "select parquet_action, catalog_action from reference_checkpoint_differences").fetchall()
    assert parquet_action.replace('"size":', '"size":9') == catalog_action


def test_checkpoint_row_the_parquet_lacks_is_detected(migrated):
    """A row past the checkpoint file's last row is one validation's batches never read: the
    count of the file's actions in the catalog is what shows it."""
    table, catalog = migrated
    checkpoint = max((table / "_delta_log").glob("*.checkpoint.parquet"))  # the one landed
    rows = pq.read_metadata(checkpoint).num_rows
    with catalog.connect() as con:
        others = ", ".join(c for c in con.columns("delta_log_actions") if c != "line_number")
    tamper_catalog(catalog, f"""
        insert into delta_log_actions ({others}, line_number)
        select {others}, line_number + 1 from delta_log_actions
        where source = 'checkpoint' and line_number = {rows}
    """)
    results = {c.check_name: c for c in validate_tables(catalog, RecordingReporter())}
    check = results["assert_checkpoint_actions_match_parquet"]
    assert check.status == "fail"
    assert (check.expected, check.observed) == (f"actions: {rows}, all equal", f"actions: {rows + 1}, equal: {rows}")


def test_checkpoint_row_held_twice_is_detected(migrated):
    """A line of the checkpoint the catalog holds twice, both copies right: the file's count of
    actions compared equal exceeds the rows pyarrow read."""
    table, catalog = migrated
    checkpoint = max((table / "_delta_log").glob("*.checkpoint.parquet"))
    rows = pq.read_metadata(checkpoint).num_rows
    with catalog.connect() as con:
        columns = ", ".join(con.columns("delta_log_actions"))
    tamper_catalog(catalog, f"""
        insert into delta_log_actions ({columns})
        select {columns} from delta_log_actions
        where source = 'checkpoint' and action_type = 'protocol'
    """)
    results = {c.check_name: c for c in validate_tables(catalog, RecordingReporter())}
    check = results["assert_checkpoint_actions_match_parquet"]
    assert check.status == "fail"
    assert (check.expected, check.observed) == (f"actions: {rows}, all equal", f"actions: {rows + 1}, equal: {rows + 1}")


def test_wrong_file_size_is_detected(migrated):
    _, catalog = migrated
    tamper_catalog(catalog, """
        update delta_log_actions set size_bytes = size_bytes + 1
        where source = 'commit' and action_type = 'add' and version = 23
    """)
    assert "assert_snapshot_matches_delta_rs" in failing_checks(catalog)


def test_a_path_live_twice_is_detected(migrated):
    """A live file the catalog holds twice (another row of its path, added at another version):
    delta-rs lists the path once, so the snapshot check names it a duplicate key."""
    _, catalog = migrated
    with catalog.connect() as con:
        columns = con.columns("delta_files")
        path = con.execute("select max(path) from delta_files where removed_version is null").fetchone()[0]
        copied = ", ".join("added_version - 1" if c == "added_version" else c for c in columns)
        con.execute(f"insert into delta_files ({', '.join(columns)}) select {copied} from delta_files "
                    "where path = ? and removed_version is null", [path])
    results = {c.check_name: c for c in validate_tables(catalog, RecordingReporter(), num_versions=1)}
    check = results["assert_snapshot_matches_delta_rs"]  # at the latest version only
    assert check.status == "fail"
    assert check.details.startswith("1 differing rows; ")
    assert '"diff_status": "duplicate key"' in check.details and path in check.details
    assert check.observed.startswith("live 2 times, smallest values: size=")


def test_delta_rs_snapshots_are_delta_rs_at_each_version_though_the_log_went_further(tmp_path):
    """The reference opens its newest sampled version without `version=` (faster in delta-rs)
    and moves back when the log has gone further: each snapshot is still delta-rs's own at that
    version, opened explicitly."""
    import deltalake

    from delta2sql.reference import _delta_rs_snapshots

    table = tmp_path / "t"
    DELTALAKE_FIXTURES["checkpoints"](table)
    latest = deltalake.DeltaTable(str(table)).version()
    for versions in ([latest], [latest - 3], [1, latest - 3], [2, latest]):
        for version, snapshot in _delta_rs_snapshots(str(table), versions):
            files = snapshot[0]
            expected = pa.table(deltalake.DeltaTable(str(table), version=version).get_add_actions())
            assert sorted(files.column("path").to_pylist()) == sorted(expected.column("path").to_pylist()), versions


def test_a_catalog_validated_with_checkpoint_hashes_is_asked_to_validate_again(migrated):
    """A catalog validated before checkpoint rows were compared per file holds their hashes in
    reference_checkpoint_actions, and no per-file counts: the next delta2sql command drops that
    table and records those validations' bytes level as not run, so plain dbt warns that the
    table needs `delta2sql validate` instead of finding its checkpoint files unread."""
    _, catalog = migrated
    with catalog.connect() as con:
        con.execute("drop table reference_checkpoint_files")
        con.execute("drop table reference_checkpoint_differences")
        con.execute("create table reference_checkpoint_actions (table_name varchar, log_file varchar, "
                    "line_number bigint, parquet_sha256 varchar, catalog_sha256 varchar)")
    with catalog.connect() as con:
        create_reference_tables(con)
        assert not con.relation_exists("reference_checkpoint_actions")
        [(levels,)] = con.execute("select distinct levels from validation_runs").fetchall()
    assert "bytes" not in levels and "snapshot" in levels
    result = run_dbt(["test", "--select", "tag:bytes", "tag:validation_state"], catalog, RecordingReporter())
    statuses = {r["unique_id"].split(".")[2]: r["status"] for r in result.run_results}
    assert statuses["assert_checkpoint_actions_match_parquet"] == "pass"  # nothing loaded to compare
    assert statuses["assert_tables_validated_at_latest_version"] == "warn"
    assert all(c.status == "pass" for c in validate_tables(catalog, RecordingReporter()))
