"""Protocol cases real writers produce (issue 11): each has a fixture of its own, on every engine.

Valid tables that need the case handled are in the fixture fleet (test_fixture_tables.py:
migrated and validated at every level against delta-rs). This module holds what that fleet
cannot show: tables that must *not* be called migrated, and how each case is reported.
"""

from __future__ import annotations

import pytest
from conftest import RecordingReporter
from fixtures.handwritten_logs import CONTRADICTED_FIXTURES, build_repeated_remove, build_unknown_actions_and_fields

from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.validate import validate_tables


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


def test_unknown_actions_are_kept_verbatim_with_a_warning(catalog, tmp_path):
    """Case 3: the protocol lets writers add actions and fields; readers ignore them. The default
    keeps them verbatim with a warning, and the bytes level proves every commit rebuilds."""
    build_unknown_actions_and_fields(tmp_path / "t")
    reporter = RecordingReporter()
    [outcome] = migrate_tables([TableSpec(tmp_path / "t", "t", full_history=True)], catalog, reporter)
    assert outcome.status == "migrated", outcome.error
    warnings = reporter.messages("warning")
    assert any("kept 1 unknown 'fooBar' action(s) verbatim (first in 00000000000000000001.json)" in w for w in warnings)
    assert any("kept 1 unknown 'futureAction' action(s) verbatim (first in 00000000000000000005.json)" in w
               for w in warnings)
    checks = validate_tables(catalog, reporter, ["t"], ("bytes",))
    assert checks and all(c.status == "pass" for c in checks), [c for c in checks if c.status != "pass"]


def test_a_repeated_remove_is_a_recorded_warning(catalog, tmp_path):
    """Case 4: a remove of a file already removed is valid (removes are tombstones): the table
    migrates, the finding is a warning naming the file and both versions, and validate records it."""
    build_repeated_remove(tmp_path / "t")
    reporter = RecordingReporter()
    [outcome] = migrate_tables([TableSpec(tmp_path / "t", "t")], catalog, reporter)
    assert outcome.status == "migrated", outcome.error
    [warning] = [w for w in outcome.warnings if "assert_removes_refer_to_known_files" in w]
    assert "repeated remove of part-00001-" in warning and "at version 4 (already removed at version 3)" in warning
    checks = {c.check_name: c for c in validate_tables(catalog, reporter, ["t"], ("structure",))}
    assert checks["assert_removes_refer_to_known_files"].status == "warn"
    assert not [c for c in checks.values() if c.failed]
