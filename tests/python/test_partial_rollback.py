"""`rollback TABLE --to-version V`: what was landed after V goes, the table stands migrated at V,
and `migrate` catches up from V + 1.

Oracles: delta-rs reading the table at V, and a catalog migrated straight to V the same way (its
batches are what the cut batches must have become, its rows what the rolled-back catalog must
hold); the batch plan of the fixture, counted by hand."""

from __future__ import annotations

import dataclasses
import json
import uuid

import deltalake
import pytest
from conftest import RecordingReporter, invoke_cli, make_catalog
from fixtures.deltalake_tables import DELTALAKE_FIXTURES

from delta2sql.cutover import finalize_table
from delta2sql.errors import Delta2SqlError
from delta2sql.fingerprint import table_fingerprints
from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.partial_rollback import rollback_to_version
from delta2sql.runs import RunOptions

FIRST = 12  # a full-history first run lands versions 0..12 in one batch ...
BATCH = 5  # ... and a catch-up 13..39 in batches of five: 13-17, 18-22, 23-27, 28-32, 33-37, 38-39
LATEST = 39


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """40 versions with deletes, an overwrite at 20 and a checkpoint at 30 (fixtures/deltalake_tables.py)."""
    root = tmp_path_factory.mktemp("partial") / "t"
    DELTALAKE_FIXTURES["many_versions_partitioned_removes"](root)
    return root


def migrate(table, catalog, version=None, batch_size=BATCH, **spec) -> None:
    [outcome] = migrate_tables([TableSpec(table, "t", version=version, **spec)], catalog, RecordingReporter(),
                               RunOptions(batch_size=batch_size))
    assert outcome.status == "migrated", outcome.error


def in_two_runs(table, catalog, to=None) -> None:
    migrate(table, catalog, FIRST, batch_size=1000, full_history=True)
    migrate(table, catalog, to)


def batches(catalog) -> list[tuple]:
    """Every run's batches as landed: what a run straight to the same version must also hold."""
    with catalog.connect() as con:
        return con.execute(
            "select runs.mode, runs.from_version, runs.to_version, runs.status, batch_number, first_version, "
            "last_version, log_files, files, actions, bytes, checksum from migration_batches "
            "inner join migration_runs as runs using (run_id) order by runs.from_version, batch_number").fetchall()


def delta_rs_live(table, version: int) -> set[str]:
    return set(deltalake.DeltaTable(str(table), version=version).get_add_actions(flatten=True).column("path").to_pylist())


def catalog_live(catalog) -> set[str]:
    with catalog.connect() as con:
        return {p for (p,) in con.execute("select path from delta_files where table_name = 't' and removed_version "
                                          "is null").fetchall()}


def state(catalog) -> tuple:
    with catalog.connect() as con:
        return con.execute("select status, latest_version, built_version from delta_log_tables").fetchone()


def fresh(table, engine, tmp_path, **migration):
    other = make_catalog(engine, tmp_path, "fresh" + uuid.uuid4().hex[:6])
    in_two_runs(table, other, **migration)
    return other


def fingerprints(catalog) -> dict:
    with catalog.connect() as con:
        return table_fingerprints(con, "t")


def test_rollback_inside_a_batch_stands_migrated_at_that_version_and_catches_up_after_it(table, catalog, tmp_path):
    in_two_runs(table, catalog)
    v = 24  # inside the catch-up's third batch (23-27): after the overwrite at 20 and the delete at 24
    result = invoke_cli(catalog, "rollback", "t", "--to-version", str(v))
    assert result.exit_code == 0, result.output
    [event] = [e for e in map(json.loads, result.output.splitlines()) if e["event"] == "rolled_back"]
    assert (event["version"], event["removed_versions"], event["batches_removed"], event["batches_cut"],
            event["runs_rolled_back"]) == (v, [25, LATEST], 3, 1, 0)

    assert state(catalog) == ("migrated", v, v)
    assert catalog_live(catalog) == delta_rs_live(table, v)
    straight = fresh(table, catalog.target, tmp_path, to=v)
    assert batches(catalog) == batches(straight)  # the cut batch: 23-24, its files, actions, bytes and checksum
    assert fingerprints(catalog) == fingerprints(straight)

    migrate(table, catalog)  # a catch-up from v + 1
    with catalog.connect() as con:
        runs = con.execute("select mode, from_version, to_version, status from migration_runs "
                           "order by from_version").fetchall()
    assert runs == [("full", 0, FIRST, "migrated"), ("catch_up", FIRST + 1, v, "migrated"),
                    ("catch_up", v + 1, LATEST, "migrated")]
    assert state(catalog) == ("migrated", LATEST, LATEST)
    assert catalog_live(catalog) == delta_rs_live(table, LATEST)


@pytest.mark.postgres
def test_a_run_stopped_part_way_is_published_at_the_version_rolled_back_to(table, tmp_path):
    """A first run that stopped after its first batch (0-3, past --memory-limit): rolling back to
    2 keeps and publishes 0-2, and `migrate` goes on from 3 instead of landing them again. (Each
    engine walks the rollback inside a batch above; this one and the next two share them out.)"""
    catalog = make_catalog("postgres", tmp_path, "stopped")
    limited = dataclasses.replace(catalog, memory_limit_bytes=64 << 20)  # below what this process holds
    [outcome] = migrate_tables([TableSpec(table, "t", full_history=True)], limited, RecordingReporter(),
                               RunOptions(batch_size=4))
    assert outcome.status == "failed" and "--memory-limit" in outcome.error
    assert state(catalog)[0] == "landing"

    with pytest.raises(Delta2SqlError, match="only versions up to 3 are landed"):
        rollback_to_version(catalog, "t", 5, RecordingReporter())
    rollback_to_version(catalog, "t", 2, RecordingReporter())
    assert state(catalog) == ("migrated", 2, 2)
    assert catalog_live(catalog) == delta_rs_live(table, 2)
    straight = make_catalog(catalog.target, tmp_path, "straight")
    [outcome] = migrate_tables([TableSpec(table, "t", version=2, full_history=True)], straight, RecordingReporter(),
                               RunOptions(batch_size=4))
    assert outcome.status == "migrated", outcome.error
    assert [b[3:] for b in batches(catalog)] == [b[3:] for b in batches(straight)]
    assert fingerprints(catalog) == fingerprints(straight)

    migrate(table, catalog, batch_size=4)
    with catalog.connect() as con:
        assert con.execute("select mode, from_version, to_version from migration_runs where status = 'migrated' "
                           "order by from_version").fetchall() == [("full", 0, 2), ("catch_up", 3, LATEST)]
    assert catalog_live(catalog) == delta_rs_live(table, LATEST)


@pytest.mark.sqlite
def test_rollback_into_an_earlier_run_rolls_the_later_runs_back(table, tmp_path):
    catalog = make_catalog("sqlite", tmp_path, "earlier")
    in_two_runs(table, catalog)
    rollback_to_version(catalog, "t", 8, RecordingReporter())
    with catalog.connect() as con:
        runs = con.execute("select mode, to_version, num_batches, status, error from migration_runs "
                           "order by from_version").fetchall()
        assert con.execute("select count(*) from migration_batches inner join migration_runs using (run_id) "
                           "where mode = 'catch_up'").fetchone() == (0,)
        assert con.execute("select max(version) from delta_log_actions").fetchone() == (8,)
    assert runs == [("full", 8, 1, "migrated", None), ("catch_up", LATEST, 6, "rolled_back", "rolled back to version 8")]
    assert catalog_live(catalog) == delta_rs_live(table, 8)
    straight = make_catalog("sqlite", tmp_path, "straight8")
    migrate(table, straight, 8, batch_size=1000, full_history=True)
    assert fingerprints(catalog) == fingerprints(straight)
    assert [b[4:] for b in batches(catalog)] == [b[4:] for b in batches(straight)]


@pytest.mark.duckdb
def test_what_cannot_stand_at_the_version_is_refused_and_nothing_changes(table, tmp_path):
    catalog = make_catalog("duckdb", tmp_path, "refusals")
    migrate(table, catalog)  # from the checkpoint of version 30
    before = fingerprints(catalog)
    with pytest.raises(Delta2SqlError, match="holds no version before 30"):
        rollback_to_version(catalog, "t", 20, RecordingReporter())
    with pytest.raises(Delta2SqlError, match="only versions up to 39 are landed"):
        rollback_to_version(catalog, "t", 40, RecordingReporter())
    assert fingerprints(catalog) == before
    finalize_table(catalog, "t", RecordingReporter())
    finalized = fingerprints(catalog)
    result = invoke_cli(catalog, "rollback", "t", "--to-version", "35")
    assert result.exit_code != 0 and "would drop committed versions" in result.output
    assert fingerprints(catalog) == finalized
    assert state(catalog) == ("finalized", LATEST, LATEST)
