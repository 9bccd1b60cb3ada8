"""Cross-engine identity: every fixture and corpus table gives the same catalog, row for row,
on DuckDB, PostgreSQL and SQLite (canonical per-relation fingerprints)."""

from __future__ import annotations

import pytest
from conftest import ENGINES, corpus_tables, run_fleet

from delta2sql.fingerprint import table_fingerprints


def fingerprints(run) -> dict[str, dict]:
    with run.catalog.connect() as con:
        return {name: table_fingerprints(con, name) for name, o in run.outcomes.items() if o.status == "migrated"}


def assert_identical(fleet: str, tables, fleet_dir) -> None:
    runs = {engine: run_fleet(fleet, engine, tables, fleet_dir) for engine in ENGINES}
    prints = {engine: fingerprints(run) for engine, run in runs.items()}
    assert set(prints["duckdb"]) == set(prints["postgres"]) == set(prints["sqlite"])
    assert len(prints["duckdb"]) >= len(tables) - 2
    differences = [
        (name, relation, {engine: prints[engine][name][relation] for engine in ENGINES})
        for name in prints["duckdb"]
        for relation in prints["duckdb"][name]
        if len({prints[engine][name][relation] for engine in ENGINES}) > 1
    ]
    assert differences == []


def test_fixture_catalogs_identical_on_every_engine(fixture_tables, fleet_dir):
    assert_identical("fixtures", fixture_tables, fleet_dir)


@pytest.mark.corpus
def test_corpus_catalogs_identical_on_every_engine(corpus_root, fleet_dir):
    assert_identical("corpus", corpus_tables(corpus_root), fleet_dir)
