"""`delta2sql metrics`: the exposition parses with Prometheus's own parser, its families are the
ones docs/metrics.md lists, and its numbers are what the test can count itself: the commits it
appended, the batches its batch size makes, the log files' sizes on disk, the landing rows.

It reads the catalog only: the table's folder is moved away before it runs."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import RecordingReporter, documented_events, invoke_cli, make_catalog
from deltalake import write_deltalake
from fixtures.deltalake_tables import DELTALAKE_FIXTURES
from prometheus_client.parser import text_string_to_metric_families

from delta2sql.drift import detect_drift
from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.runs import RunOptions
from delta2sql.validate import validate_tables

REPO = Path(__file__).resolve().parents[2]


def scrape(catalog) -> dict[str, dict]:
    """family name -> {"type": ..., "samples": {(sample name, sorted labels without table): value}}."""
    result = invoke_cli(catalog, "metrics")
    assert result.exit_code == 0, result.output
    [event] = [json.loads(line) for line in result.output.splitlines()]
    assert set(event) - {"event", "ts", "message"} == documented_events()["metrics"]
    families = {}
    for family in text_string_to_metric_families(event["exposition"]):
        samples = {(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "table"))): s.value
                   for s in family.samples}
        families[family.name] = {"type": family.type, "samples": samples}
    return families


def value(families, family: str, sample: str | None = None, **labels) -> float | None:
    return families[family]["samples"].get((sample or family, tuple(sorted(labels.items()))))


def documented() -> dict[str, str]:
    """metric name -> type, from the table in docs/metrics.md."""
    text = (REPO / "docs/metrics.md").read_text()
    return dict(re.findall(r"^\| `(delta2sql_\w+)` \| (\w+) \|", text, re.MULTILINE))


def append(table, rows: int) -> None:
    write_deltalake(table, pa.table({"id": pa.array(range(rows), pa.int64())}), mode="append", schema_mode="merge")


def test_the_metrics_are_the_catalogs_read_without_the_log(tmp_path, catalog):
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["appends"](table)  # versions 0..3, no checkpoint
    commits = sorted((table / "_delta_log").glob("*.json"))
    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, RecordingReporter(), RunOptions(batch_size=2))
    assert outcome.status == "migrated", outcome.error
    append(table, 3)
    append(table, 4)  # the log is now at 5: two versions behind
    assert detect_drift(catalog, "t").exit_code == 3

    away = table.rename(tmp_path / "moved")  # metrics must not need the log
    families = scrape(catalog)
    away.rename(table)
    # the counter families lose their _total suffix in the parser (OpenMetrics naming)
    assert {f"{n}_total" if f["type"] == "counter" else n: f["type"] for n, f in families.items()} == documented()
    assert value(families, "delta2sql_table_latest_version") == 3
    assert value(families, "delta2sql_table_built_version") == 3
    assert value(families, "delta2sql_table_versions_behind") == 2
    assert value(families, "delta2sql_table_status", status="migrated") == 1
    assert sum(v for (_, labels), v in families["delta2sql_table_status"]["samples"].items()) == 1
    assert {dict(labels)["kind"]: v for (_, labels), v in families["delta2sql_table_drift"]["samples"].items()} == \
        {"behind": 1, "changed": 0, "disappeared": 0, "unreplayable": 0, "checkpoint_disagrees": 0}
    assert value(families, "delta2sql_batches_committed", "delta2sql_batches_committed_total") == 2  # 4 commits / 2
    assert value(families, "delta2sql_log_bytes_committed", "delta2sql_log_bytes_committed_total") == \
        sum(p.stat().st_size for p in commits)
    with catalog.connect() as con:
        (landed_rows,) = con.execute("select count(*) from delta_log_actions").fetchone()
    assert value(families, "delta2sql_actions_committed", "delta2sql_actions_committed_total") == landed_rows
    assert value(families, "delta2sql_run_duration_seconds", "delta2sql_run_duration_seconds_count") == 1
    assert 0 < value(families, "delta2sql_run_duration_seconds", "delta2sql_run_duration_seconds_sum") < 600
    assert value(families, "delta2sql_run_interrupted") == 0
    assert value(families, "delta2sql_table_last_sync_timestamp_seconds") is None  # no clean check yet

    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, RecordingReporter(), RunOptions(batch_size=2))
    assert (outcome.status, outcome.mode) == ("migrated", "catch_up"), outcome.error
    families = scrape(catalog)  # caught up since the check: nothing behind, with no new check
    assert value(families, "delta2sql_table_versions_behind") == 0
    assert value(families, "delta2sql_table_latest_version") == 5
    assert value(families, "delta2sql_batches_committed", "delta2sql_batches_committed_total") == 3
    assert value(families, "delta2sql_run_duration_seconds", "delta2sql_run_duration_seconds_count") == 2
    assert value(families, "delta2sql_last_run_duration_seconds", mode="catch_up", status="migrated") > 0


@pytest.fixture
def migrated(tmp_path):
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["appends"](table)
    catalog = make_catalog("duckdb", tmp_path, "metrics")
    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, RecordingReporter())
    assert outcome.status == "migrated", outcome.error
    return table, catalog


@pytest.mark.duckdb
def test_validation_sync_and_live_owners_show(migrated):
    _, catalog = migrated
    checks = validate_tables(catalog, RecordingReporter(), ["t"])
    assert detect_drift(catalog, "t").exit_code == 0
    families = scrape(catalog)
    counted = {result: sum(1 for c in checks if c.status == result) for result in ("pass", "fail", "error")}
    assert {r: value(families, "delta2sql_validation_checks", result=r) for r in counted} == counted
    assert value(families, "delta2sql_table_last_sync_timestamp_seconds") == \
        value(families, "delta2sql_table_drift_checked_timestamp_seconds")

    # a run landing now, owned by a live stand-in process; then by one that is gone
    owner = subprocess.Popen(["sleep", "60"])
    try:
        with catalog.connect() as con:
            con.execute("insert into migration_runs (run_id, table_name, target, mode, from_version, to_version, "
                        "batch_size, checkpoint_batch_rows, num_batches, status, started_at, owner_host, owner_pid) "
                        "values ('r', 't', 'duckdb', 'catch_up', 4, 9, 1, 1, 5, 'running', current_timestamp, ?, ?)",
                        [socket.gethostname(), owner.pid])
        families = scrape(catalog)
        assert value(families, "delta2sql_owner_tables_claimed", owner=f"{socket.gethostname()}:{owner.pid}") == 1
        assert value(families, "delta2sql_run_interrupted") == 0
    finally:
        owner.kill()
        owner.wait()
    families = scrape(catalog)
    assert value(families, "delta2sql_run_interrupted") == 1
    assert families["delta2sql_owner_tables_claimed"]["samples"] == {}
