"""The CLI's own dbt runs (dbt_runner, dbt_parses): what they leave in the process and on disk,
and the parse of the project started ahead of a new catalog's build.

They hand dbt the catalog's settings as vars. They used to set the DELTA2SQL_* variables in os.environ around each run and restore them,
while threads of the same process (an object store's downloads, libpq, delta-rs) read it: a
write there races with them, and Python's own iteration of os.environ fails when it changes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import MutableMapping

import pyarrow as pa
from conftest import RecordingReporter
from deltalake import write_deltalake
from fixtures.deltalake_tables import DELTALAKE_FIXTURES

from delta2sql import dbt_parses, validate
from delta2sql.catalog import Catalog
from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.validate import validate_tables


class RecordingEnviron(MutableMapping):
    """os.environ as it was, noting every write."""

    def __init__(self, environ: MutableMapping) -> None:
        self.environ = environ
        self.writes: list[str] = []

    def __getitem__(self, key):
        return self.environ[key]

    def __iter__(self):
        return iter(self.environ)

    def __len__(self) -> int:
        return len(self.environ)

    def __setitem__(self, key, value) -> None:
        self.writes.append(key)
        self.environ[key] = value

    def __delitem__(self, key) -> None:
        self.writes.append(key)
        del self.environ[key]

    def copy(self) -> dict:
        return dict(self.environ)


def test_a_migration_builds_the_catalog_without_writing_the_environment(catalog, tmp_path, monkeypatch):
    """The build reaches the catalog's own file or schema (the table is only marked migrated once
    dbt's build of it there succeeded) with os.environ never written, on every engine; and dbt's
    target directory (its manifest, run results and compiled SQL) does not stay behind."""
    table = tmp_path / "orders"
    DELTALAKE_FIXTURES["checkpoints"](table)
    environ = RecordingEnviron(os.environ)
    monkeypatch.setattr(os, "environ", environ)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))

    [outcome] = migrate_tables([TableSpec(table, "orders")], catalog, RecordingReporter())

    assert outcome.status == "migrated", outcome.error
    assert environ.writes == []
    left = [p.name for p in temporary.iterdir()]
    assert [name for name in left if name.startswith("delta2sql-dbt-")] == [], left
    with catalog.connect() as con:
        built = con.execute("select built_version, latest_version from delta_log_tables where table_name = 'orders'")
        built_version, latest_version = built.fetchone()
    assert built_version == latest_version


def new_catalog_of_a_small_table(tmp_path, monkeypatch) -> tuple:
    """(table, catalog): a new catalog for a Delta table small enough to land in a second, with
    no parse kept from an earlier test and parses started ahead for it all the same."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # no parse kept from an earlier test
    monkeypatch.setattr(dbt_parses, "PARSE_AHEAD_MIN_BYTES", 0)  # this small table too
    table = tmp_path / "orders"
    DELTALAKE_FIXTURES["checkpoints"](table)
    return table, Catalog(path=tmp_path / "new.duckdb")


def record_parses(monkeypatch) -> tuple[list, list]:
    """(started, taken): the cache file of each parse started ahead; for each dbt run, the cache
    file of its vars and the exit code of the child it took (None: no child under way)."""
    started, taken = [], []
    start, seed = dbt_parses.parse_ahead, dbt_parses.seed

    def recording_start(options, target, vars_text):
        before = set(dbt_parses._AHEAD)
        start(options, target, vars_text)
        started.extend(set(dbt_parses._AHEAD) - before)

    def recording_seed(target_path, target, vars_text):
        cache = dbt_parses.cache_file(target, vars_text)
        ahead = dbt_parses._AHEAD.get(cache)
        seed(target_path, target, vars_text)
        taken.append((cache, ahead and ahead[0].returncode))

    monkeypatch.setattr(dbt_parses, "parse_ahead", recording_start)
    monkeypatch.setattr(dbt_parses, "seed", recording_seed)
    return started, taken


def test_a_new_catalog_build_takes_the_parse_started_ahead_and_a_catch_up_starts_none(tmp_path, monkeypatch):
    """The first migration into a catalog parses dbt's project in a child process while it lands,
    and the build waits for that parse and takes it; the catch-up after it finds the parse kept
    and starts no child."""
    table, catalog = new_catalog_of_a_small_table(tmp_path, monkeypatch)
    started, taken = record_parses(monkeypatch)

    [outcome] = migrate_tables([TableSpec(table, "orders")], catalog, RecordingReporter())
    assert outcome.status == "migrated", outcome.error
    assert len(started) == 1 and taken == [(started[0], 0)]  # the build's own vars; the child exited cleanly
    assert started[0].exists()
    assert not list(tmp_path.glob("delta2sql-dbt-*"))  # the child's directory too

    write_deltalake(table, pa.table({"id": pa.array([1, 2], pa.int64())}), mode="append", schema_mode="merge")
    [outcome] = migrate_tables([TableSpec(table, "orders")], catalog, RecordingReporter())
    assert outcome.status == "migrated" and outcome.mode == "catch_up", outcome.error
    assert len(started) == 1 and taken[1] == (started[0], None)


def test_a_validation_parses_ahead_for_its_own_vars_and_the_next_one_finds_it(tmp_path, monkeypatch):
    """validate's vars name its table, so the migration's parse does not serve its tests: it
    starts one while the references load, and its tests take it; the validation after it
    starts none."""
    table, catalog = new_catalog_of_a_small_table(tmp_path, monkeypatch)
    [outcome] = migrate_tables([TableSpec(table, "orders")], catalog, RecordingReporter())
    assert outcome.status == "migrated", outcome.error
    kept_by_migrate = set(tmp_path.glob("delta2sql-partial-parse-*"))
    started, taken = record_parses(monkeypatch)

    assert all(c.status == "pass" for c in validate_tables(catalog, RecordingReporter()))
    assert len(started) == 1 and started[0] not in kept_by_migrate and taken == [(started[0], 0)]
    assert started[0].exists()
    assert all(c.status == "pass" for c in validate_tables(catalog, RecordingReporter()))
    assert len(started) == 1 and taken == [(started[0], 0), (started[0], None)]
    # levels that load no references have nothing to hide a parse behind
    assert not validate._loads_references(["orders"], ("structure",), {})
    assert not validate._loads_references(["orders"], ("snapshot",), {"orders": "geospatial"})
    assert validate._loads_references(["orders"], ("snapshot",), {})


def test_a_parse_ahead_that_fails_or_is_never_taken_leaves_nothing(tmp_path, monkeypatch):
    """A child parse that fails gives the run no parse (it parses, and reports, itself); one
    nobody waits for is stopped at exit; neither leaves its directory."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    broken = ["--project-dir", str(tmp_path / "no project")]
    dbt_parses.parse_ahead(broken, "duckdb", '{"a": 1}')
    run_target = tmp_path / "run"
    run_target.mkdir()
    dbt_parses.seed(run_target, "duckdb", '{"a": 1}')
    assert list(run_target.iterdir()) == []
    assert not dbt_parses.cache_file("duckdb", '{"a": 1}').exists()

    dbt_parses.parse_ahead(broken, "duckdb", '{"a": 2}')
    process, directory = dbt_parses._AHEAD[dbt_parses.cache_file("duckdb", '{"a": 2}')]  # beside this worker's others
    dbt_parses._stop_parses_ahead()
    assert process.returncode is not None and not directory.exists() and dbt_parses._AHEAD == {}
    assert not list(tmp_path.glob("delta2sql-dbt-*"))


def test_parses_are_kept_per_vars_and_only_the_newest(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    run_target = tmp_path / "run"
    run_target.mkdir()
    for number in range(dbt_parses.KEPT_PARSES + 2):
        (run_target / "partial_parse.msgpack").write_bytes(f"parse {number}".encode())
        dbt_parses.keep(run_target, "duckdb", f'{{"n": {number}}}')
        os.utime(dbt_parses.cache_file("duckdb", f'{{"n": {number}}}'), (number, number))  # kept in this order
    kept = [n for n in range(dbt_parses.KEPT_PARSES + 2) if dbt_parses.cache_file("duckdb", f'{{"n": {n}}}').exists()]
    assert kept == list(range(2, dbt_parses.KEPT_PARSES + 2))
    assert dbt_parses.cache_file("duckdb", '{"n": 5}').read_bytes() == b"parse 5"


def test_a_catalog_in_a_folder_named_like_jinja_is_built_where_it_is(tmp_path):
    """dbt renders a string var as Jinja: the catalog's path reaches it inside a mapping, which
    it does not render, so the build is of this file and not of `.../a2b/catalog.duckdb`."""
    table = tmp_path / "orders"
    DELTALAKE_FIXTURES["checkpoints"](table)
    folder = tmp_path / "a{{ 1+1 }}b"
    folder.mkdir()
    catalog = Catalog(path=folder / "catalog.duckdb")

    [outcome] = migrate_tables([TableSpec(table, "orders")], catalog, RecordingReporter())

    assert outcome.status == "migrated", outcome.error
    assert not (tmp_path / "a2b").exists()
    with catalog.connect() as con:
        assert con.execute("select count(*) from delta_files").fetchone()[0] > 0
