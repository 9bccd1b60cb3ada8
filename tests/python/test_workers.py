"""`delta2sql enqueue` and `delta2sql worker` on a PostgreSQL catalog: worker processes claim the
queued tables, migrate and validate them; SIGKILLed workers' tables are taken over and resumed.

Oracle: one process migrating the same tables into another schema (`migrate_tables`), compared
relation by relation with the workers' catalog; the queue's own record of each job; the batch
progress rows, which must hold each batch once and every version of a table once.

The size fits CI (`DELTA2SQL_WORKER_TABLES`, default 8 tables and 2 kills; 30 tables and 3 kills
for the full run of the issue:
`DELTA2SQL_WORKER_TABLES=30 scripts/test.sh tests/python/test_workers.py`)."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import time

import psycopg
import pytest
import yaml
from conftest import REPO, RecordingReporter, make_catalog, postgres_settings, require_postgres
from fixtures.deltalake_tables import DELTALAKE_FIXTURES

from delta2sql.fingerprint import table_fingerprints
from delta2sql.migrate import TableSpec, migrate_tables

DELTA2SQL = str(REPO / ".venv/bin/delta2sql")
SIZE = int(os.environ.get("DELTA2SQL_WORKER_TABLES", "8"))
WORKERS = 4
KILLS = max(2, SIZE // 10)
# corpus tables of other writers (Spark, delta-rs) that delta-rs reads and the protocol allows us to
# migrate and validate, beside the fixture tables
CORPUS_TABLES = ("simple_table", "checkpoints", "delta-0.2.0", "cdf-table", "simple_table_with_checkpoint",
                 "with_checkpoint_no_last_checkpoint", "delta-0.8.0", "latest_not_checkpointed",
                 "delta-1.2.1-only-struct-stats", "table_failed_last_checkpoint_update", "COVID-19_NYT",
                 "delta-0.8.0-partitioned", "cdf-table-non-partitioned", "delta-stats-optional",
                 "python-0.25.5-checkpoint", "delta-0.8.0-date", "delta-0.8.0-null-partition",
                 "delta-0.8.0-numeric-partition", "delta-2.2.0-partitioned-types")


@pytest.fixture
def tables(tmp_path, corpus_root) -> dict[str, str]:
    fixtures = {}
    for name, build in DELTALAKE_FIXTURES.items():
        build(tmp_path / "fixtures" / name)
        fixtures[name] = str(tmp_path / "fixtures" / name)
    corpus = {f"corpus_{name}": str(corpus_root / name) for name in CORPUS_TABLES}
    mine = list(fixtures.items())[: SIZE - SIZE // 2]  # half fixtures, the rest from the corpus
    chosen = dict(mine + list(corpus.items())[: SIZE - len(mine)])
    assert len(chosen) == SIZE
    return chosen


def started_worker(env: dict, log) -> subprocess.Popen:
    return subprocess.Popen([DELTA2SQL, "worker", "--target", "postgres", "--batch-size", "1", "--json"], stdout=log,
                            stderr=subprocess.STDOUT, env=env)


def jobs(schema: str) -> dict[str, str]:
    """table -> the queue status of its newest job."""
    s = postgres_settings()
    with psycopg.connect(host=s["host"], port=s["port"], user=s["user"], dbname=s["dbname"], autocommit=True) as con:
        rows = con.execute(f'select distinct on (args ->> \'name\') args ->> \'name\', status::text '
                           f'from "{schema}".procrastinate_jobs where task_name = \'migrate_table\' '
                           f'order by args ->> \'name\', id desc').fetchall()
    return dict(rows)


def landing_now(schema: str) -> dict[int, tuple[str, int]]:
    """pid -> (run, batches committed) of workers landing a table now, past its first batch."""
    s = postgres_settings()
    with psycopg.connect(host=s["host"], port=s["port"], user=s["user"], dbname=s["dbname"], autocommit=True) as con:
        rows = con.execute(f'select runs.owner_pid, runs.run_id, count(*) from "{schema}".migration_runs as runs '
                           f'inner join "{schema}".migration_batches as batches using (run_id) '
                           "where runs.status = 'running' and runs.num_batches > 1 "
                           "group by runs.owner_pid, runs.run_id, runs.num_batches "
                           "having count(*) < runs.num_batches").fetchall()
    return {pid: (run_id, committed) for pid, run_id, committed in rows}


@pytest.mark.postgres
def test_workers_killed_at_random_leave_every_table_migrated_once(tables, tmp_path):
    require_postgres()
    catalog = make_catalog("postgres", tmp_path, "workers")
    schema = catalog.extra_env["DELTA2SQL_PG_SCHEMA"]
    env = {**os.environ, **catalog.extra_env}
    manifest = tmp_path / "tables.yml"
    manifest.write_text(yaml.safe_dump({"tables": [{"path": p, "name": n} for n, p in tables.items()]}))
    queued = subprocess.run([DELTA2SQL, "enqueue", "--manifest", str(manifest), "--target", "postgres", "--json"],
                            capture_output=True, text=True, env=env, check=False)
    assert queued.returncode == 0, queued.stdout + queued.stderr
    assert sorted(json.loads(line)["table"] for line in queued.stdout.splitlines()) == sorted(tables)

    logs = tmp_path / "workers"
    logs.mkdir()
    workers = [started_worker(env, (logs / f"{i}.jsonl").open("w")) for i in range(WORKERS)]
    killed, rng, deadline = [], random.Random(14), time.monotonic() + 1500
    try:
        while time.monotonic() < deadline:
            states = jobs(schema)
            if len(states) == len(tables) and set(states.values()) == {"succeeded"}:
                break
            assert "failed" not in states.values(), states
            # a worker part-way through landing a table, at a random moment
            landing = [(pid, run) for pid, run in landing_now(schema).items()
                       if any(w.pid == pid and w.poll() is None for w in workers)]
            if len(killed) < KILLS and landing and rng.random() < 0.5:
                pid, (run_id, committed) = rng.choice(landing)
                victim = next(w for w in workers if w.pid == pid)
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                killed.append((pid, run_id, committed))
                workers.append(started_worker(env, (logs / f"{len(workers)}.jsonl").open("w")))
            time.sleep(rng.uniform(0.2, 0.6))
        else:
            pytest.fail(f"the queue did not finish: {jobs(schema)}")
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(timeout=120)
    assert len(killed) == KILLS

    with catalog.connect() as con:
        statuses = dict(con.execute("select table_name, status from delta_log_tables").fetchall())
        runs = con.execute("select table_name, run_id, status, num_batches from migration_runs").fetchall()
        batches = con.execute("select run_id, batch_number, first_version, last_version from migration_batches "
                              "order by run_id, batch_number").fetchall()
        done = con.execute("select table_name, count(*) from worker_jobs where status = 'done' "
                           "group by table_name").fetchall()
        taken_over = con.execute("select count(distinct table_name) from worker_jobs where status = 'claimed'") \
            .fetchone()[0]
    assert statuses == dict.fromkeys(tables, "migrated")
    assert dict(done) == dict.fromkeys(tables, 1)  # each table migrated and validated once
    assert taken_over >= 1  # a killed worker's claim stays in the record, and another finished its table
    with catalog.connect() as con:
        for pid, run_id, committed in killed:  # each killed run was taken over and finished, not started over
            owner, status, batches_now = con.execute(
                "select owner_pid, status, (select count(*) from migration_batches where run_id = ?) "
                "from migration_runs where run_id = ?", [run_id, run_id]).fetchone()
            assert owner != pid and status == "migrated" and batches_now > committed
    resumed = [json.loads(line) for path in logs.iterdir() for line in path.read_text().splitlines()
               if '"run_resumed"' in line]
    assert {e["run_id"] for e in resumed} >= {run_id for _, run_id, _ in killed}
    assert sorted(t for t, *_ in runs) == sorted(tables)  # one run per table: resumed, never started over
    for _, run_id, status, num_batches in runs:
        mine = [(first, last) for run, _, first, last in batches if run == run_id]
        assert status == "migrated" and len(mine) == num_batches
        for (_, last), (first, next_last) in itertools.pairwise(mine):  # every version once, in order
            assert first > last or first == next_last == last  # (a checkpoint's slices share its version)

    single = make_catalog("postgres", tmp_path, "single")
    outcomes = migrate_tables([TableSpec(p, n) for n, p in tables.items()], single, RecordingReporter())
    assert [o.name for o in outcomes if o.status != "migrated"] == []
    with catalog.connect() as con, single.connect() as other:
        for name in tables:
            assert table_fingerprints(con, name) == table_fingerprints(other, name), name


def run_cli(env: dict, *args: str) -> list[dict]:
    done = subprocess.run([DELTA2SQL, *args, "--target", "postgres", "--json"], capture_output=True, text=True,
                          env=env, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def queue(env: dict) -> dict[str, dict]:
    return {e["table_name"]: e for e in run_cli(env, "status") if e["event"] == "queue_job"}


@pytest.mark.postgres
def test_a_worker_stops_after_max_tables_and_a_failing_table_is_parked_after_its_attempts(tmp_path):
    require_postgres()
    catalog = make_catalog("postgres", tmp_path, "parking")
    env = {**os.environ, **catalog.extra_env}
    for name in ("a", "b", "c", "torn"):
        DELTALAKE_FIXTURES["appends"](tmp_path / name)
    torn = tmp_path / "torn" / "_delta_log" / f"{3:020d}.json"
    whole = torn.read_bytes()
    torn.write_bytes(whole[:-30])
    manifest = tmp_path / "tables.yml"
    manifest.write_text(yaml.safe_dump({"tables": [{"path": str(tmp_path / n)} for n in ("a", "b", "c")]}))
    run_cli(env, "enqueue", "--manifest", str(manifest))

    events = run_cli(env, "worker", "--concurrency", "2", "--max-tables", "2")  # two at once, then it exits
    assert [e["tables"] for e in events if e["event"] == "worker_finished"] == [2], [(e["table"], e["status"], e["error"]) for e in events if e["event"] == "job_finished"]
    assert sorted(j["status"] for j in queue(env).values()) == ["succeeded", "succeeded", "todo"]

    manifest.write_text(yaml.safe_dump({"tables": [{"path": str(tmp_path / "torn")}]}))
    run_cli(env, "enqueue", "--manifest", str(manifest))
    log = (tmp_path / "worker.jsonl").open("w")
    worker = subprocess.Popen([DELTA2SQL, "worker", "--target", "postgres", "--retry-wait", "1", "--json"],
                              stdout=log, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 300
        while queue(env)["torn"]["status"] != "failed" and time.monotonic() < deadline:
            time.sleep(1)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=120)
        log.close()
    parked = queue(env)["torn"]
    assert (parked["status"], parked["attempts"], parked["claim_status"]) == ("failed", 3, "failed")
    assert torn.name in parked["error"]
    assert queue(env)["c"]["status"] == "succeeded"  # the one left by the first worker, done meanwhile

    torn.write_bytes(whole)  # a person repairs it and queues it again
    run_cli(env, "enqueue", "--manifest", str(manifest))
    run_cli(env, "worker", "--until-empty")
    assert queue(env)["torn"]["status"] == "succeeded"
    with catalog.connect() as con:
        assert con.execute("select count(*) from worker_jobs where table_name = 'torn' and status = 'failed'") \
            .fetchone() == (3,)
