"""The bytes level's re-read of the log files: spooled in bounded batches on its own thread, and
stopped, its spool removed, when the validation around it fails."""

from __future__ import annotations

import hashlib
import tempfile
import threading

import pytest
from conftest import RecordingReporter, make_catalog
from fixtures.deltalake_tables import DELTALAKE_FIXTURES

from delta2sql import log_file_reference, validate
from delta2sql.errors import DeltaLogError
from delta2sql.log_file_reference import ReRead, ReReads
from delta2sql.log_store import LocalLog, open_log
from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.reference import create_reference_tables


@pytest.fixture
def commits(tmp_path):
    table = tmp_path / "events"
    DELTALAKE_FIXTURES["appends"](table)
    return table, sorted(p.name for p in (table / "_delta_log").glob("*.json"))


@pytest.mark.duckdb
def test_reread_spools_every_line_in_bounded_batches(tmp_path, commits, monkeypatch):
    table, names = commits
    monkeypatch.setattr(log_file_reference, "SPOOL_ROWS", 3)
    catalog = make_catalog("duckdb", tmp_path, "spool")
    # each line of a commit written by delta-rs is one action: the test splits them itself
    expected = sorted((name, number, line) for name in names
                      for number, line in enumerate((table / "_delta_log" / name).read_text().splitlines(), 1))
    assert len(expected) > 3 * 2

    with ReReads() as rereads, catalog.connect() as con:
        create_reference_tables(con)
        read = rereads.start("events", names, open_log(table))
        read.done.result()
        assert all(batch.num_rows <= 3 for batch in read.lines.batches())
        read.store(con)
        stored = con.execute("select log_file, line_number, line_text from reference_log_lines "
                             "where table_name = 'events' order by all").fetchall()
        files = con.execute("select log_file, sha256, size_bytes, ends_with_newline from reference_log_files "
                            "order by log_file").fetchall()
    assert stored == expected
    assert files == [(name, hashlib.sha256(data).hexdigest(), len(data), data.endswith(b"\n"))
                     for name in names for data in [(table / "_delta_log" / name).read_bytes()]]


@pytest.fixture
def migrated(tmp_path, commits, monkeypatch):
    """The table migrated into a DuckDB catalog, and the directory its spools go to."""
    table, names = commits
    catalog = make_catalog("duckdb", tmp_path, "stop")
    [outcome] = migrate_tables([TableSpec(table, "events")], catalog, RecordingReporter())
    assert outcome.status == "migrated", outcome.error
    spools = tmp_path / "tmp"
    spools.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spools))
    return catalog, names, spools


@pytest.mark.duckdb
def test_an_unreadable_commit_fails_validation_naming_it_and_leaves_no_spool(migrated, monkeypatch):
    """The re-read's own error reaches the caller from its thread, unchanged."""
    catalog, names, spools = migrated
    original = LocalLog.read_bytes

    def read_bytes(self, name):
        if name == names[2]:
            raise DeltaLogError(f"{name}: cannot be read: Permission denied")
        return original(self, name)

    monkeypatch.setattr(LocalLog, "read_bytes", read_bytes)
    with pytest.raises(DeltaLogError, match=f"{names[2]}: cannot be read"):
        validate.validate_tables(catalog, RecordingReporter())
    assert list(spools.iterdir()) == []


@pytest.mark.duckdb
def test_a_failed_snapshot_stops_the_reread_and_leaves_no_spool(migrated, monkeypatch):
    """delta-rs failing while the log is re-read must not wait for the re-read's end (100,000
    commits take most of a minute), nor leave its spool behind."""
    catalog, names, spools = migrated

    reread_files, original, rereading = [], ReRead._reread_file, threading.Event()

    def reread_file(self, log_file, log):
        reread_files.append(log_file)
        if len(reread_files) == 1:
            rereading.set()
            self.stop.wait(timeout=60)  # held until the snapshots have failed (then goes on, if never told to stop)
        original(self, log_file, log)

    def failing_snapshots(*args):
        assert rereading.wait(timeout=60)
        raise RuntimeError("delta-rs failed")

    monkeypatch.setattr(ReRead, "_reread_file", reread_file)
    monkeypatch.setattr(validate, "load_snapshot_reference", failing_snapshots)
    with pytest.raises(RuntimeError, match="delta-rs failed"):
        validate.validate_tables(catalog, RecordingReporter())
    assert len(reread_files) == 1 < len(names)
    assert list(spools.iterdir()) == []
    assert not any(t.name.startswith("delta2sql-reread") for t in threading.enumerate())
