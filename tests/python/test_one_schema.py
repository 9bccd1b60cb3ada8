"""The catalog is one schema (ADR 0005): `migrate` and `validate`, with checks passing and
failing, and plain `dbt build --store-failures` after them, create nothing in the database
outside the catalog's schema (PostgreSQL), no schema but `main` (DuckDB) and no file beside the
catalog (SQLite). Failed checks are still reported with the check, the table and the values.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import psycopg
import pytest
from conftest import ENGINES, REPO, RUN_ID, RecordingReporter, make_catalog, postgres_settings
from fixtures.deltalake_tables import DELTALAKE_FIXTURES
from fixtures.handwritten_logs import CONTRADICTED_FIXTURES

from delta2sql.catalog import Catalog
from delta2sql.dbt_runner import run_dbt
from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.test_failures import ALL_TABLES, findings, findings_by_table
from delta2sql.validate import validate_tables

CHECKSUM_CHECK = "assert_snapshot_matches_checksums"
# the singular tests' names, which stored failures would take as table names
SINGULAR_TESTS = {path.stem for path in (REPO / "tests" / "dbt").rglob("assert_*.sql")}


def postgres_objects(catalog_schema: str) -> set[tuple[str, str]]:
    """Every schema of the database as (schema, ""), and every relation outside `catalog_schema`
    as (schema, relation); not the system ones, nor those of other test runs and scripts
    (`d2s_<run>_...`, `d2s_stress_...`, `bench_...`), which may come and go meanwhile."""
    s = postgres_settings()
    with psycopg.connect(host=s["host"], port=s["port"], user=s["user"], dbname=s["dbname"],
                         password=s.get("password") or None) as con:
        rows = con.execute("""
            select n.nspname, coalesce(c.relname, '')
            from pg_namespace as n left join pg_class as c on c.relnamespace = n.oid and n.nspname <> %s
            where n.nspname <> 'information_schema' and n.nspname not like 'pg\\_%%'
        """, [catalog_schema]).fetchall()
    others = ("d2s_", "bench_")
    return {(schema, relation) for schema, relation in rows
            if schema.startswith(f"d2s_{RUN_ID}_") or not schema.startswith(others)}


def database_contents(catalog: Catalog, folder: Path) -> set:
    """What a catalog could leave outside itself: schemas and relations beside it on PostgreSQL,
    the files in its folder (and DuckDB's schemas) otherwise."""
    if catalog.target == "postgres":
        return postgres_objects(catalog.settings["schema"])
    files = {path.name for path in folder.iterdir()} - {catalog.path.name + ".wal"}  # DuckDB's own write-ahead log
    if catalog.target == "duckdb" and catalog.path.exists():
        with catalog.connect() as con:
            schemas = con.execute("select schema_name from information_schema.schemata "
                                  "where catalog_name = current_database()").fetchall()
        files |= {("schema", name) for (name,) in schemas}
    return files


def catalog_itself(catalog: Catalog) -> set:
    """What the catalog itself adds to `database_contents`."""
    if catalog.target == "postgres":
        return {(catalog.settings["schema"], "")}
    return {catalog.path.name} | ({("schema", "main")} if catalog.target == "duckdb" else set())


def catalog_relations(catalog: Catalog) -> set[str]:
    with catalog.connect() as con:
        if catalog.target == "sqlite":
            return {name for (name,) in con.raw.execute("select name from sqlite_master").fetchall()}
        return {name for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = current_schema()").fetchall()}


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_migrate_validate_and_plain_dbt_stay_in_the_catalog(engine, tmp_path):
    tables = tmp_path / "tables"
    DELTALAKE_FIXTURES["checkpoints"](tables / "clean")
    shutil.copytree(tables / "clean", tables / "tampered")
    CONTRADICTED_FIXTURES["crc_contradicts_log"][0](tables / "contradicted")
    folder = tmp_path / "catalog"
    folder.mkdir()
    catalog = make_catalog(engine, folder, f"one_schema_{engine}")
    before = database_contents(catalog, folder)

    specs = [TableSpec(tables / name, name) for name in ("clean", "tampered", "contradicted")]
    outcomes = {o.name: o for o in migrate_tables(specs, catalog, RecordingReporter())}
    assert {name: o.status for name, o in outcomes.items()} == \
        {"clean": "migrated", "tampered": "migrated", "contradicted": "failed"}
    crc = json.loads((tables / "contradicted" / "_delta_log" / f"{1:020d}.crc").read_text())
    assert outcomes["contradicted"].error == (  # the fixture: version 1 has 3 live files, its .crc says 10
        f"check {CHECKSUM_CHECK} failed: the replayed log has 3 live files of {crc['tableSizeBytes']} bytes "
        f"at version 1 (expected: {1:020d}.crc says numFiles=10 tableSizeBytes={crc['tableSizeBytes']})")
    if engine == "postgres":  # the landed actions' index (landing_schema.index_landed_actions), in the catalog's schema
        with catalog.connect() as con:
            indexes = dict(con.execute("select indexname, indexdef from pg_indexes "
                                       "where schemaname = current_schema() and tablename = 'delta_log_actions'").fetchall())
        assert indexes["delta_log_actions_action_type"].endswith("USING btree (action_type)")

    commit = tables / "tampered" / "_delta_log" / f"{24:020d}.json"
    landed = commit.read_bytes()
    commit.write_bytes(landed.replace(b'"dataChange":true', b'"dataChange":false', 1))
    checks = validate_tables(catalog, RecordingReporter())
    assert {c.table_name for c in checks} == {"clean", "tampered"}
    assert [c for c in checks if c.table_name == "clean" and c.status != "pass"] == []
    failed = {c.check_name: c for c in checks if c.table_name == "tampered" and c.status != "pass"}
    assert set(failed) == {"assert_log_files_unchanged", "assert_json_commits_rebuild_exactly"}
    unchanged = failed["assert_log_files_unchanged"]
    assert unchanged.status == "fail" and unchanged.details.startswith("1 differing rows; first: ")
    assert (unchanged.expected, unchanged.observed) == (
        f"{hashlib.sha256(landed).hexdigest()} ({len(landed)} bytes)",
        f"{hashlib.sha256(commit.read_bytes()).hexdigest()} ({commit.stat().st_size} bytes)")

    assert database_contents(catalog, folder) - before == catalog_itself(catalog)
    assert not catalog_relations(catalog) & SINGULAR_TESTS  # no failure was stored in the catalog either

    # dbt's own runner (in-process: dbt-duckdb holds the file), with nothing but the profile's target
    built = {r["unique_id"].split(".")[2]: r for r in run_dbt(["build", "--store-failures"], catalog,
                                                              RecordingReporter()).run_results}
    assert built[CHECKSUM_CHECK]["status"] == "fail"  # the contradicted table, built again
    assert database_contents(catalog, folder) - before == catalog_itself(catalog)
    assert CHECKSUM_CHECK in catalog_relations(catalog)  # its failures stored in the catalog's own schema


def failed_test(sql: str, failures: int) -> dict:
    """A run_results entry of a failed data test, as dbt writes it."""
    return {"unique_id": "test.delta2sql.assert_x", "status": "fail", "failures": failures, "compiled_code": sql}


def test_read_back_failures_are_counted_per_table(tmp_path):
    rows = "select * from (values ('a', 'x1'), ('a', 'x2'), ('b', 'y')) as t(table_name, observed)"
    with Catalog("duckdb", tmp_path / "c.duckdb").connect() as con:
        found = findings(con, failed_test(f"{rows}\n-- a test may end in a comment", 3))
    assert sorted((f.table_name, f.rows, f.first["table_name"]) for f in found) == [("a", 2, "a"), ("b", 1, "b")]


@pytest.mark.parametrize("engine", ENGINES)
def test_the_row_a_failure_shows_is_the_first_in_the_order_of_its_text(engine, tmp_path):
    """Which failing row a check shows used to be whichever the engine numbered first."""
    catalog = make_catalog(engine, tmp_path, "first_row")
    numbers = list(range(40, 0, -1))
    rows = " union all ".join(f"select 'a' as table_name, '{n:02d}' as expected, {n} as observed" for n in numbers)
    with catalog.connect() as con:
        [found] = findings(con, failed_test(rows, len(numbers)))
    assert (found.rows, found.first["expected"], found.first["observed"]) == (40, "01", 1)


def test_a_failure_whose_rows_are_gone_when_read_back_is_still_reported(tmp_path):
    """A concurrent run may change the catalog between dbt's run and the read-back: the test
    failed all the same, so every table hears of it."""
    with Catalog("duckdb", tmp_path / "c.duckdb").connect() as con:
        by_table = findings_by_table(con, [failed_test("select 'a' as table_name where 1 = 0", 3)])
    assert by_table == {ALL_TABLES: ["check assert_x failed: 3 rows when dbt ran the test, none when read back "
                                     "(expected: no rows)"]}
