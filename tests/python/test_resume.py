"""Resumable migrations: a run killed (SIGKILL) or failed (disk full, dropped connection) at any
point is continued by the same command, after its last committed batch, and ends with a catalog
identical to an uninterrupted run. The oracle is an uninterrupted migration of the same table
into a fresh catalog, compared relation by relation (delta2sql.fingerprint).
`scripts/kill_resume_stress.py` runs the same loop with many random kills."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import RecordingReporter, cli_options, make_catalog
from fixtures.deltalake_tables import DELTALAKE_FIXTURES

from delta2sql import runs
from delta2sql.catalog import Catalog
from delta2sql.fingerprint import table_fingerprints
from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.runs import RunOptions

DELTA2SQL = str(Path(sys.executable).parent / "delta2sql")


def cli_access(catalog) -> tuple[list[str], dict]:
    options, env = cli_options(catalog)
    return options, {**os.environ, **env}


def migrate_until(table: Path, catalog, stop_after: str, count: int) -> int:
    """Run `delta2sql migrate` and SIGKILL it once `count` events of kind `stop_after` were seen.

    Returns the exit code when it finished first, else -9."""
    options, env = cli_access(catalog)
    command = [DELTA2SQL, "migrate", str(table), "--name", "t", "--batch-size", "3", "--json", *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    seen = 0
    for line in process.stdout:
        if line.startswith("{") and json.loads(line)["event"] == stop_after:
            seen += 1
            if seen == count:
                process.send_signal(signal.SIGKILL)
                break
    process.stdout.close()
    return process.wait()


def rerun(table: Path, catalog) -> list[dict]:
    options, env = cli_access(catalog)
    command = [DELTA2SQL, "migrate", str(table), "--name", "t", "--batch-size", "3", "--json", *options]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def uninterrupted(table: Path, engine: str, tmp_path: Path) -> dict:
    clean = make_catalog(engine, tmp_path, "clean" + uuid.uuid4().hex[:6])
    [outcome] = migrate_tables([TableSpec(table, "t")], clean, RecordingReporter(), RunOptions(batch_size=3))
    assert outcome.status == "migrated", outcome.error
    with clean.connect() as con:
        return table_fingerprints(con, "t")


def committed(catalog) -> int:
    with catalog.connect() as con:
        return con.execute("select count(*) from migration_batches").fetchone()[0]


def fail_landing_call(monkeypatch, call: int, failure: Exception):
    """The `call`-th batch landed from now on raises `failure`; returns the real `land_batch`."""
    calls = {"n": 0}
    real = runs.land_batch

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise failure
        return real(*args, **kwargs)

    monkeypatch.setattr(runs, "land_batch", failing)
    return real


@pytest.fixture
def table(tmp_path) -> Path:
    path = tmp_path / "t"
    DELTALAKE_FIXTURES["many_versions_partitioned_removes"](path)
    return path


def test_killed_while_landing_and_while_building_resumes_to_the_same_catalog(table, catalog, tmp_path):
    assert migrate_until(table, catalog, "batch_committed", 2) == -signal.SIGKILL
    with catalog.connect() as con:
        assert con.execute("select status from delta_log_tables").fetchall() == [("landing",)]
        assert con.execute("select status from migration_runs").fetchall() == [("running",)]
    at_kill = committed(catalog)
    assert at_kill >= 2

    # killed again, now inside dbt: the table is published ('landed') but not built
    assert migrate_until(table, catalog, "dbt_node", 1) == -signal.SIGKILL
    with catalog.connect() as con:
        assert con.execute("select status from delta_log_tables").fetchall() == [("landed",)]
        (num_batches,) = con.execute("select num_batches from migration_runs").fetchone()
        numbers = [n for (n,) in con.execute("select batch_number from migration_batches order by 1").fetchall()]
    assert numbers == list(range(1, num_batches + 1))  # each batch committed exactly once

    events = rerun(table, catalog)
    assert [e["status"] for e in events if e["event"] == "migration_finished"] == ["migrated"]
    with catalog.connect() as con:
        assert table_fingerprints(con, "t") == uninterrupted(table, catalog.target, tmp_path)


def test_kills_at_random_moments_end_in_the_same_catalog(table, catalog, tmp_path):
    """Up to three SIGKILLs at random delays (landing, publishing or inside dbt), then a finishing run."""
    rng = random.Random(7)
    options, env = cli_access(catalog)
    command = [DELTA2SQL, "migrate", str(table), "--name", "t", "--batch-size", "3", "--json", *options]
    kills = 0
    while kills < 3:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            process.wait(timeout=rng.uniform(0.3, 3.0))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
            continue
        break  # it finished before its kill
    assert kills >= 1
    events = rerun(table, catalog)
    assert [e["status"] for e in events if e["event"] == "migration_finished"] == ["migrated"]
    with catalog.connect() as con:
        assert table_fingerprints(con, "t") == uninterrupted(table, catalog.target, tmp_path)


def test_resumed_run_continues_after_the_committed_batches(table, catalog):
    migrate_until(table, catalog, "batch_committed", 3)
    at_kill = committed(catalog)
    events = rerun(table, catalog)
    [resumed] = [e for e in events if e["event"] == "run_resumed"]
    assert resumed["committed"] == at_kill  # nothing committed is read again
    landed_now = [e["batch"] for e in events if e["event"] == "batch_committed"]
    assert landed_now == list(range(at_kill + 1, resumed["of"] + 1))


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), ConnectionError("server closed the connection")])
def test_failed_batch_resumes_and_redoes_only_that_batch(table, catalog, tmp_path, monkeypatch, failure):
    real = fail_landing_call(monkeypatch, 3, failure)
    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, RecordingReporter(), RunOptions(batch_size=3))
    assert outcome.status == "failed" and repr(failure) in outcome.error
    with catalog.connect() as con:
        assert con.execute("select status, error from migration_runs").fetchall() == [("failed", repr(failure))]
        assert committed(catalog) == 2

    monkeypatch.setattr(runs, "land_batch", real)
    reporter = RecordingReporter()
    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, reporter, RunOptions(batch_size=3))
    assert outcome.status == "migrated", outcome.error
    assert (outcome.mode, outcome.batches_skipped) == ("resume", 2)
    with catalog.connect() as con:
        assert table_fingerprints(con, "t") == uninterrupted(table, catalog.target, tmp_path)


def test_a_run_started_before_the_commit_byte_bound_resumes_with_its_own_cut(table, catalog, tmp_path,
                                                                           monkeypatch):
    """A run records the byte bound that cut its commit batches; one recorded without it (started
    by a delta2sql that had none: NULL) is cut again by count only, so it resumes instead of being
    abandoned as a log that 'no longer yields the batches it committed'."""
    real = fail_landing_call(monkeypatch, 3, OSError(28, "No space left on device"))
    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, RecordingReporter(), RunOptions(batch_size=3))
    assert outcome.status == "failed"
    with catalog.connect() as con:
        assert con.execute("select commit_batch_bytes from migration_runs").fetchall() == [(runs.COMMIT_BATCH_BYTES,)]
        con.execute("update migration_runs set commit_batch_bytes = null")

    monkeypatch.setattr(runs, "land_batch", real)
    cut_with = []
    planned = runs.plan_batches

    def recording(*args, **kwargs):
        cut_with.append(args[4] if len(args) > 4 else kwargs.get("commit_batch_bytes", "default"))
        return planned(*args, **kwargs)

    monkeypatch.setattr(runs, "plan_batches", recording)
    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, RecordingReporter(), RunOptions(batch_size=3))
    assert outcome.status == "migrated", outcome.error
    assert (outcome.mode, outcome.batches_skipped) == ("resume", 2)
    assert cut_with == [None]
    with catalog.connect() as con:
        assert table_fingerprints(con, "t") == uninterrupted(table, catalog.target, tmp_path)


def test_checkpoint_split_into_row_group_batches_lands_the_same_rows(tmp_path, catalog):
    """A checkpoint is sliced by whole row groups; the slices together land what one batch does."""
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["checkpoints"](table)
    [checkpoint] = sorted((table / "_delta_log").glob("*.checkpoint.parquet"))[-1:]
    rows = pq.read_table(checkpoint)
    pq.write_table(rows, checkpoint, row_group_size=3)  # same rows, many row groups
    assert pq.read_metadata(checkpoint).num_row_groups > 2
    hint = table / "_delta_log" / "_last_checkpoint"  # the rewritten file's size, or migrate rightly refuses it
    hint.write_text(json.dumps({**json.loads(hint.read_text()), "sizeInBytes": checkpoint.stat().st_size}))

    sliced = catalog
    [outcome] = migrate_tables([TableSpec(table, "t")], sliced, RecordingReporter(), RunOptions(checkpoint_batch_rows=3))
    assert outcome.status == "migrated", outcome.error
    whole = make_catalog(catalog.target, tmp_path, "whole" + uuid.uuid4().hex[:6])
    [outcome] = migrate_tables([TableSpec(table, "t")], whole, RecordingReporter())
    with sliced.connect() as a, whole.connect() as b:
        slices = a.execute("select count(*) from migration_batches where log_files like '%checkpoint.parquet rows%'").fetchone()[0]
        assert slices == pq.read_metadata(checkpoint).num_row_groups
        assert table_fingerprints(a, "t") == table_fingerprints(b, "t")


def test_row_group_larger_than_a_slice_is_cut(tmp_path, catalog):
    """delta-rs writes a checkpoint as one big row group (1M rows by default): a slice smaller
    than the row group reads only its rows, and the slices together land what one batch does."""
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["checkpoints"](table)
    [checkpoint] = sorted((table / "_delta_log").glob("*.checkpoint.parquet"))[-1:]
    metadata = pq.read_metadata(checkpoint)
    assert metadata.num_row_groups == 1 and metadata.num_rows > 8  # as delta-rs wrote it
    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, RecordingReporter(), RunOptions(checkpoint_batch_rows=4))
    assert outcome.status == "migrated", outcome.error
    whole = make_catalog(catalog.target, tmp_path, "whole" + uuid.uuid4().hex[:6])
    [outcome] = migrate_tables([TableSpec(table, "t")], whole, RecordingReporter())
    with catalog.connect() as a, whole.connect() as b:
        slices = [r for (r,) in a.execute("select log_files from migration_batches "
                                          "where log_files like '%checkpoint.parquet rows%' order by batch_number").fetchall()]
        assert len(slices) == -(-metadata.num_rows // 4) and slices[0].endswith("rows 0..3")
        assert table_fingerprints(a, "t") == table_fingerprints(b, "t")


def test_a_run_failed_inside_a_sliced_checkpoint_resumes_to_the_same_catalog(tmp_path, catalog, monkeypatch):
    """The batch ending a sliced checkpoint describes the file with every slice's actions: those
    committed by the failed run as well as those the resuming run lands (into PostgreSQL and
    SQLite a slice is parsed before the one ahead of it commits). The oracle is the checkpoint
    landed whole, in one batch."""
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["checkpoints"](table)
    [checkpoint] = sorted((table / "_delta_log").glob("*.checkpoint.parquet"))[-1:]
    assert pq.read_metadata(checkpoint).num_rows > 6  # at least four slices of 2 rows
    real = fail_landing_call(monkeypatch, 3, OSError(5, "Input/output error"))
    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, RecordingReporter(), RunOptions(checkpoint_batch_rows=2))
    assert outcome.status == "failed"
    assert committed(catalog) == 2
    monkeypatch.setattr(runs, "land_batch", real)
    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, RecordingReporter(), RunOptions(checkpoint_batch_rows=2))
    assert (outcome.status, outcome.mode, outcome.batches_skipped) == ("migrated", "resume", 2), outcome.error

    whole = make_catalog(catalog.target, tmp_path, "whole" + uuid.uuid4().hex[:6])
    [outcome] = migrate_tables([TableSpec(table, "t")], whole, RecordingReporter())
    assert outcome.status == "migrated", outcome.error
    with catalog.connect() as a, whole.connect() as b:
        described = "select num_actions from delta_log_files where log_file = ?"
        assert a.execute(described, [checkpoint.name]).fetchone() == b.execute(described, [checkpoint.name]).fetchone()
        assert table_fingerprints(a, "t") == table_fingerprints(b, "t")


def test_run_whose_checkpoint_vanished_is_abandoned_and_started_over(tmp_path, monkeypatch):
    """Log cleanup removed the checkpoint an interrupted run started from: it cannot be continued,
    so it is abandoned and a new run replays what the log holds now."""
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["many_versions_partitioned_removes"](table)
    catalog = make_catalog("duckdb", tmp_path, "vanished")
    real = fail_landing_call(monkeypatch, 2, OSError(28, "No space left on device"))
    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, RecordingReporter(), RunOptions(batch_size=3))
    assert outcome.status == "failed"
    monkeypatch.setattr(runs, "land_batch", real)
    for checkpoint in (table / "_delta_log").glob("*.checkpoint.parquet"):
        checkpoint.unlink()
    (table / "_delta_log" / "_last_checkpoint").unlink(missing_ok=True)

    reporter = RecordingReporter()
    [outcome] = migrate_tables([TableSpec(table, "t")], catalog, reporter, RunOptions(batch_size=3))
    assert (outcome.status, outcome.mode, outcome.replay_start_version) == ("migrated", "full", 0), outcome.error
    assert any("abandoned" in m and "gone" in m for m in reporter.messages("warning"))
    with catalog.connect() as con:
        assert sorted(s for (s,) in con.execute("select status from migration_runs").fetchall()) == ["abandoned", "migrated"]
        got = table_fingerprints(con, "t")
    assert got == uninterrupted(table, "duckdb", tmp_path)


def status_of(catalog) -> dict:
    options, env = cli_access(catalog)
    result = subprocess.run([DELTA2SQL, "status", "--json", *options], capture_output=True, text=True, env=env,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    [row] = [json.loads(line) for line in result.stdout.splitlines() if '"table_status"' in line]
    return row


def test_a_killed_run_shows_as_interrupted_naming_its_owner(table, catalog):
    options, env = cli_access(catalog)
    command = [DELTA2SQL, "migrate", str(table), "--name", "t", "--batch-size", "3", "--json", *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    for line in process.stdout:
        if line.startswith("{") and json.loads(line)["event"] == "batch_committed":
            process.send_signal(signal.SIGKILL)
            break
    process.stdout.close()
    process.wait()
    row = status_of(catalog)
    assert row["run_status"] == "running" and row["run_interrupted"] is True
    assert row["run_owner"] == f"{socket.gethostname()}:{process.pid}" and row["run_heartbeat_at"]
    assert row["run_lease"].startswith("interrupted: no heartbeat since ") and f":{process.pid} is gone" in row["run_lease"]


def test_a_live_run_is_refused_naming_its_owner_or_waited_for(table, catalog, tmp_path):
    """A run whose owner is alive on this host (here a stand-in process) is not taken over: migrate
    stops naming it, `status` shows it running, and `migrate --wait` lands once it is gone."""
    assert migrate_until(table, catalog, "batch_committed", 2) == -signal.SIGKILL
    owner = subprocess.Popen(["sleep", "60"])
    try:
        with catalog.connect() as con:
            con.execute("update migration_runs set owner_pid = ?", [owner.pid])
        options, env = cli_access(catalog)
        command = [DELTA2SQL, "migrate", str(table), "--name", "t", "--batch-size", "3", *options]
        refused = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        assert refused.returncode == 1
        said = refused.stdout + refused.stderr
        assert f"is being landed by {socket.gethostname()}:{owner.pid}" in said and "migrate --wait" in said
        row = status_of(catalog)
        assert row["run_interrupted"] is False and row["run_lease"] == f"running ({socket.gethostname()}:{owner.pid})"
        batches_before = committed(catalog)

        waiting = subprocess.Popen([*command, "--wait", "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   env=env, text=True)
        first = json.loads(next(line for line in waiting.stdout if line.startswith("{")))
        assert first["event"] == "waiting" and first["owner"] == f"{socket.gethostname()}:{owner.pid}"
        if catalog.target != "duckdb":  # (a DuckDB file is held by the one process that opened it: the waiter)
            assert committed(catalog) == batches_before  # nothing landed while the owner lives
    finally:
        owner.kill()
        owner.wait()
    events = [json.loads(line) for line in waiting.stdout if line.startswith("{")]
    assert waiting.wait() == 0
    assert [e["mode"] for e in events if e["event"] == "migration_finished"] == ["resume"]
    with catalog.connect() as con:
        assert table_fingerprints(con, "t") == uninterrupted(table, catalog.target, tmp_path)


def test_a_held_duckdb_catalog_is_named_and_waited_for(table, tmp_path):
    """DuckDB lets one process open a catalog file: a migrate meeting another's says which process
    holds it and stops, or with --wait lands once it is let go."""
    catalog = make_catalog("duckdb", tmp_path, "held")
    options, env = cli_access(catalog)
    command = [DELTA2SQL, "migrate", str(table), "--name", "t", *options]
    subprocess.run([*command, "--version", "5"], capture_output=True, env=env, check=True)
    hold = "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('open', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(catalog.path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        refused = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        assert refused.returncode == 1 and f"(PID {holder.pid})" in refused.stdout + refused.stderr
        waiting = subprocess.Popen([*command, "--wait", "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   env=env, text=True)
        first = json.loads(next(line for line in waiting.stdout if line.startswith("{")))
        assert first["event"] == "waiting" and first["owner"] == f"{socket.gethostname()}:{holder.pid}"
    finally:
        holder.kill()
        holder.wait()
    events = [json.loads(line) for line in waiting.stdout if line.startswith("{")]
    assert waiting.wait() == 0
    assert [(e["mode"], e["status"]) for e in events if e["event"] == "migration_finished"] == [("catch_up", "migrated")]


def test_duckdbs_landing_cap_gives_way_to_what_the_process_already_holds():
    """DuckDB's cap while landing is its 62.5% share of the budget, or what the budget leaves
    beside the process's memory and 200 MiB of headroom, down to 256 MiB (never above the share)."""
    mib = 1 << 20
    default = Catalog()  # a 1 GiB budget: a 640 MiB share
    assert default.landing_memory_limit(None) == (640 * mib, False)
    assert default.landing_memory_limit(184 * mib) == (640 * mib, False)  # 1024 - 184 - 200 = 640
    assert default.landing_memory_limit(400 * mib) == (424 * mib, True)  # 1024 - 400 - 200
    assert default.landing_memory_limit(700 * mib) == (256 * mib, True)
    small = Catalog(memory_limit_bytes=100 * mib)  # a 62.5 MiB share
    assert small.landing_memory_limit(300 * mib) == (int(62.5 * mib), True)


def test_a_run_past_its_memory_limit_stops_resumable_and_ends_with_enough(table, catalog, tmp_path):
    """--memory-limit below what the process needs: the run stops after its first batch, exit 1,
    naming the limit; each batch recorded its peak memory; a run with enough memory resumes it
    to the catalog of an uninterrupted run."""
    options, env = cli_access(catalog)
    command = [DELTA2SQL, "migrate", str(table), "--name", "t", "--batch-size", "3", "--json", *options]
    stopped = subprocess.run([*command, "--memory-limit", "100MB"], capture_output=True, text=True, env=env,
                             check=False)
    assert stopped.returncode == 1
    [finished] = [json.loads(line) for line in stopped.stdout.splitlines() if '"migration_finished"' in line]
    assert finished["status"] == "failed" and "passed --memory-limit (100 MiB) after batch 1 of" in finished["error"]
    with catalog.connect() as con:
        assert con.execute("select status from migration_runs").fetchall() == [("failed",)]
        [(peak,)] = con.execute("select peak_rss_bytes from migration_batches").fetchall()
    assert peak > 100 << 20
    events = rerun(table, catalog)
    assert [(e["mode"], e["status"]) for e in events if e["event"] == "migration_finished"] == [("resume", "migrated")]
    assert all(e["peak_rss_bytes"] > 0 for e in events if e["event"] == "batch_committed")
    with catalog.connect() as con:
        assert table_fingerprints(con, "t") == uninterrupted(table, catalog.target, tmp_path)
