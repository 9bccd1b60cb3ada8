"""Fixture tables written by delta-rs and hand-written logs: every one migrates and validates
at all levels against delta-rs, and facts a fixture fixes by construction hold in the catalog."""

from __future__ import annotations

import json
import shutil

import deltalake
import pytest

from conftest import RecordingReporter
from delta2sql.catalog import Catalog
from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.validate import LEVELS, validate_tables
from fixtures.deltalake_tables import DELTALAKE_FIXTURES
from fixtures.handwritten_logs import HANDWRITTEN_FIXTURES, SURVIVABLE_FIXTURES

VALID = {**DELTALAKE_FIXTURES, **HANDWRITTEN_FIXTURES}
SURVIVABLE = {name: builder for name, (builder, _) in SURVIVABLE_FIXTURES.items()}
# delta-rs refuses these on purpose (see DELTA_NOTES: readers disagree on a bad hint); the
# catalog is checked against delta-rs reading a copy without the bad file instead.
REFUSED_BY_DELTA_RS = {
    "last_checkpoint_points_to_missing": ["_last_checkpoint"],
    "corrupt_newest_checkpoint_with_json_history": ["_last_checkpoint", f"{5:020d}.checkpoint.parquet"],
}


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tables")
    specs = []
    for name, build in {**VALID, **SURVIVABLE}.items():
        build(root / name)
        specs.append(TableSpec(root / name, name))
    for name, bad_files in REFUSED_BY_DELTA_RS.items():
        repaired = root / f"{name}__repaired"
        shutil.copytree(root / name, repaired)
        for bad in bad_files:
            (repaired / "_delta_log" / bad).unlink()
        specs.append(TableSpec(repaired, repaired.name))
    catalog = Catalog(path=root / "catalog.duckdb")
    reporter = RecordingReporter()
    outcomes = {o.name: o for o in migrate_tables(specs, catalog, reporter)}
    checks = validate_tables(catalog, reporter)
    return root, catalog, outcomes, checks, reporter


def query(catalog: Catalog, sql: str, params=None) -> list[tuple]:
    con = catalog.connect()
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("name", sorted(VALID) + sorted(SURVIVABLE))
def test_fixture_migrates_and_validates(fixture_run, name):
    _, _, outcomes, checks, _ = fixture_run
    assert outcomes[name].status == "migrated", outcomes[name].error
    mine = [c for c in checks if c.table_name == name]
    assert {c.level for c in mine} == set(LEVELS)
    failed = [(c.check_name, c.observed, c.details) for c in mine if c.status != "pass"]
    if name in REFUSED_BY_DELTA_RS:
        assert {c for c, _, _ in failed} == {"assert_versions_readable_by_delta_rs"}
    else:
        assert not failed


@pytest.mark.parametrize("name", sorted(SURVIVABLE))
def test_wrong_hints_are_survived_with_a_warning(fixture_run, name):
    *_, reporter = fixture_run
    assert any(m.startswith(f"{name}:") for m in reporter.messages("warning"))


@pytest.mark.parametrize("name", sorted(REFUSED_BY_DELTA_RS))
def test_refused_by_delta_rs_equals_repaired_copy(fixture_run, name):
    """Our replay of the table with the bad hint equals delta-rs's reading of a repaired copy."""
    _, catalog, *_ = fixture_run
    rows = query(
        catalog,
        """
        select table_name, path, dv_id, added_version, removed_version, size_bytes, partition_values
        from delta_files where table_name in (?, ?) order by path, added_version
        """,
        [name, f"{name}__repaired"],
    )
    original = [r[1:] for r in rows if r[0] == name]
    repaired = [r[1:] for r in rows if r[0] != name]
    assert original and original == repaired


def test_in_commit_timestamps_are_commit_timestamps(fixture_run):
    root, catalog, *_ = fixture_run
    expected = {}
    for commit in sorted((root / "in_commit_timestamps" / "_delta_log").glob("*.json")):
        first = json.loads(commit.read_text().splitlines()[0])
        expected[int(commit.name[:20])] = first["commitInfo"]["inCommitTimestamp"]
    observed = dict(query(catalog, "select version, epoch_ms(commit_timestamp) from delta_commits where table_name = 'in_commit_timestamps'"))
    assert observed == expected


def test_commit_timestamp_falls_back_to_file_modification_time(fixture_run):
    root, catalog, *_ = fixture_run
    log = root / "appends" / "_delta_log"
    expected = {int(p.name[:20]): p.stat().st_mtime_ns // 1_000_000 for p in log.glob("*.json")}
    observed = dict(query(catalog, "select version, epoch_ms(commit_timestamp) from delta_commits where table_name = 'appends'"))
    assert observed == expected


def test_app_transactions_match_delta_rs(fixture_run):
    root, catalog, *_ = fixture_run
    table = deltalake.DeltaTable(str(root / "app_transactions"))
    newest = query(
        catalog,
        """
        select app_id, txn_version from (
            select app_id, txn_version, row_number() over (partition by app_id order by version desc) as recency
            from delta_txns where table_name = 'app_transactions'
        ) where recency = 1
        """,
    )
    assert newest and {app: table.transaction_version(app) for app, _ in newest} == dict(newest)


def test_metadata_cleanup_replays_from_the_checkpoint(fixture_run):
    root, catalog, outcomes, *_ = fixture_run
    log = root / "metadata_cleanup" / "_delta_log"
    first_json = min(int(p.name[:20]) for p in log.glob("*.json"))
    [(start, latest)] = query(catalog, "select replay_start_version, latest_version from delta_tables where table_name = 'metadata_cleanup'")
    assert start == first_json and latest == deltalake.DeltaTable(str(log.parent)).version()
    versions = [v for (v,) in query(catalog, "select version from delta_commits where table_name = 'metadata_cleanup' order by 1")]
    assert versions == list(range(start, latest + 1))


def test_domain_metadata_matches_the_log(fixture_run):
    """The current domains (newest action per domain, minus removed ones) equal a hand replay of the JSON."""
    root, catalog, *_ = fixture_run
    current = {}
    for commit in sorted((root / "domain_metadata" / "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            action = json.loads(line).get("domainMetadata")
            if action:
                current[action["domain"]] = action
    expected = {d: a["configuration"] for d, a in current.items() if not a.get("removed")}
    observed = dict(query(
        catalog,
        """
        select domain, domain_configuration from (
            select *, row_number() over (partition by domain order by version desc, line_number desc) as recency
            from delta_domain_metadata where table_name = 'domain_metadata'
        ) where recency = 1 and not is_removed
        """,
    ))
    assert expected and observed == expected
