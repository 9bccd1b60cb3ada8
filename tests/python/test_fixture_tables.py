"""Fixture tables written by delta-rs and hand-written logs: every one migrates and validates
at all levels against delta-rs, and facts a fixture fixes by construction hold in the catalog."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import deltalake
import pytest
from conftest import ENGINES, FleetRun, run_fleet
from fixtures.deltalake_tables import DELTALAKE_FIXTURES
from fixtures.handwritten_logs import HANDWRITTEN_FIXTURES, SURVIVABLE_FIXTURES

from delta2sql.catalog import Catalog
from delta2sql.validate import LEVELS

VALID = {**DELTALAKE_FIXTURES, **HANDWRITTEN_FIXTURES}
SURVIVABLE = {name: builder for name, (builder, _) in SURVIVABLE_FIXTURES.items()}
# Logs with a bad hint, which readers disagree on (see DELTA_NOTES); the catalog is also checked
# against a copy without the bad files. delta-rs opening the first at its newest version refuses
# the hint pointing at a deleted checkpoint, but validation walks forward from the oldest sampled
# version (reference._delta_rs_snapshots) and never reads the hint: every snapshot compares.
BAD_HINTS = {
    "last_checkpoint_points_to_missing": ["_last_checkpoint"],
    "corrupt_newest_checkpoint_with_json_history": ["_last_checkpoint", f"{5:020d}.checkpoint.parquet"],
}
REFUSED_BY_DELTA_RS = {"corrupt_newest_checkpoint_with_json_history"}

# Findings that are recorded, not errors (ADR 0001): a valid table migrates with them.
STRUCTURE_WARNINGS = {"repeated_remove": {"assert_removes_refer_to_known_files"}}


def build_fixture_tables(root: Path) -> dict[str, Path]:
    tables = {}
    for name, build in {**VALID, **SURVIVABLE}.items():
        build(root / name)
        tables[name] = root / name
    for name, bad_files in BAD_HINTS.items():
        repaired = root / f"{name}__repaired"
        shutil.copytree(root / name, repaired)
        for bad in bad_files:
            (repaired / "_delta_log" / bad).unlink()
        tables[repaired.name] = repaired
    return tables


@pytest.fixture(scope="module", params=ENGINES)
def fixture_run(request, fixture_tables, fleet_dir) -> FleetRun:
    return run_fleet("fixtures", request.param, fixture_tables, fleet_dir)


def query(catalog: Catalog, sql: str, params=None) -> list[tuple]:
    with catalog.connect() as con:
        return [tuple(row) for row in con.execute(sql, params or []).fetchall()]


def epoch_ms(value) -> int:
    """A catalog timestamp (datetime, or ISO text on SQLite) as epoch milliseconds, UTC."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return round(value.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


@pytest.mark.parametrize("name", sorted(VALID) + sorted(SURVIVABLE))
def test_fixture_migrates_and_validates(fixture_run, name):
    assert fixture_run.outcomes[name].status == "migrated", fixture_run.outcomes[name].error
    mine = fixture_run.checks_of(name)
    assert {c.level for c in mine} == set(LEVELS)
    warned = {c.check_name for c in mine if c.status == "warn"}
    assert warned == STRUCTURE_WARNINGS.get(name, set())
    failed = [(c.check_name, c.observed, c.details) for c in mine if c.status not in ("pass", "warn")]
    if name in REFUSED_BY_DELTA_RS:
        assert {c for c, _, _ in failed} == {"assert_versions_readable_by_delta_rs"}
    else:
        assert not failed


@pytest.mark.parametrize("name", sorted(SURVIVABLE))
def test_wrong_hints_are_survived_with_a_warning(fixture_run, name):
    assert any(m.startswith(f"{name}:") for m in fixture_run.reporter.messages("warning"))


@pytest.mark.parametrize("name", sorted(BAD_HINTS))
def test_bad_hint_replays_as_the_repaired_copy(fixture_run, name):
    """Our replay of the table with the bad hint equals delta-rs's reading of a repaired copy."""
    rows = query(
        fixture_run.catalog,
        """
        select table_name, path, dv_id, added_version, removed_version, size_bytes, partition_values
        from delta_files where table_name in (?, ?) order by path, added_version
        """,
        [name, f"{name}__repaired"],
    )
    original = [r[1:] for r in rows if r[0] == name]
    repaired = [r[1:] for r in rows if r[0] != name]
    assert original and original == repaired


def commit_timestamps(fixture_run, name: str) -> dict[int, int]:
    rows = query(fixture_run.catalog, "select version, commit_timestamp from delta_commits where table_name = ?", [name])
    return {version: epoch_ms(timestamp) for version, timestamp in rows}


def test_in_commit_timestamps_are_commit_timestamps(fixture_run):
    expected = {}
    for commit in sorted((fixture_run.tables["in_commit_timestamps"] / "_delta_log").glob("*.json")):
        first = json.loads(commit.read_text().splitlines()[0])
        expected[int(commit.name[:20])] = first["commitInfo"]["inCommitTimestamp"]
    assert commit_timestamps(fixture_run, "in_commit_timestamps") == expected


def test_commit_timestamp_falls_back_to_file_modification_time(fixture_run):
    log = fixture_run.tables["appends"] / "_delta_log"
    expected = {int(p.name[:20]): p.stat().st_mtime_ns // 1_000_000 for p in log.glob("*.json")}
    assert commit_timestamps(fixture_run, "appends") == expected


def test_app_transactions_match_delta_rs(fixture_run):
    table = deltalake.DeltaTable(str(fixture_run.tables["app_transactions"]))
    newest = query(
        fixture_run.catalog,
        """
        select app_id, txn_version from (
            select app_id, txn_version, row_number() over (partition by app_id order by version desc) as recency
            from delta_txns where table_name = 'app_transactions'
        ) as ranked where recency = 1
        """,
    )
    assert newest and {app: table.transaction_version(app) for app, _ in newest} == dict(newest)


def test_metadata_cleanup_replays_from_the_checkpoint(fixture_run):
    catalog = fixture_run.catalog
    log = fixture_run.tables["metadata_cleanup"] / "_delta_log"
    first_json = min(int(p.name[:20]) for p in log.glob("*.json"))
    [(start, latest)] = query(catalog, "select replay_start_version, latest_version from delta_tables where table_name = 'metadata_cleanup'")
    assert start == first_json and latest == deltalake.DeltaTable(str(log.parent)).version()
    versions = [v for (v,) in query(catalog, "select version from delta_commits where table_name = 'metadata_cleanup' order by 1")]
    assert versions == list(range(start, latest + 1))


def test_domain_metadata_matches_the_log(fixture_run):
    """The current domains (newest action per domain, minus removed ones) equal a hand replay of the JSON."""
    current = {}
    for commit in sorted((fixture_run.tables["domain_metadata"] / "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            action = json.loads(line).get("domainMetadata")
            if action:
                current[action["domain"]] = action
    expected = {d: a["configuration"] for d, a in current.items() if not a.get("removed")}
    observed = dict(query(
        fixture_run.catalog,
        """
        select domain, domain_configuration from (
            select *, row_number() over (partition by domain order by version desc, line_number desc) as recency
            from delta_domain_metadata where table_name = 'domain_metadata'
        ) as ranked where recency = 1 and not is_removed
        """,
    ))
    assert expected and observed == expected
