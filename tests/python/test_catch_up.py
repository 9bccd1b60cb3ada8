"""Incremental catch-up: running `migrate` again after new commits reads only the new versions and
moves the catalog forward without rebuilding what it already held.

Oracle: a fresh migration of the whole history into another catalog (the same replay, done in
one go), compared relation by relation; a marker planted in an old catalog row shows the old
rows were not rewritten; `delta2sql drift`-style landed-file checks refuse a log changed since."""

from __future__ import annotations

import uuid

import pytest
from conftest import RecordingReporter, make_catalog
from fixtures.deltalake_tables import DELTALAKE_FIXTURES

from delta2sql.fingerprint import table_fingerprints
from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.runs import RunOptions


def test_catch_up_reads_only_new_versions_and_keeps_old_rows(tmp_path, catalog):
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["many_versions_partitioned_removes"](table)
    latest = max(int(p.stem) for p in (table / "_delta_log").glob("*.json"))
    first = 20
    [outcome] = migrate_tables([TableSpec(table, "t", version=first, full_history=True)], catalog, RecordingReporter())
    assert outcome.status == "migrated", outcome.error
    with catalog.connect() as con:
        (operation,) = con.execute("select operation from delta_commits where version = 3").fetchone()
        con.execute("update delta_commits set operation = 'marker' where version = 3")

    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, RecordingReporter(), RunOptions(batch_size=7))
    assert outcome.status == "migrated", outcome.error
    assert (outcome.mode, outcome.latest_version, outcome.files) == ("catch_up", latest, latest - first)
    with catalog.connect() as con:
        batches = con.execute(
            "select first_version, last_version from migration_batches where run_id = "
            "(select run_id from migration_runs where mode = 'catch_up') order by batch_number").fetchall()
        assert batches[0][0] == first + 1 and batches[-1][1] == latest
        assert sum(b - a + 1 for a, b in batches) == latest - first  # every new version once, nothing older
        # the incremental build did not rewrite the rows it already had
        assert con.execute("select operation from delta_commits where version = 3").fetchone() == ("marker",)
        con.execute("update delta_commits set operation = ? where version = 3", [operation])
        caught_up = table_fingerprints(con, "t")

    fresh = make_catalog(catalog.target, tmp_path, "fresh" + uuid.uuid4().hex[:6])
    [outcome] = migrate_tables([TableSpec(table, "t", full_history=True)], fresh, RecordingReporter())
    assert outcome.status == "migrated", outcome.error
    with fresh.connect() as con:
        assert caught_up == table_fingerprints(con, "t")

    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, RecordingReporter())
    assert (outcome.status, outcome.mode, outcome.files) == ("migrated", "up_to_date", 0)


@pytest.fixture
def migrated_appends(tmp_path):
    """The `appends` table (versions 0..3), migrated into a DuckDB catalog."""
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["appends"](table)
    catalog = make_catalog("duckdb", tmp_path, "appends")
    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, RecordingReporter())
    assert outcome.status == "migrated", outcome.error
    return table, catalog


def test_catch_up_refuses_a_log_changed_since_landing(migrated_appends):
    """A rewritten old commit would make an appended catalog wrong: refuse, keep the rows."""
    table, catalog = migrated_appends
    commit = table / "_delta_log" / f"{1:020d}.json"
    commit.write_bytes(commit.read_bytes() + b"\n")
    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, RecordingReporter())
    assert outcome.status == "failed" and commit.name in outcome.error and "changed since it was landed" in outcome.error
    with catalog.connect() as con:
        assert con.execute("select status, latest_version from delta_log_tables").fetchall() == [("migrated", 3)]


def test_catch_up_refuses_a_newest_commit_rewritten_to_the_same_size(migrated_appends):
    """Sizes alone miss a torn write of the same length: the newest landed commit's bytes are
    compared too, and only its."""
    table, catalog = migrated_appends
    commit = table / "_delta_log" / f"{3:020d}.json"
    text = commit.read_bytes()
    commit.write_bytes(text.replace(b'"dataChange":true', b'"dataChange":TRUE', 1))
    assert commit.read_bytes() != text and len(commit.read_bytes()) == len(text)
    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, RecordingReporter())
    assert outcome.status == "failed" and commit.name in outcome.error and "its bytes changed" in outcome.error
    with catalog.connect() as con:
        assert con.execute("select status, latest_version from delta_log_tables").fetchall() == [("migrated", 3)]


def test_a_log_that_lost_its_newest_commits_is_refused(migrated_appends):
    table, catalog = migrated_appends
    (table / "_delta_log" / f"{3:020d}.json").unlink()
    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, RecordingReporter())
    assert outcome.status == "failed" and "ends at version 2, before the catalog's version 3" in outcome.error
