"""Protocol cases real writers produce (issue 11): each has a fixture of its own, on every engine.

Valid tables that need the case handled are in the fixture fleet (test_fixture_tables.py:
migrated and validated at every level against delta-rs). This module holds what that fleet
cannot show: tables that must *not* be called migrated, and how each case is reported.
"""

from __future__ import annotations

import pytest
from conftest import RecordingReporter
from fixtures.handwritten_logs import (
    CONTRADICTED_FIXTURES,
    HANDWRITTEN_FIXTURES,
    build_catalog_managed,
    build_geospatial,
    build_json_layouts,
    build_repeated_remove,
    build_typed_partition_values,
    build_unknown_actions_and_fields,
    restore_v2_history,
)

from delta2sql.catalog import Catalog
from delta2sql.drift import detect_drift
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


def test_json_layouts_land_as_actions_and_rebuild_exactly(catalog, tmp_path):
    """Cases 5 and 6: a pretty-printed action lands as one action numbered by the line it starts
    on, blank lines (also `\\r` and whitespace-only ones) and a missing final newline are
    recorded, and the bytes level holds; losing a recorded blank line fails it."""
    build_json_layouts(tmp_path / "t")
    [outcome] = migrate_tables([TableSpec(tmp_path / "t", "t")], catalog, RecordingReporter())
    assert outcome.status == "migrated", outcome.error
    with catalog.connect() as con:
        starts = [n for (n,) in con.execute("select line_number from delta_log_actions where table_name = 't' "
                                            "and log_file = '00000000000000000001.json' order by 1").fetchall()]
        layouts = {f: (bool(e), b) for f, e, b in con.execute(
            "select log_file, ends_with_newline, blank_lines from delta_log_files where table_name = 't'").fetchall()}
    assert starts == [1, 9]  # the commitInfo spans lines 1-8 (indent=2), the add starts on line 9
    assert layouts == {f"{v:020d}.json": layout for v, layout in {
        0: (True, None), 1: (True, None), 2: (True, '{"3":""}'), 3: (True, '{"2":"\\r"}'),
        4: (False, None), 5: (True, '{"2":"  \\t"}')}.items()}
    assert all(c.status == "pass" for c in validate_tables(catalog, RecordingReporter(), ["t"], ("bytes",)))
    with catalog.connect() as con:
        con.execute("update delta_log_files set blank_lines = null where log_file = '00000000000000000002.json'")
    failed = {c.check_name for c in validate_tables(catalog, RecordingReporter(), ["t"], ("bytes",)) if c.failed}
    assert failed == {"assert_json_commits_rebuild_exactly"}


def test_a_truncated_pretty_printed_commit_is_still_refused(tmp_path):
    """The message names the line where the action that does not parse starts (the add, line 9)."""
    build_json_layouts(tmp_path / "t")
    commit = tmp_path / "t" / "_delta_log" / "00000000000000000001.json"
    commit.write_bytes(commit.read_bytes()[:-40])
    [outcome] = migrate_tables([TableSpec(tmp_path / "t", "t")], Catalog("duckdb", tmp_path / "c.duckdb"),
                               RecordingReporter())
    assert outcome.status == "failed"
    assert "00000000000000000001.json: line 9 is not valid JSON (truncated or corrupt)" in outcome.error


def test_partition_values_are_compared_as_typed_values(catalog, tmp_path):
    """Case 6: the catalog keeps the log's strings (Spark's forms), delta-rs reports typed
    values; they agree as values. A value that differs as a value is still reported."""
    build_typed_partition_values(tmp_path / "t")
    [outcome] = migrate_tables([TableSpec(tmp_path / "t", "t")], catalog, RecordingReporter())
    assert outcome.status == "migrated", outcome.error
    with catalog.connect() as con:
        (raw,) = con.execute("select partition_values from delta_files where table_name = 't' "
                             "and path like 'ts=1/%'").fetchone()
    assert '"ts":"2024-01-01T10:00:00.000000Z"' in raw  # as the log wrote it
    assert all(c.status == "pass" for c in validate_tables(catalog, RecordingReporter(), ["t"], ("snapshot",)))
    with catalog.connect() as con:
        con.execute("update delta_files set partition_values = replace(partition_values, '08:09:10.001', "
                    "'08:09:10.002') where table_name = 't'")
    checks = {c.check_name: c for c in validate_tables(catalog, RecordingReporter(), ["t"], ("snapshot",))}
    assert checks["assert_snapshot_matches_delta_rs"].status == "fail"
    assert "2020-01-01 08:09:10.002000" in checks["assert_snapshot_matches_delta_rs"].observed


def _validated_without_delta_rs(catalog, name: str, feature: str) -> None:
    """Where delta-rs cannot be the oracle, its checks are skipped with the reason, and every
    other check (the bytes level, the log's own checksums) runs and passes."""
    checks = validate_tables(catalog, RecordingReporter(), [name])
    skipped = {c.check_name: c.observed for c in checks if c.status == "skip"}
    assert set(skipped) == {"assert_snapshot_matches_delta_rs", "assert_versions_readable_by_delta_rs"}
    assert all(f"delta-rs cannot read reader feature {feature}" in why and "bytes level" in why
               for why in skipped.values())
    assert [c.check_name for c in checks if c.status not in ("pass", "skip")] == []
    with catalog.connect() as con:
        (compared,) = con.execute("select count(*) from reference_version_checksums where table_name = ?",
                                  [name]).fetchone()
    assert compared > 0  # the checksum check had the log's own numbers to compare


def test_geospatial_table_migrates_and_rests_on_bytes_and_checksums(catalog, tmp_path):
    """Case 8: the geospatial reader feature changes column types and their stats (WKT), not the
    replay; delta-rs refuses it, so the bytes level and the `.crc` files are the proof."""
    build_geospatial(tmp_path / "geo")
    [outcome] = migrate_tables([TableSpec(tmp_path / "geo", "geo")], catalog, RecordingReporter())
    assert outcome.status == "migrated", outcome.error
    _validated_without_delta_rs(catalog, "geo", "geospatial")


def test_catalog_managed_table_reads_ratified_staged_commits(catalog, tmp_path):
    """Case 8: without the catalog's ratified version the table is refused (its newest versions
    may be unpublished); with it, the staged commits after the last published one are the log."""
    build_catalog_managed(tmp_path / "cm")
    [refused] = migrate_tables([TableSpec(tmp_path / "cm", "cm")], catalog, RecordingReporter())
    assert refused.status == "failed" and "give --catalog-version N" in refused.error
    [outcome] = migrate_tables([TableSpec(tmp_path / "cm", "cm", catalog_version=5)], catalog, RecordingReporter())
    assert outcome.status == "migrated", outcome.error
    assert (outcome.mode, outcome.latest_version) == ("full", 5)
    with catalog.connect() as con:
        live = {p[:10] for (p,) in con.execute("select path from delta_files where table_name = 'cm' and added_version <= 5 "
                                                "and (removed_version is null or removed_version > 5)").fetchall()}
        kinds = dict(con.execute("select version, file_kind from delta_log_files where table_name = 'cm' "
                                 "and log_file like '%.json'").fetchall())
    assert live == {f"part-{k:05d}" for k in (0, 2, 3, 4, 5)}
    assert kinds == {2: "checkpoint_commit", 3: "commit", 4: "staged_commit", 5: "staged_commit"}
    _validated_without_delta_rs(catalog, "cm", "catalogManaged")


def test_two_staged_commits_for_one_unpublished_version_are_refused(tmp_path):
    build_catalog_managed(tmp_path / "cm")
    staged = tmp_path / "cm" / "_delta_log" / "_staged_commits"
    [ratified] = staged.glob("00000000000000000004.*.json")
    (staged / "00000000000000000004.00000000-0000-4000-8000-000000000009.json").write_bytes(ratified.read_bytes())
    [outcome] = migrate_tables([TableSpec(tmp_path / "cm", "cm", catalog_version=5)],
                               Catalog("duckdb", tmp_path / "c.duckdb"), RecordingReporter())
    assert outcome.status == "failed"
    assert "2 staged commits for version 4" in outcome.error and ratified.name in outcome.error
    assert "only the catalog knows which one it ratified" in outcome.error


@pytest.mark.parametrize("fixture", ["v2_checkpoint_classic_name", "v2_checkpoint_sidecars", "v2_checkpoint_json"])
def test_drift_reads_a_v2_checkpoint_through_its_sidecars(tmp_path, fixture):
    """Case 1 in drift: a catalog replayed from version 0 is compared with the V2 checkpoint at
    version 3, whose adds live in its sidecars (the top-level file has no add column)."""
    HANDWRITTEN_FIXTURES[fixture](tmp_path / "t")
    restore_v2_history(tmp_path / "t", fixture)
    catalog = Catalog("duckdb", tmp_path / "c.duckdb")
    [outcome] = migrate_tables([TableSpec(tmp_path / "t", "t", full_history=True)], catalog, RecordingReporter())
    assert outcome.status == "migrated", outcome.error
    assert detect_drift(catalog, "t").findings == []
    with catalog.connect() as con:  # a catalog that lost a file the checkpoint holds is told apart
        con.execute("delete from delta_files where table_name = 't' and added_version = 0")
    assert [f["kind"] for f in detect_drift(catalog, "t").findings] == ["checkpoint_disagrees"]


def test_an_unreadable_crc_is_no_checksum_and_no_crash(tmp_path):
    """A `.crc` that is not a JSON object, or whose counts are not integers, is not compared; the
    table migrates on what the other `.crc` files and the log say."""
    HANDWRITTEN_FIXTURES["crc_files"](tmp_path / "t")
    log = tmp_path / "t" / "_delta_log"
    (log / f"{1:020d}.crc").write_text("[]")
    (log / f"{2:020d}.crc").write_text('{"numFiles": "3", "tableSizeBytes": true}')
    [outcome] = migrate_tables([TableSpec(tmp_path / "t", "t")], Catalog("duckdb", tmp_path / "c.duckdb"),
                               RecordingReporter())
    assert outcome.status == "migrated", outcome.error
