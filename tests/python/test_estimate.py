"""Estimates (issue 16): the calibration's fit against measurements made with hand-chosen rates,
an estimate against hand arithmetic, a workload against the log files read independently, and
`plan`, `migrate`, `status` and `assess` against one another and a stopwatch. How close the
estimates come to real migrations is the benchmark's question (scripts/bench_estimates.py), not
a timed test's."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import (
    documented_events,
    invoke_cli,
    make_catalog,
    postgres_settings,
    write_calibration,
)
from fixtures.deltalake_tables import DELTALAKE_FIXTURES

from delta2sql import calibration
from delta2sql.calibration import Measurement, fit
from delta2sql.calibration_tables import Shape, shapes, write_table
from delta2sql.catalog import Catalog
from delta2sql.cli import main
from delta2sql.estimate import RANGE, Rates, Workload, estimate, workload
from delta2sql.log_listing import checkpoint_footers, plan_segment
from delta2sql.log_store import open_log, session

RATES = {"process_seconds": 2.5, "listing_seconds": 0.4, "checkpoint_seconds_per_row": 6e-6,
         "checkpoint_seconds_per_byte": 3e-8, "checkpoint_parallel_share": 0.75, "commit_seconds_per_file": 2e-4,
         "commit_seconds_per_byte": 6e-8, "build_seconds": 9.0, "build_seconds_per_action": 5e-6,
         "build_seconds_per_log_file": 1e-4, "build_seconds_per_log_byte": 2e-8}

# The calibration tables' workloads, by hand: (checkpoint rows, bytes, parallelism, commit files,
# commit bytes, commit actions, catalog actions, catalog log files, catalog log bytes).
WORKLOADS = {
    "tiny": Workload(0, 0, 1, 1, 6_000, 13, 13, 1, 6_000),
    "checkpoint": Workload(400_000, 100_000_000, 1, 1, 900, 3, 400_003, 2, 100_050_000),
    "lean_checkpoint": Workload(400_000, 35_000_000, 1, 1, 900, 3, 400_003, 2, 35_050_000),
    "fat_checkpoint": Workload(100_000, 150_000_000, 1, 1, 900, 3, 100_003, 2, 150_050_000),
    "split_checkpoint": Workload(2_000_000, 505_000_000, 2, 1, 500, 2, 2_000_002, 2, 205_000_000),
    "small_commits": Workload(0, 0, 1, 20_000, 21_000_000, 70_000, 70_100, 20_001, 21_000_000),
    "large_commits": Workload(0, 0, 1, 1_000, 40_000_000, 111_000, 111_100, 1_001, 40_000_000),
}


def measured(table: str, w: Workload, r: dict) -> Measurement:
    """What a machine running at rates `r` would measure migrating `w`, written out by hand."""
    serial = w.checkpoint_rows * r["checkpoint_seconds_per_row"] + w.checkpoint_bytes * r["checkpoint_seconds_per_byte"]
    share = r["checkpoint_parallel_share"]
    landing = (r["listing_seconds"] + serial * (1 - share + share / w.checkpoint_parallelism)
               + w.commit_files * r["commit_seconds_per_file"] + w.commit_bytes * r["commit_seconds_per_byte"])
    build = (r["build_seconds"] + w.catalog_actions * r["build_seconds_per_action"]
             + w.catalog_log_files * r["build_seconds_per_log_file"]
             + w.catalog_log_bytes * r["build_seconds_per_log_byte"])
    return Measurement(table, w, r["process_seconds"] + landing + build, landing, build)


def test_fit_recovers_the_rates_the_measurements_were_made_with():
    runs = [measured(name, work, RATES) for name, work in WORKLOADS.items()] + [measured("tiny", WORKLOADS["tiny"], RATES)]
    found = fit(runs)
    for name, rate in RATES.items():
        if name in ("process_seconds", "listing_seconds", "build_seconds"):
            # the tiny table's own commit and actions (1 file, 13 actions) count as fixed: under 1 ms
            assert getattr(found, name) == pytest.approx(rate, abs=1e-3), name
        else:
            assert getattr(found, name) == pytest.approx(rate, rel=1e-3), name


def test_fit_keeps_every_rate_at_zero_or_above_when_the_measurements_are_noisy():
    runs = [measured(name, work, RATES) for name, work in WORKLOADS.items()]
    slower_tiny = measured("tiny", WORKLOADS["tiny"], {**RATES, "listing_seconds": 5.0, "build_seconds": 30.0})
    found = fit([*runs, slower_tiny, slower_tiny])  # the fixed costs now exceed what bigger tables took
    assert all(value >= 0 for value in found.__dict__.values()), found
    assert 0 <= found.checkpoint_parallel_share <= 1


def test_fit_refuses_measurements_without_every_table():
    runs = [measured(name, work, RATES) for name, work in WORKLOADS.items() if name != "large_commits"]
    with pytest.raises(calibration.CalibrationError, match="large_commits"):
        fit(runs)


def test_an_estimate_adds_up_its_phases_and_spans_twenty_percent_either_way():
    work = Workload(1_800_000, 266_000_000, 2, 1_000, 29_600_000, 111_000, 1_911_000, 1_001, 71_800_000)
    timed = estimate(work, Rates(**RATES), "hand rates")
    checkpoint = (1_800_000 * 6e-6 + 266_000_000 * 3e-8) * (1 - 0.75 + 0.75 / 2)  # 11.74
    commits = 1_000 * 2e-4 + 29_600_000 * 6e-8  # 1.976
    build = 9.0 + 1_911_000 * 5e-6 + 1_001 * 1e-4 + 71_800_000 * 2e-8  # 20.09
    assert timed.phases == {"process": 2.5, "listing": 0.4, "checkpoint": round(checkpoint, 1),
                            "commits": round(commits, 1), "download": 0.0, "build": round(build, 1)}
    assert timed.seconds == pytest.approx(2.5 + 0.4 + round(checkpoint, 1) + round(commits, 1) + round(build, 1))
    assert (timed.low, timed.high) == (round(timed.seconds * (1 - RANGE), 1), round(timed.seconds * (1 + RANGE), 1))
    assert timed.run_seconds == pytest.approx(timed.seconds - 2.5)


def test_an_object_stores_round_trips_count_where_the_landing_does_not_hide_them_and_its_checkpoint_download_does():
    local = Workload(0, 0, 1, 10_000, 8_000_000, 30_000, 30_000, 10_000, 8_000_000)
    landing = 10_000 * 2e-4 + 8_000_000 * 6e-8  # 2.48 s
    for latency, hidden in ((0.01, True), (0.05, False)):
        trips = 10_000 // 64 + 1 + 10_000 // 1_000  # 157 rounds of 64 GETs, 10 listing pages
        store = dataclasses.replace(local, store_round_trips=trips, round_trip_seconds=latency)
        timed = estimate(store, Rates(**RATES), "hand rates")
        assert timed.phases["download"] == (0.0 if hidden else round(trips * latency - landing, 1))
        assert any("round trips to the object store" in a for a in timed.assumptions)
        # the checkpoint's download, timed when planning, comes first: the landing waits for it
        with_checkpoint = estimate(dataclasses.replace(store, checkpoint_download_seconds=3.04), Rates(**RATES),
                                   "hand rates")
        assert with_checkpoint.phases["download"] == round(timed.phases["download"] + 3.04, 1)
        assert any("checkpoint downloads in 3.0 s" in a for a in with_checkpoint.assumptions)


def test_a_write_cap_slower_than_the_machine_paces_the_landing():
    work = Workload(0, 0, 1, 100, 100_000, 400, 400, 100, 100_000)
    timed = estimate(work, Rates(**RATES), "hand rates", max_rows_per_second=10)
    assert timed.phases["checkpoint"] + timed.phases["commits"] == pytest.approx(400 / 10, abs=0.1)


def test_the_workload_is_what_the_log_holds(tmp_path):
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["checkpoints"](table)  # a delta-rs checkpoint at 20, commits 21..24
    log_dir = table / "_delta_log"
    with session():
        segment = plan_segment(open_log(table))
        work = workload(segment, checkpoint_footers(segment), 500_000, held=(1_000, 10, 5_000))
    checkpoint = log_dir / f"{20:020d}.checkpoint.parquet"
    commits = [log_dir / f"{v:020d}.json" for v in range(21, 25)]
    actions = sum(1 for c in commits for line in c.read_text().splitlines() if line.strip())
    assert work.checkpoint_rows == pq.read_metadata(checkpoint).num_rows
    assert work.commit_files == 4 and work.commit_bytes == sum(c.stat().st_size for c in commits)
    assert work.commit_actions == actions  # 4 commits: every one is in the sample
    assert work.catalog_actions == 1_000 + work.checkpoint_rows + actions
    assert work.catalog_log_files == 10 + 1 + 4
    assert work.catalog_log_bytes == 5_000 + checkpoint.stat().st_size + work.commit_bytes
    metadata = pq.read_metadata(checkpoint)
    assert work.checkpoint_parallelism == min(os.cpu_count(), metadata.num_row_groups)


def test_the_actions_of_many_commits_come_from_a_sample(tmp_path):
    table = write_table(tmp_path / "t", Shape("commits", 10, 600, 3, 1, False))
    with session():
        segment = plan_segment(open_log(table))
        work = workload(segment, checkpoint_footers(segment), 500_000)
    lines = sum(1 for path in (table / "_delta_log").glob("*.json") for line in path.read_text().splitlines() if line)
    assert work.commit_files == 601
    assert work.commit_actions == pytest.approx(lines, rel=0.05)  # 50 of 601 commits read, commit 0 among them


def test_the_calibration_tables_are_what_delta_rs_reads(tmp_path):
    import deltalake

    for shape in shapes(0.001):
        table = write_table(tmp_path / shape.name, shape)
        live = pa.table(deltalake.DeltaTable(str(table)).get_add_actions()).num_rows
        removed = min(shape.removes * shape.commits, shape.initial_files + shape.adds * shape.commits - 1)
        assert live == (shape.initial_files + shape.adds * shape.commits - removed) * shape.copies, shape.name
        checkpoints = list((table / "_delta_log").glob("*.checkpoint.parquet"))
        assert len(checkpoints) == shape.checkpoint
        if shape.row_group_rows:
            assert pq.read_metadata(checkpoints[0]).num_row_groups > 1


def plan_event(catalog: Catalog, table: Path) -> dict:
    result = invoke_cli(catalog, "plan", str(table))
    assert result.exit_code == 0, result.output
    [event] = [e for e in map(json.loads, result.output.splitlines()) if e["event"] == "plan"]
    return event


def test_plan_estimates_its_workload_at_the_calibrated_rates(tmp_path):
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["checkpoints"](table)
    catalog = make_catalog("duckdb", tmp_path, "lake")
    uncalibrated = plan_event(catalog, table)
    assert uncalibrated["estimate"] is None
    assert "not calibrated for duckdb on this machine: run `delta2sql calibrate --target duckdb`" in \
        uncalibrated["estimate_basis"]

    path = write_calibration("duckdb", **RATES)
    planned = plan_event(catalog, table)
    work = Workload(**planned["work"])
    assert planned["estimate"] == estimate(work, Rates(**RATES), planned["estimate_basis"]).as_dict()
    assert str(path) in planned["estimate_basis"] and "2026-11-28 12:00 UTC" in planned["estimate_basis"]
    assert planned["work"]["commit_actions"] == planned["commit_actions_estimate"]


@pytest.mark.parametrize("change, reason", [
    ({"host": "elsewhere"}, "was measured on elsewhere, not here"),
    ({"delta2sql_version": "0.0.1"}, "was measured with delta2sql 0.0.1"),
    ({"rates": {"process_seconds": 1.0}}, "cannot be read"),
])
def test_a_calibration_of_another_machine_or_version_gives_no_estimate(tmp_path, change, reason):
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["checkpoints"](table)
    path = write_calibration("duckdb", **RATES)
    path.write_text(json.dumps(json.loads(path.read_text()) | change))
    planned = plan_event(make_catalog("duckdb", tmp_path, "lake"), table)
    assert planned["estimate"] is None and reason in planned["estimate_basis"]
    assert "run `delta2sql calibrate --target duckdb`" in planned["estimate_basis"]


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_migrate_records_its_estimate_beside_what_it_took_and_status_compares_them(tmp_path, engine):
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["checkpoints"](table)
    catalog = make_catalog(engine, tmp_path, "lake")
    write_calibration(engine, **RATES)
    planned = plan_event(catalog, table)["estimate"]

    started = time.perf_counter()
    result = invoke_cli(catalog, "migrate", str(table), "--name", "t")
    stopwatch = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    [announced] = [e for e in map(json.loads, result.output.splitlines()) if e["event"] == "estimate"]
    assert announced["seconds"] == planned["seconds"] and announced["table"] == "t"

    with catalog.connect() as con:
        [(midpoint, low, high, phases, landing, build)] = con.execute(
            "select estimated_seconds, estimate_low_seconds, estimate_high_seconds, estimate_phases, "
            "landing_seconds, build_seconds from migration_runs where table_name = 't'").fetchall()
    run_seconds = round(planned["seconds"] - planned["phases"]["process"], 1)
    assert (midpoint, low, high) == (run_seconds, round(run_seconds * 0.8, 1), round(run_seconds * 1.2, 1))
    assert json.loads(phases) == planned["phases"]
    assert 0 < landing and 0 < build and landing + build < stopwatch

    status = invoke_cli(catalog, "status", "t")
    events = list(map(json.loads, status.output.splitlines()))
    [row] = [e for e in events if e["event"] == "table_status"]
    assert (row["run_estimate_low_seconds"], row["run_estimate_high_seconds"]) == (low, high)
    assert row["run_seconds"] == pytest.approx(landing + build)
    [record] = [e for e in events if e["event"] == "estimate_record"]
    assert record["runs"] == 1 and record["within_range"] == int(low <= landing + build <= high)
    assert record["median_error"] == pytest.approx((landing + build - midpoint) / midpoint, abs=1e-3)

    document = tmp_path / "report.md"
    written = invoke_cli(catalog, "report", "t", "--format", "md", "-o", str(document))
    assert written.exit_code == 0, written.output
    assert f"| {low:,.0f}–{high:,.0f} s |" in document.read_text()  # the run's row shows its estimate


def test_an_uncalibrated_migration_records_no_estimate_and_status_shows_none(tmp_path):
    table = tmp_path / "t"
    DELTALAKE_FIXTURES["checkpoints"](table)
    catalog = make_catalog("duckdb", tmp_path, "lake")
    result = invoke_cli(catalog, "migrate", str(table), "--name", "t")
    assert result.exit_code == 0, result.output
    assert not [e for e in map(json.loads, result.output.splitlines()) if e["event"] == "estimate"]
    status = invoke_cli(catalog, "status")
    events = list(map(json.loads, status.output.splitlines()))
    assert [e["run_estimate_low_seconds"] for e in events if e["event"] == "table_status"] == [None]
    assert not [e for e in events if e["event"] == "estimate_record"]


def test_assess_estimates_each_ready_table_and_the_fleet(tmp_path):
    lake = tmp_path / "lake"
    for name in ("checkpoints", "appends"):
        DELTALAKE_FIXTURES[name](lake / name)
    uncalibrated = CliRunner().invoke(main, ["assess", str(lake), "--recursive", "--json"])
    events = list(map(json.loads, uncalibrated.output.splitlines()))
    assert all(e["estimate"] is None and "delta2sql calibrate" in e["estimate_basis"]
               for e in events if e["event"] == "assessment")
    [fleet] = [e for e in events if e["event"] == "assessment_finished"]
    assert fleet["estimated_seconds"] is None

    write_calibration("postgres", **RATES)
    write_calibration("duckdb", **RATES)  # for the plans it is compared with
    result = CliRunner().invoke(main, ["assess", str(lake), "--recursive", "--target", "postgres", "--json"])
    events = list(map(json.loads, result.output.splitlines()))
    assessed = {e["name"]: e for e in events if e["event"] == "assessment"}
    for name, found in assessed.items():
        catalog = make_catalog("duckdb", tmp_path, f"plan_{name}")  # plan into an empty catalog: the same work
        planned = plan_event(catalog, lake / name)
        assert found["estimate"]["phases"] == planned["estimate"]["phases"], name
    [fleet] = [e for e in events if e["event"] == "assessment_finished"]
    assert fleet["estimated_seconds"] == pytest.approx(sum(a["estimate"]["seconds"] for a in assessed.values()))
    in_order = [assessed[name]["estimate"]["seconds"] for name in fleet["migration_order"]]
    assert in_order == sorted(in_order, reverse=True)  # the longest first

    markdown = CliRunner().invoke(main, ["assess", str(lake), "--recursive", "--target", "postgres", "--format", "md"])
    assert "Migrating them one after another" in markdown.output
    assert assessed["checkpoints"]["estimate"]["range"] in markdown.output


def test_calibrate_measures_every_table_and_plan_uses_what_it_stored(tmp_path, calibration_dir):
    scratch_before = set(Path(tempfile.gettempdir()).glob("delta2sql-calibration-*"))
    done = subprocess.run([sys.executable, "-m", "delta2sql.cli", "calibrate", "--scale", "0.01", "--json"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    events = list(map(json.loads, done.stdout.splitlines()))
    runs = [e for e in events if e["event"] == "calibration_run"]
    assert sorted({e["table"] for e in runs}) == sorted(shape.name for shape in shapes(1.0))
    for run in runs:  # each phase measured inside the process the stopwatch timed
        assert 0 < run["landing_seconds"] and 0 < run["build_seconds"]
        assert run["landing_seconds"] + run["build_seconds"] < run["wall_seconds"]
    documented = documented_events()
    for event in events:  # what --json prints is what docs/json-events.md says
        assert set(event) - {"event", "ts", "message"} <= documented[event["event"]], event["event"]
    [calibrated] = [e for e in events if e["event"] == "calibrated"]
    stored = json.loads((calibration_dir / "calibration-duckdb.json").read_text())
    assert calibrated["path"] == str(calibration_dir / "calibration-duckdb.json")
    assert stored["rates"] == calibrated["rates"] and stored["host"] == socket.gethostname()
    assert all(rate >= 0 for rate in stored["rates"].values())
    assert set(Path(tempfile.gettempdir()).glob("delta2sql-calibration-*")) <= scratch_before  # scratch removed

    table = tmp_path / "t"
    DELTALAKE_FIXTURES["checkpoints"](table)
    planned = plan_event(make_catalog("duckdb", tmp_path, "lake"), table)
    assert planned["estimate"]["phases"]["process"] == pytest.approx(stored["rates"]["process_seconds"], abs=0.05)


@pytest.mark.postgres
def test_calibrating_postgres_leaves_no_scratch_schema(tmp_path):
    make_catalog("postgres", tmp_path, "unused")  # requires PostgreSQL (a failure in CI)
    s = postgres_settings()

    def scratch_schemas() -> set[str]:
        with psycopg.connect(host=s["host"], port=s["port"], user=s["user"], dbname=s["dbname"]) as con:
            return {r[0] for r in con.execute("select nspname from pg_namespace "
                                              "where nspname like 'delta2sql_calibration_%'").fetchall()}

    before = scratch_schemas()
    shape = shapes(0.01)[0]
    table = write_table(tmp_path / shape.name, shape)
    found = calibration._migrate(table, shape, 0, Catalog(target="postgres"), tmp_path)
    assert found.table == "tiny" and found.work.commit_files == 1
    assert 0 < found.landing_seconds and 0 < found.build_seconds
    assert found.landing_seconds + found.build_seconds < found.wall_seconds
    assert scratch_schemas() <= before
