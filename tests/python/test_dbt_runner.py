"""The CLI's own dbt runs (dbt_runner, dbt_parses, dbt_ahead): what they leave in the process and
on disk, and dbt made ready in a child process ahead of the run that needs it.

They hand dbt the catalog's settings as vars. They used to set the DELTA2SQL_* variables in os.environ around each run and restore them,
while threads of the same process (an object store's downloads, libpq, delta-rs) read it: a
write there races with them, and Python's own iteration of os.environ fails when it changes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import MutableMapping
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import RecordingReporter
from deltalake import write_deltalake
from fixtures.deltalake_tables import DELTALAKE_FIXTURES

from delta2sql import dbt_ahead, dbt_parses, dbt_runner, validate
from delta2sql.catalog import Catalog
from delta2sql.errors import Delta2SqlError
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
    no parse kept from an earlier test and dbt made ready ahead for it all the same."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # no parse kept from an earlier test
    monkeypatch.setattr(dbt_ahead, "MIN_BYTES", 0)  # this small table too
    table = tmp_path / "orders"
    DELTALAKE_FIXTURES["checkpoints"](table)
    return table, Catalog(path=tmp_path / "new.duckdb")


def record_children(monkeypatch) -> tuple[list, list]:
    """(started, taken): the vars of each child started ahead; for each dbt run that looked for
    one, its vars and the child it took (None: it ran here)."""
    started, taken = [], []
    start, take = dbt_ahead.start, dbt_ahead.take

    def recording_start(options, target, vars_text):
        before = set(dbt_ahead._CHILDREN)
        start(options, target, vars_text)
        started.extend(vars_text for _, vars_text in set(dbt_ahead._CHILDREN) - before)

    def recording_take(target, vars_text):
        child = take(target, vars_text)
        taken.append((vars_text, child))
        return child

    monkeypatch.setattr(dbt_ahead, "start", recording_start)
    monkeypatch.setattr(dbt_ahead, "take", recording_take)
    return started, taken


def ran(taken: list) -> list[tuple]:
    """For each run record_children saw: its vars, whether a child ran it, and the child's exit code."""
    return [(vars_text, child is not None, child and child.process.returncode) for vars_text, child in taken]


def test_a_build_runs_in_the_child_made_ready_while_it_landed(tmp_path, monkeypatch):
    """The first migration into a catalog makes dbt ready in a child process while it lands;
    the build runs there, its nodes reported as they finish, and its parse is kept. A catch-up
    of enough log starts another, which starts from that parse."""
    table, catalog = new_catalog_of_a_small_table(tmp_path, monkeypatch)
    started, taken = record_children(monkeypatch)
    reporter = RecordingReporter()

    [outcome] = migrate_tables([TableSpec(table, "orders")], catalog, reporter)
    assert outcome.status == "migrated", outcome.error
    assert len(started) == 1 and ran(taken) == [(started[0], True, 0)]  # the build's own vars; the child exited cleanly
    nodes = [fields["node"] for kind, fields in reporter.events if kind == "dbt_node"]
    assert "model.delta2sql.delta_files" in nodes and len(nodes) == len(set(nodes)) > 40
    assert dbt_parses.cache_file("duckdb", started[0]).exists()
    assert not list(tmp_path.glob("delta2sql-dbt-*"))  # neither the run's directory nor the child's

    write_deltalake(table, pa.table({"id": pa.array([1, 2], pa.int64())}), mode="append", schema_mode="merge")
    [outcome] = migrate_tables([TableSpec(table, "orders")], catalog, RecordingReporter())
    assert outcome.status == "migrated" and outcome.mode == "catch_up", outcome.error
    assert started == [started[0]] * 2 and ran(taken)[1] == (started[0], True, 0)


def test_a_validation_makes_dbt_ready_for_its_own_vars(tmp_path, monkeypatch):
    """validate's vars name its table: it starts a child for them while the references load, and
    its tests run there; levels that load no references have nothing to hide a child behind."""
    table, catalog = new_catalog_of_a_small_table(tmp_path, monkeypatch)
    [outcome] = migrate_tables([TableSpec(table, "orders")], catalog, RecordingReporter())
    assert outcome.status == "migrated", outcome.error
    kept_by_migrate = set(tmp_path.glob("delta2sql-partial-parse-*"))
    started, taken = record_children(monkeypatch)

    assert all(c.status == "pass" for c in validate_tables(catalog, RecordingReporter()))
    assert len(started) == 1 and ran(taken) == [(started[0], True, 0)]
    kept = dbt_parses.cache_file("duckdb", started[0])
    assert kept.exists() and kept not in kept_by_migrate
    assert not validate._loads_references(["orders"], ("structure",), {})
    assert not validate._loads_references(["orders"], ("snapshot",), {"orders": "geospatial"})
    assert validate._loads_references(["orders"], ("snapshot",), {})


def test_a_validation_run_in_a_child_finds_what_one_in_this_process_finds(catalog, tmp_path, monkeypatch):
    """The same failing checks, with the same expected and observed values, whether dbt's tests
    ran in a child made ready ahead or in this process: on every engine."""
    table = tmp_path / "orders"
    DELTALAKE_FIXTURES["checkpoints"](table)
    monkeypatch.setattr(dbt_ahead, "MIN_BYTES", 0)  # built, and validated below, in a child
    [outcome] = migrate_tables([TableSpec(table, "orders")], catalog, RecordingReporter())
    assert outcome.status == "migrated", outcome.error
    commit = max((table / "_delta_log").glob("*.json"))
    commit.write_bytes(commit.read_bytes().replace(b'"dataChange":true', b'"dataChange":false', 1))

    def checks() -> list[tuple]:
        return sorted((c.check_name, c.status, c.expected, c.observed, c.details)
                      for c in validate_tables(catalog, RecordingReporter()))

    started, taken = record_children(monkeypatch)
    in_child = checks()
    assert ran(taken) == [(started[0], True, 0)]
    monkeypatch.setattr(dbt_ahead, "MIN_BYTES", 1 << 60)
    here = checks()
    assert len(started) == 1 and ran(taken)[1] == (started[0], False, None)
    assert in_child == here
    assert {name for name, status, *_ in here if status != "pass"} == {
        "assert_log_files_unchanged", "assert_json_commits_rebuild_exactly"}


def test_a_run_here_lets_go_of_its_duckdb_catalog(tmp_path, monkeypatch):
    """dbt-duckdb keeps the file of its last run open (its profile's `keep_open`), locked against
    every other process. A run here closes it: another process can open the catalog, and the next
    run on it goes to a child made ready ahead. Until 2026-12-07 it stayed open, and such a run
    stayed in this process."""
    table, catalog = new_catalog_of_a_small_table(tmp_path, monkeypatch)
    monkeypatch.setattr(dbt_ahead, "MIN_BYTES", 1 << 60)
    [outcome] = migrate_tables([TableSpec(table, "orders")], catalog, RecordingReporter())  # built here
    assert outcome.status == "migrated", outcome.error
    opened = subprocess.run(
        [sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1], read_only=True).close()",
         str(catalog.path)], capture_output=True, text=True, check=False)
    assert opened.returncode == 0, opened.stderr

    monkeypatch.setattr(dbt_ahead, "MIN_BYTES", 0)
    started, taken = record_children(monkeypatch)
    assert all(c.status == "pass" for c in validate_tables(catalog, RecordingReporter()))
    assert len(started) == 1 and ran(taken) == [(started[0], True, 0)]


def test_a_child_that_cannot_parse_leaves_the_run_to_this_process(tmp_path, monkeypatch):
    """A child whose parse fails is stopped and the run runs here (which parses, and reports,
    itself); one nobody gives a run is stopped at exit; neither leaves its directory."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    broken = ["--project-dir", str(tmp_path / "no project")]
    dbt_ahead.start(broken, "duckdb", '{"a": 1}')
    child = dbt_ahead._CHILDREN[("duckdb", '{"a": 1}')]
    assert dbt_ahead.take("duckdb", '{"a": 1}') is None
    assert child.process.returncode is not None and not child.target_path.exists()
    assert not dbt_parses.cache_file("duckdb", '{"a": 1}').exists()

    dbt_ahead.start(broken, "duckdb", '{"a": 2}')
    child = dbt_ahead._CHILDREN[("duckdb", '{"a": 2}')]
    dbt_ahead._stop_children()
    assert child.process.returncode is not None and dbt_ahead._CHILDREN == {}
    assert not list(tmp_path.glob("delta2sql-dbt-*"))


def test_a_child_that_dies_during_the_run_fails_it_naming_the_process(tmp_path, monkeypatch):
    table, catalog = new_catalog_of_a_small_table(tmp_path, monkeypatch)
    [outcome] = migrate_tables([TableSpec(table, "orders")], catalog, RecordingReporter())
    assert outcome.status == "migrated", outcome.error
    vars_text = dbt_runner._all_vars_text(catalog, None)
    dbt_ahead.start(dbt_runner._options(catalog, vars_text), "duckdb", vars_text)
    child = dbt_ahead.take("duckdb", vars_text)
    assert child is not None

    def kill_at_the_first_node(*_):
        child.process.kill()

    run = tmp_path / "run"
    with pytest.raises(Delta2SqlError, match=rf"dbt build could not run: its process \(PID {child.process.pid}\) "
                                             r"ended with exit code -9 before its run did"):
        dbt_ahead.give(child, ["build", *dbt_runner._options(catalog, vars_text), "--target-path", str(run),
                               "--log-path", str(run / "logs")], kill_at_the_first_node)
    assert not child.target_path.exists()


def test_a_child_exits_when_the_process_that_started_it_is_killed(tmp_path):
    """A build left running after its migrate was killed would hold the catalog against the next
    one: the child's watch (started first thing in dbt_ahead._main) exits it, even in the middle
    of a node, where nothing else would notice. Here it watches a process that sleeps."""
    starter = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import os, subprocess, sys
        child = subprocess.Popen([sys.executable, "-c", "import sys, threading, time; "
                                  "from delta2sql.dbt_ahead import _exit_when_orphaned; "
                                  "threading.Thread(target=_exit_when_orphaned, args=(int(sys.argv[1]),), daemon=True).start(); "
                                  "time.sleep(120)", str(os.getpid())],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # the pipe is the starter's
        print(child.pid, flush=True)
        os._exit(0)  # no atexit, no wait: as if killed
    """)], capture_output=True, text=True, check=True, timeout=60)
    orphan = int(starter.stdout)
    deadline = time.monotonic() + 10
    while _running(orphan):
        assert time.monotonic() < deadline, "the child outlived the process that started it"
        time.sleep(0.1)


def _running(pid: int) -> bool:
    """Whether `pid` runs: it exists and is no zombie (an orphan's new parent may not reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


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


def test_a_resident_process_keeps_its_newest_parses_only(tmp_path, monkeypatch):
    """A one-table validation's vars name the table, so a resident sync of a fleet kept one parse
    (~3.5 MiB) per table it ever validated. Past the limit, the least recently used goes."""
    monkeypatch.setattr(dbt_runner, "_PARSED", None)
    monkeypatch.setattr(dbt_runner, "KEPT_PARSED_PROJECTS", 2)
    dbt_runner.keep_parsed_projects()
    catalog = Catalog(path=tmp_path / "fleet.duckdb")

    def parsed(table_name: str):
        vars_text = dbt_runner._all_vars_text(catalog, {"table_name": table_name})
        target = tmp_path / table_name  # as a run's own: not the project's target/ (another worker's too)
        options = [*dbt_runner._options(catalog, vars_text), "--target-path", str(target), "--log-path", str(target)]
        return dbt_runner._parsed_project(catalog, options, vars_text)

    a = parsed("a")
    parsed("b")
    assert parsed("a") is a  # kept, and now the most recently used
    parsed("c")
    assert [json.loads(vars_text)["table_name"] for _, vars_text in dbt_runner._PARSED] == ["a", "c"]
