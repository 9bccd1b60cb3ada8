"""`delta2sql sync`: one pass catches up every table, validates what changed and exits with the
drift codes; `--every` keeps doing it, serving metrics, with a failing table backing off while
the others go on.

Oracles: the commits the test appends (the catalog must show them), the landed commit it
rewrites (drift must name it, exit 4), and the table it never created (it must fail alone)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request

import duckdb
import pyarrow as pa
import pytest
from conftest import REPO, cli_options, documented_events, free_port, make_catalog
from deltalake import write_deltalake
from fixtures.deltalake_tables import DELTALAKE_FIXTURES
from prometheus_client.parser import text_string_to_metric_families

DELTA2SQL = str(REPO / ".venv/bin/delta2sql")


def append(table) -> None:
    write_deltalake(table, pa.table({"id": pa.array([1, 2], pa.int64())}), mode="append", schema_mode="merge")


def manifest(tmp_path, *paths) -> str:
    path = tmp_path / "tables.yml"
    path.write_text("tables:\n" + "".join(f"  - path: {p}\n" for p in paths))
    return str(path)


def sync(catalog, *args) -> tuple[int, list[dict]]:
    options, env = cli_options(catalog)
    run = subprocess.run([DELTA2SQL, "sync", *args, *options, "--json"], capture_output=True, text=True,
                         env={**os.environ, **env}, check=False)
    return run.returncode, [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]


def tables(events, kind="sync_table") -> dict[str, dict]:
    return {e["table"]: e for e in events if e["event"] == kind}


@pytest.mark.postgres
def test_a_pass_catches_up_validates_what_changed_and_exits_with_the_drift_code(tmp_path):
    catalog = make_catalog("postgres", tmp_path, "sync")
    a, b = tmp_path / "a", tmp_path / "b"
    DELTALAKE_FIXTURES["appends"](a)  # versions 0..3
    DELTALAKE_FIXTURES["appends"](b)
    tables_yml = manifest(tmp_path, a, b)

    code, events = sync(catalog, "--manifest", tables_yml)
    assert code == 0, events
    first = tables(events)
    assert {n: (e["status"], e["to_version"], e["validated"]) for n, e in first.items()} == \
        {"a": ("in_sync", 3, True), "b": ("in_sync", 3, True)}

    append(a)  # a moves to 4; b's newest landed commit is rewritten (one more byte)
    commit = b / "_delta_log" / f"{3:020d}.json"
    commit.write_bytes(commit.read_bytes() + b"\n")
    code, events = sync(catalog, "--manifest", tables_yml)
    second = tables(events)
    assert code == 4, events
    assert (second["a"]["status"], second["a"]["from_version"], second["a"]["to_version"], second["a"]["validated"]) \
        == ("in_sync", 3, 4, True)
    assert second["b"]["status"] == "failed" and second["b"]["drift_exit_code"] == 4
    assert {f["kind"]: f["detail"] for f in second["b"]["findings"]} == {"changed": commit.name}
    [finished] = [e for e in events if e["event"] == "sync_finished"]
    assert (finished["in_sync"], finished["failed"], finished["exit_code"]) == (1, 1, 4)

    code, events = sync(catalog, "--manifest", tables_yml)  # nothing moved in a: it is not validated again
    assert tables(events)["a"]["validated"] is False and code == 4
    documented = documented_events()
    for event in (e for e in events if e["event"].startswith("sync_")):
        assert set(event) - {"event", "ts", "message"} <= documented[event["event"]], event


def scrape(port: int) -> dict[tuple[str, str], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, s.labels.get("table", "")): s.value for f in text_string_to_metric_families(text)
            for s in f.samples if not s.labels.keys() - {"table"}}


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if found := condition():
                return found
        except OSError:  # the metrics server is not up yet
            pass
        time.sleep(0.5)
    raise AssertionError(f"waited {seconds} s for {what}")


@pytest.mark.duckdb
def test_every_keeps_syncing_serves_metrics_and_backs_a_failing_table_off(tmp_path):
    catalog = make_catalog("duckdb", tmp_path, "resident")
    a = tmp_path / "a"
    DELTALAKE_FIXTURES["appends"](a)
    port = free_port()
    options, env = cli_options(catalog)
    log = (tmp_path / "sync.jsonl").open("w")  # a file, not a pipe: nobody reads it while sync writes
    process = subprocess.Popen(
        [DELTA2SQL, "sync", "--manifest", manifest(tmp_path, a, tmp_path / "never-created"), "--every", "1s",
         "--metrics-port", str(port), *options, "--json"],
        stdout=log, stderr=subprocess.DEVNULL, text=True, env={**os.environ, **env})
    try:
        wait_for(lambda: scrape(port).get(("delta2sql_table_latest_version", "a")) == 3, 120, "a at version 3")
        append(a)
        # caught up to 4, and the newest comparison with the log found nothing (a pass that compared
        # while the commit was being appended found it behind: the next one is clean)
        metrics = wait_for(lambda: (m := scrape(port)).get(("delta2sql_table_latest_version", "a")) == 4 and m.get(
            ("delta2sql_table_last_sync_timestamp_seconds", "a")) == m[("delta2sql_table_drift_checked_timestamp_seconds",
                                                                         "a")] and m, 120, "a in sync at 4")
        assert metrics[("delta2sql_table_versions_behind", "a")] == 0
        # a third pass at least, for the backing-off table to be skipped more than once
        wait_for(lambda: re.search(r'^\{"event": "sync_finished", [^\n]*"pass_number": 3,',
                                   (tmp_path / "sync.jsonl").read_text(), re.MULTILINE), 120, "a third pass")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        log.close()
    assert process.returncode == 0
    events = [json.loads(line) for line in (tmp_path / "sync.jsonl").read_text().splitlines() if line.startswith("{")]
    passes = [tables([e for e in events if e.get("pass_number") == n]) for n in
              sorted({e["pass_number"] for e in events if e["event"] == "sync_finished"})]
    assert len(passes) >= 3
    missing = [p["never-created"] for p in passes]
    assert missing[0]["status"] == "failed" and "never-created" in missing[0]["error"]
    assert 55 < missing[0]["retry_in_seconds"] <= 60  # the first backoff: a minute
    assert all(m["status"] == "backing_off" for m in missing[1:])  # not retried meanwhile ...
    # ... while a went on at every pass (behind, at most, in the pass that compared during the append)
    assert all(p["a"]["status"] == "in_sync" or {f["kind"] for f in p["a"]["findings"]} == {"behind"} for p in passes)
    assert any(p["a"]["to_version"] == 4 and p["a"]["validated"] for p in passes)
    # each pass says when the catalog showed its versions, before validating: a's newest among them
    caught_up = [e for e in events if e["event"] == "sync_caught_up"]
    assert [e["pass_number"] for e in caught_up] == list(range(1, len(passes) + 1))
    # (a catch-up that read the log while the commit was being appended may fail and back off)
    assert all(e["tables"] == len(e["versions"]) <= 1 and 0 < e["seconds"] for e in caught_up)
    assert any(e["versions"] == {"a": 4} for e in caught_up)
    first_validation = next(i for i, e in enumerate(events) if e["event"] == "references_loading")
    assert events.index(caught_up[0]) < first_validation


@pytest.mark.duckdb
def test_between_passes_the_duckdb_catalog_is_free_to_read(tmp_path):
    """A DuckDB file is locked by the process that has it open. Between passes a resident sync
    holds nothing, so the catalog can be queried and `status` run on it; until 2026-12-07 the
    sync's dbt kept it open, and both failed with DuckDB's "Conflicting lock"."""
    catalog = make_catalog("duckdb", tmp_path, "free")
    a = tmp_path / "a"
    DELTALAKE_FIXTURES["appends"](a)
    options, env = cli_options(catalog)
    events_path = tmp_path / "sync.jsonl"
    with events_path.open("w") as log:
        process = subprocess.Popen([DELTA2SQL, "sync", "--manifest", manifest(tmp_path, a), "--every", "1h", *options,
                                    "--json"], stdout=log, stderr=subprocess.DEVNULL, env={**os.environ, **env})
    try:
        wait_for(lambda: '"event": "sync_finished"' in events_path.read_text(), 120, "the first pass")
        status = subprocess.run([DELTA2SQL, "status", *options, "--json"], capture_output=True, text=True,
                                env={**os.environ, **env}, check=False)
        with duckdb.connect(str(catalog.path), read_only=True) as con:
            versions = con.execute("select latest_version from delta_tables where table_name = 'a'").fetchall()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    assert status.returncode == 0, status.stderr
    assert versions == [(3,)]
    assert process.returncode == 0


@pytest.mark.duckdb
def test_a_pass_that_finds_the_duckdb_catalog_held_leaves_it_to_the_next(tmp_path):
    """Someone reading the catalog when a pass starts holds the file (DuckDB lets one process
    open it at a time). The resident sync says so and goes on at the next pass; a one-shot sync
    fails as before. Once the catalog was free between passes, this ended the resident sync."""
    catalog = make_catalog("duckdb", tmp_path, "held")
    a = tmp_path / "a"
    DELTALAKE_FIXTURES["appends"](a)
    assert sync(catalog, "--manifest", manifest(tmp_path, a))[0] == 0
    options, env = cli_options(catalog)
    events_path = tmp_path / "sync.jsonl"
    reader = duckdb.connect(str(catalog.path), read_only=True)
    try:
        assert sync(catalog, "--manifest", manifest(tmp_path, a))[0] == 1
        with events_path.open("w") as log:
            process = subprocess.Popen([DELTA2SQL, "sync", "--manifest", manifest(tmp_path, a), "--every", "1s",
                                        *options, "--json"], stdout=log, stderr=subprocess.DEVNULL,
                                       env={**os.environ, **env})
        try:
            wait_for(lambda: '"event": "warning"' in events_path.read_text(), 120, "a pass finding the catalog held")
            reader.close()
            wait_for(lambda: '"event": "sync_finished"' in events_path.read_text(), 120, "a pass once it is free")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)
    finally:
        reader.close()
    assert process.returncode == 0
    events = [json.loads(line) for line in events_path.read_text().splitlines() if line.startswith("{")]
    held = next(e for e in events if e["event"] == "warning")
    assert held["message"].startswith("sync pass 1 stopped") and "Conflicting lock" in held["message"]
    assert tables([e for e in events if e["event"] == "sync_table"])["a"]["status"] == "in_sync"


@pytest.mark.duckdb
def test_sigterm_inside_a_pass_lets_the_pass_finish_then_exits(tmp_path):
    """A SIGTERM that lands while dbt runs must stop the loop: raised inside dbt, an exit was
    taken for dbt's own failure, and the next pass began."""
    catalog = make_catalog("duckdb", tmp_path, "sigterm")
    a = tmp_path / "a"
    DELTALAKE_FIXTURES["appends"](a)
    options, env = cli_options(catalog)
    events_path = tmp_path / "sync.jsonl"

    def events() -> list[dict]:
        return [json.loads(line) for line in events_path.read_text().splitlines() if line.startswith("{")]

    with events_path.open("w") as log:
        process = subprocess.Popen([DELTA2SQL, "sync", "--manifest", manifest(tmp_path, a), "--every", "1s", *options,
                                    "--json"], stdout=log, stderr=subprocess.DEVNULL, env={**os.environ, **env})
    try:
        wait_for(lambda: any(e["event"] == "dbt_node" for e in events()), 120, "the first pass inside dbt")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.kill()
    seen = events()
    assert seen[-1]["event"] == "sync_finished" and seen[-1]["pass_number"] == 1
    assert tables(seen)["a"]["status"] == "in_sync"
