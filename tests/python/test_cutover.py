"""finalize, the catalog writer, and rollback before and after cut-over.

Oracles: delta-rs reading the table's files, the log files' bytes, and the snapshot the test
computes by hand from the actions it committed."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid

import deltalake
import pyarrow.parquet as pq
import pytest
from conftest import RecordingReporter, make_catalog
from fixtures.deltalake_tables import DELTALAKE_FIXTURES

from delta2sql.cutover import finalize_table, rollback_table
from delta2sql.errors import Delta2SqlError
from delta2sql.fingerprint import table_fingerprints
from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.validate import validate_tables
from delta2sql.writer import CatalogWriter, VersionConflict


def migrate(catalog, *tables) -> None:
    outcomes = migrate_tables([TableSpec(path, path.name) for path in tables], catalog, RecordingReporter())
    assert [o.status for o in outcomes] == ["migrated"] * len(tables), [o.error for o in outcomes]


def log_bytes(table) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (table / "_delta_log").iterdir() if p.is_file()}


def delta_rs_live(table) -> set[str]:
    return set(deltalake.DeltaTable(str(table)).get_add_actions(flatten=True).column("path").to_pylist())


def catalog_live(catalog, name: str, version: int) -> set[str]:
    with catalog.connect() as con:
        return {p for (p,) in con.execute(
            "select path from delta_files where table_name = ? and added_version <= ? "
            "and (removed_version is null or removed_version > ?)", [name, version, version]).fetchall()}


def add_action(table, name: str) -> dict:
    """A real data file written beside the table's own, and the add action that records it."""
    source = min(table.glob("*.parquet"))
    pq.write_table(pq.read_table(source), table / name)
    rows = pq.read_metadata(table / name).num_rows
    return {"add": {"path": name, "partitionValues": {}, "size": (table / name).stat().st_size,
                    "modificationTime": int(time.time() * 1000), "dataChange": True,
                    "stats": json.dumps({"numRecords": rows})}}


def commit_info(operation: str) -> dict:
    return {"commitInfo": {"timestamp": int(time.time() * 1000), "operation": operation, "operationParameters": {}}}


def test_rollback_before_finalize_removes_that_table_only(tmp_path, catalog):
    first, second = tmp_path / "first", tmp_path / "second"
    DELTALAKE_FIXTURES["appends"](first)
    DELTALAKE_FIXTURES["partitioned"](second)
    migrate(catalog, first, second)
    with catalog.connect() as con:
        before = table_fingerprints(con, "second")
    rollback_table(catalog, "first", RecordingReporter())
    with catalog.connect() as con:
        assert {r: n for r, (n, _) in table_fingerprints(con, "first").items() if n} == {}
        for relation in ("migration_runs", "migration_batches", "validation_results"):
            assert con.execute(f"select count(*) from {relation} where table_name = 'first'").fetchone()[0] == 0
        assert table_fingerprints(con, "second") == before
    migrate(catalog, first)  # and it can be migrated again from scratch


def test_finalize_refuses_on_drift(tmp_path):
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["appends"](table)
    catalog = make_catalog("duckdb", tmp_path, "drift")
    migrate(catalog, table)
    deltalake.write_deltalake(str(table), deltalake.DeltaTable(str(table)).to_pyarrow_table(), mode="append")
    with pytest.raises(Delta2SqlError, match="behind"):
        finalize_table(catalog, "t", RecordingReporter())
    with catalog.connect() as con:
        assert con.execute("select status from delta_log_tables").fetchall() == [("migrated",)]
    migrate(catalog, table)  # caught up: now it finalizes
    assert finalize_table(catalog, "t", RecordingReporter()).version == 4  # v0..v3, then the append


def test_second_writer_of_a_version_fails_cleanly(tmp_path, catalog):
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["appends"](table)
    migrate(catalog, table)
    finalize_table(catalog, "t", RecordingReporter())
    writer = CatalogWriter(catalog, "t")
    read_version = writer.latest_version()
    results: list = []

    def write(n: int) -> None:
        try:
            results.append(CatalogWriter(catalog, "t").commit([add_action(table, f"w{n}.parquet"), commit_info("WRITE")],
                                                              read_version))
        except VersionConflict as exc:
            results.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(type(r).__name__ for r in results) == ["VersionConflict", "int"]
    assert writer.latest_version() == read_version + 1
    with pytest.raises(VersionConflict):  # a stale writer, after the fact
        writer.commit([commit_info("WRITE")], read_version)
    with catalog.connect() as con:
        assert con.execute("select count(*) from delta_log_files where file_kind = 'catalog_commit'").fetchone()[0] == 1


def test_rollback_after_finalize_writes_catalog_commits_back_for_delta_rs(tmp_path, catalog):
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["appends"](table)
    migrate(catalog, table)
    cutover = finalize_table(catalog, "t", RecordingReporter()).version
    live_at_cutover = delta_rs_live(table)
    original_log = log_bytes(table)

    writer = CatalogWriter(catalog, "t")
    v1 = writer.commit([add_action(table, "after-1.parquet"), commit_info("WRITE")], writer.latest_version())
    gone = min(live_at_cutover)
    remove = {"remove": {"path": gone, "deletionTimestamp": int(time.time() * 1000), "dataChange": True}}
    v2 = writer.commit([remove, add_action(table, "after-2.parquet"), commit_info("DELETE")], v1)
    writer.refresh()
    expected = (live_at_cutover | {"after-1.parquet", "after-2.parquet"}) - {gone}  # by hand
    assert catalog_live(catalog, "t", v2) == expected
    assert deltalake.DeltaTable(str(table)).version() == cutover  # the files know nothing yet
    with pytest.raises(Delta2SqlError, match="exist only in the catalog"):  # nothing file-based can confirm them
        validate_tables(catalog, RecordingReporter(), ["t"])

    result = rollback_table(catalog, "t", RecordingReporter())
    assert result.written_files == [f"{v1:020d}.json", f"{v2:020d}.json"]
    assert deltalake.DeltaTable(str(table)).version() == v2
    assert delta_rs_live(table) == expected
    after = log_bytes(table)
    assert {k: after[k] for k in original_log} == original_log  # nothing overwritten
    with catalog.connect() as con:
        assert con.execute("select status from delta_log_tables").fetchall() == [("file_based",)]
    assert rollback_table(catalog, "t", RecordingReporter()).action == "removed"  # file-based: rows go


def test_rollback_never_overwrites_a_different_file(tmp_path):
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["appends"](table)
    catalog = make_catalog("duckdb", tmp_path, "clash" + uuid.uuid4().hex[:4])
    migrate(catalog, table)
    cutover = finalize_table(catalog, "t", RecordingReporter()).version
    writer = CatalogWriter(catalog, "t")
    writer.commit([commit_info("WRITE")], cutover)
    intruder = table / "_delta_log" / f"{cutover + 1:020d}.json"
    intruder.write_text(json.dumps(commit_info("SOMEONE ELSE")) + "\n")
    intruding_bytes = intruder.read_bytes()
    with pytest.raises(Delta2SqlError, match="already exists with other bytes"):
        rollback_table(catalog, "t", RecordingReporter())
    assert intruder.read_bytes() == intruding_bytes
    with catalog.connect() as con:  # writers stay shut out until someone resolves the clash
        assert con.execute("select status from delta_log_tables").fetchall() == [("rolling_back",)]
    with pytest.raises(Delta2SqlError, match="not finalized"):
        writer.latest_version()



def test_a_commit_during_a_build_is_built_by_the_next_refresh(tmp_path, monkeypatch):
    """built_version records what a build saw, not what was published when it ended."""
    import delta2sql.migrate as migrate_module

    table = tmp_path / "t"
    DELTALAKE_FIXTURES["appends"](table)
    catalog = make_catalog("duckdb", tmp_path, "race")
    migrate(catalog, table)
    cutover = finalize_table(catalog, "t", RecordingReporter()).version
    writer = CatalogWriter(catalog, "t")
    first = writer.commit([add_action(table, "a.parquet"), commit_info("WRITE")], cutover)
    real_run_dbt = migrate_module.run_dbt

    def build_while_another_writer_commits(*args, **kwargs):
        result = real_run_dbt(*args, **kwargs)
        CatalogWriter(catalog, "t").commit([add_action(table, "b.parquet"), commit_info("WRITE")], first)
        return result

    monkeypatch.setattr(migrate_module, "run_dbt", build_while_another_writer_commits)
    writer.refresh()
    monkeypatch.setattr(migrate_module, "run_dbt", real_run_dbt)
    with catalog.connect() as con:
        assert con.execute("select built_version, latest_version from delta_log_tables").fetchone() == (first, first + 1)
    writer.refresh()
    assert {"a.parquet", "b.parquet"} <= catalog_live(catalog, "t", first + 1)
