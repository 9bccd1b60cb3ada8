"""Every table of ../shared/delta-corpus: the SQL catalog equals delta-rs at the latest and
sampled earlier versions at every validation level, or the table is refused with a clear
"unsupported" error exactly when delta-rs cannot read it either."""

from __future__ import annotations

import deltalake
import pytest
from conftest import CORPUS, ENGINES, FleetRun, RecordingReporter, corpus_tables, run_fleet

from delta2sql.catalog import Catalog
from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.validate import LEVELS

CORPUS_NAMES = sorted(corpus_tables(CORPUS)) if CORPUS.is_dir() else []


def delta_rs_error(path) -> str | None:
    try:
        deltalake.DeltaTable(str(path)).get_add_actions()
    except Exception as exc:  # delta-rs raises several types; any refusal counts
        return str(exc)
    return None


@pytest.fixture(scope="module", params=ENGINES)
def corpus_run(request, corpus_root, fleet_dir) -> FleetRun:
    return run_fleet("corpus", request.param, corpus_tables(corpus_root), fleet_dir)


def test_corpus_is_present(corpus_root):
    assert len(corpus_tables(corpus_root)) >= 50


@pytest.mark.corpus
@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_corpus_table_matches_delta_rs_or_is_refused(corpus_run, name):
    outcome = corpus_run.outcomes[name]
    reference_error = delta_rs_error(corpus_run.tables[name])
    if reference_error is not None:
        assert outcome.status == "failed", f"delta-rs cannot read {name} ({reference_error}) but we migrated it"
        assert "unsupported:" in outcome.error
        return
    assert outcome.status == "migrated", outcome.error
    mine = corpus_run.checks_of(name)
    assert {c.level for c in mine} == set(LEVELS)
    failed = [(c.check_name, c.details) for c in mine if c.status != "pass"]
    assert not failed


@pytest.mark.corpus
def test_checkpoint_replay_equals_full_json_replay(corpus_root, fleet_dir):
    """Where a checkpoint was used and every JSON commit still exists, replaying all JSON from
    version 0 gives the same live files at the latest version: two independent paths through
    the log (Parquet checkpoint vs JSON history) agree. The replay SQL is the same on every
    engine (the cross-engine test holds them together), so DuckDB suffices here."""
    run = run_fleet("corpus", "duckdb", corpus_tables(corpus_root), fleet_dir)
    tables, outcomes = run.tables, run.outcomes
    catalog = Catalog(path=fleet_dir / "full_history.duckdb")
    candidates = {
        name: path for name, path in tables.items()
        if outcomes[name].status == "migrated" and outcomes[name].replay_start_version > 0
        and (path / "_delta_log" / f"{0:020d}.json").exists()
    }
    assert len(candidates) >= 5
    specs = [TableSpec(path, name, full_history=True) for name, path in candidates.items()]
    specs += [TableSpec(path, f"{name}@checkpoint") for name, path in candidates.items()]
    outcomes_full = migrate_tables(specs, catalog, RecordingReporter())
    assert all(o.status == "migrated" for o in outcomes_full), [o.error for o in outcomes_full]
    with catalog.connect() as con:
        differences = con.execute(
            """
            with live as (
                select f.table_name, f.path, f.dv_id, f.size_bytes, f.partition_values, f.num_records
                from delta_files f join delta_tables t using (table_name)
                where f.removed_version is null
            ),
            full_replay as (select * from live where table_name not like '%@checkpoint'),
            checkpoint_replay as (
                select replace(table_name, '@checkpoint', '') as table_name, path, dv_id, size_bytes,
                       partition_values, num_records
                from live where table_name like '%@checkpoint'
            )
            (select 'only in full replay' as side, * from (select * from full_replay except all select * from checkpoint_replay))
            union all
            (select 'only in checkpoint replay', * from (select * from checkpoint_replay except all select * from full_replay))
            """
        ).fetchall()
    assert differences == []
