"""`--max-rows-per-second`: the catalog's token bucket, and two workers that share it (one of
them serving the catalog's metrics, which show both landing).

Oracles: the bucket's arithmetic done by hand (a take past the tokens sleeps the debt off at the
cap); the batches' own commit times and row counts in `migration_batches`, whose combined rate
must sit within 15% of the cap."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request

import pytest
import yaml
from conftest import REPO, free_port, invoke_cli, make_catalog, write_calibration
from fixtures.deltalake_tables import DELTALAKE_FIXTURES
from prometheus_client.parser import text_string_to_metric_families

from delta2sql import rate_limit
from delta2sql.landing_schema import create_landing_tables

DELTA2SQL = str(REPO / ".venv/bin/delta2sql")


def test_a_take_past_the_tokens_sleeps_the_debt_off(catalog):
    with catalog.connect() as con:
        create_landing_tables(con)
        before = time.monotonic()
        assert rate_limit.take(con, 100, 1000) == 0  # a full bucket holds one second: 1000 rows
        started = time.monotonic()
        slept = rate_limit.take(con, 1900, 1000)  # 900 left, 1900 taken: 1000 rows of debt, one second
        ended = time.monotonic()
        # less only by what the bucket refilled between the two takes (1000 rows/s), at most
        # the time from before the first to the second's sleep (a loaded machine took 0.1 s)
        refilled_at_most = ended - slept - before
        assert 1.0 - refilled_at_most <= slept <= 1.0 and ended - started >= slept
        assert rate_limit.current_cap(con) == 1000


def rate_of(batches: list[tuple]) -> float:
    """Rows per second committed after the first batch, up to the last."""
    times = [t for t, _ in batches]
    return sum(rows for _, rows in batches[1:]) / (max(times) - min(times)).total_seconds()


@pytest.mark.postgres
def test_two_workers_together_stay_within_the_cap(tmp_path):
    catalog = make_catalog("postgres", tmp_path, "capped")
    env = {**os.environ, **catalog.extra_env}
    tables = {}
    for name in ("east", "west"):  # 40 commits each: 20 batches of two
        DELTALAKE_FIXTURES["many_versions_partitioned_removes"](tmp_path / name)
        tables[name] = tmp_path / name
    manifest = tmp_path / "tables.yml"
    manifest.write_text(yaml.safe_dump({"tables": [{"path": str(p), "name": n, "full_history": True}
                                                   for n, p in tables.items()]}))
    cap = 20  # well below what two writers land unhindered here (about 45 rows/s in batches of two commits)
    write_calibration("postgres", commit_seconds_per_file=0.001)  # far faster than the cap lets it land
    plan = invoke_cli(catalog, "plan", str(tables["east"]), "--full-history", "--max-rows-per-second", str(cap))
    [planned] = [json.loads(line) for line in plan.output.splitlines() if '"plan"' in line]
    rows = planned["checkpoint_actions"] + planned["commit_actions_estimate"]
    landing = planned["estimate"]["phases"]["checkpoint"] + planned["estimate"]["phases"]["commits"]
    assert planned["max_rows_per_second"] == cap and landing == pytest.approx(rows / cap, abs=0.1)

    subprocess.run([DELTA2SQL, "enqueue", "--manifest", str(manifest), "--target", "postgres"], env=env, check=True,
                   capture_output=True)
    port = free_port()  # the first worker serves the catalog's metrics meanwhile
    workers = [subprocess.Popen([DELTA2SQL, "worker", "--target", "postgres", "--until-empty", "--batch-size", "2",
                                 "--max-rows-per-second", str(cap), "--json", *extra], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env)
               for extra in (["--metrics-port", str(port)], [])]
    claimed, deadline = set(), time.monotonic() + 600
    while any(w.poll() is None for w in workers) and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                text = response.read().decode()
        except OSError:  # not serving yet, or done
            text = ""
        claimed |= {s.labels["owner"] for f in text_string_to_metric_families(text) for s in f.samples
                    if s.name == "delta2sql_owner_tables_claimed" and s.value == 1}
        time.sleep(0.5)
    assert [w.wait(timeout=60) for w in workers] == [0, 0]
    assert {int(owner.rsplit(":", 1)[1]) for owner in claimed} == {w.pid for w in workers}  # each, landing

    with catalog.connect() as con:
        batches = con.execute("select committed_at, actions from migration_batches order by committed_at").fetchall()
        owners = con.execute("select count(distinct owner_pid) from migration_runs").fetchone()[0]
        statuses = {s for (s,) in con.execute("select status from delta_log_tables").fetchall()}
    assert len(batches) >= 40 and owners == 2 and statuses == {"migrated"}
    assert abs(rate_of(batches) - cap) <= 0.15 * cap, rate_of(batches)

    status = invoke_cli(catalog, "status")
    assert [json.loads(line)["max_rows_per_second"] for line in status.output.splitlines()
            if '"rate_limit"' in line] == [cap]
