"""Protocol cases real writers produce (issue 11): each has a fixture of its own, on every engine.

Valid tables that need the case handled are in the fixture fleet (test_fixture_tables.py:
migrated and validated at every level against delta-rs). This module holds what that fleet
cannot show: tables that must *not* be called migrated, and how each case is reported.
"""

from __future__ import annotations

import pytest
from conftest import RecordingReporter
from fixtures.handwritten_logs import CONTRADICTED_FIXTURES

from delta2sql.migrate import TableSpec, migrate_tables


def table_state(catalog, name: str) -> tuple[str, list[tuple]]:
    with catalog.connect() as con:
        (status,) = con.execute("select status from delta_log_tables where table_name = ?", [name]).fetchone()
        runs = con.execute("select status, error from migration_runs where table_name = ?", [name]).fetchall()
    return status, [tuple(r) for r in runs]


@pytest.mark.parametrize("name", sorted(CONTRADICTED_FIXTURES))
def test_a_catalog_its_log_checksums_contradict_stays_landed(catalog, tmp_path, name):
    build, must_say = CONTRADICTED_FIXTURES[name]
    build(tmp_path / name)
    [outcome] = migrate_tables([TableSpec(tmp_path / name, name)], catalog, RecordingReporter())
    assert outcome.status == "failed"
    assert "check assert_snapshot_matches_checksums failed" in outcome.error and must_say in outcome.error
    status, runs = table_state(catalog, name)
    assert status == "landed"
    assert runs == [("failed", outcome.error)]
