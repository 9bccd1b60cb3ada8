"""Check `plan`'s estimates against actual migrations, on DuckDB and PostgreSQL (issue 16).

    .venv/bin/python scripts/bench_estimates.py                 # calibrate, then 3 runs per table and target
    .venv/bin/python scripts/bench_estimates.py --no-calibrate  # reuse this machine's calibration
    .venv/bin/python scripts/bench_estimates.py --targets duckdb --tables wide
    .venv/bin/python scripts/bench_estimates.py --workdir W --reuse docs/bench/estimates-results.json

`--reuse` re-estimates an earlier run's tables with the code as it is now, from that run's
calibration measurements (refitted) and against its migrations' times, without migrating
again: for a change to the estimate's model, judged on the same measurements.

For each target it first runs `delta2sql calibrate` (the rates every estimate uses; the
calibration goes to a directory of this run, DELTA2SQL_CALIBRATION_DIR, unless --no-calibrate),
then for each table (scripts/bench_tables.py at scale 1: wide, long, wide_delta_rs, the last
being `../shared/bench/gen_delta_log.py`'s example command) asks `delta2sql plan --json` for the
estimate and runs `delta2sql migrate` --runs times into a new catalog, each its own process, timed
by wall clock. The target holds when the median of the runs lies within ±25% of the estimate's
midpoint. Writes docs/bench/estimates-results.json and prints a table; exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "scripts"))
from bench_tables import generate_long, generate_wide, generate_wide_delta_rs

TABLES = {"wide": generate_wide, "long": generate_long, "wide_delta_rs": generate_wide_delta_rs}
TOLERANCE = 0.25
PG = {"PGHOST": os.environ.get("PGHOST", "127.0.0.1"), "PGUSER": os.environ.get("PGUSER", "postgres"),
      "PGDATABASE": os.environ.get("PGDATABASE", "postgres")}


def delta2sql(*args: str, env: dict | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "delta2sql"), *args], env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"delta2sql {' '.join(args)} exited {done.returncode}:\n{done.stdout[-2000:]}\n"
                           f"{done.stderr[-2000:]}")
    return seconds, done.stdout


def catalog_args(target: str, workdir: Path) -> tuple[list[str], dict, str]:
    """Options and environment of a new, empty catalog of `target`; the schema to drop after."""
    if target == "postgres":
        schema = f"bench_estimates_{uuid.uuid4().hex[:8]}"
        return ["--target", "postgres"], {**PG, "DELTA2SQL_PG_SCHEMA": schema}, schema
    catalog = workdir / f"catalog-{uuid.uuid4().hex[:8]}.duckdb"
    return ["--catalog", str(catalog)], {}, ""


def drop(schema: str) -> None:
    if schema:
        subprocess.run(["psql", "-q", "-c", f"drop schema if exists {schema} cascade"], check=False,
                       env={**os.environ, **PG, "PGOPTIONS": "--client-min-messages=warning"})


def planned_estimate(table: Path, target: str, workdir: Path) -> dict:
    """`delta2sql plan`'s estimate of migrating `table` into a new catalog of `target`."""
    options, env, schema = catalog_args(target, workdir)
    try:
        _, out = delta2sql("plan", str(table), *options, "--json", env=env)
    finally:
        drop(schema)
    [plan] = [e for e in map(json.loads, out.splitlines()) if e["event"] == "plan"]
    if plan["estimate"] is None:
        raise RuntimeError(f"no estimate for {target}: {plan['estimate_basis']}")
    return plan["estimate"]


def recorded_phases(target: str, options: list[str], env: dict) -> dict:
    """The landing and build seconds the run recorded in its catalog's `migration_runs`, to see
    which phase an estimate missed."""
    from delta2sql.catalog import Catalog

    if target == "postgres":
        catalog = Catalog(target="postgres", extra_env=env)
    else:
        catalog = Catalog(target=target, path=Path(options[options.index("--catalog") + 1]))
    with catalog.connect() as con:
        landing, build = con.execute("select landing_seconds, build_seconds from migration_runs").fetchall()[0]
    return {"landing": round(landing, 1), "build": round(build, 1)}


def run_table(table: Path, target: str, runs: int, workdir: Path) -> dict:
    planned = planned_estimate(table, target, workdir)
    walls, phases = [], []
    for _ in range(runs):
        options, env, schema = catalog_args(target, workdir)
        try:
            seconds, _ = delta2sql("migrate", str(table), *options, "--json", env=env)
            phases.append(recorded_phases(target, options, env))
        finally:
            drop(schema)
            for leftover in workdir.glob("catalog-*"):
                leftover.unlink()
        walls.append(round(seconds, 1))
    midpoint = planned["seconds"]
    median = statistics.median(walls)
    error = (median - midpoint) / midpoint
    return {"table": table.name, "target": target, "estimate": planned, "runs": walls, "run_phases": phases,
            "median_seconds": median, "error": round(error, 3), "holds": abs(error) <= TOLERANCE}


def phase_comparison(result: dict) -> str:
    """Estimated against recorded (median) landing and build of one table's runs."""
    phases = result["estimate"]["phases"]
    landing = sum(phases[name] for name in ("listing", "checkpoint", "commits", "download"))
    recorded = {name: statistics.median(run[name] for run in result["run_phases"]) for name in ("landing", "build")}
    return (f"landing estimated {landing:.1f} s, recorded {recorded['landing']:.1f} s; "
            f"build estimated {phases['build']:.1f} s, recorded {recorded['build']:.1f} s")


def reestimate(earlier: Path, workdir: Path, out: Path) -> None:
    """The earlier run's migrations against estimates made now: its calibration measurements
    (in WORKDIR/calibration) refitted by today's `calibration.fit`, its tables planned again."""
    from delta2sql import calibration
    from delta2sql.estimate import Workload

    recorded = json.loads(earlier.read_text())
    refitted = workdir / "calibration-refitted"
    refitted.mkdir(exist_ok=True)
    os.environ["DELTA2SQL_CALIBRATION_DIR"] = str(refitted)
    calibrations = {}
    for target in {r["target"] for r in recorded["results"]}:
        stored = json.loads((workdir / "calibration" / f"calibration-{target}.json").read_text())
        measurements = [calibration.Measurement(m["table"], Workload(**m["work"]), m["wall_seconds"],
                                                m["landing_seconds"], m["build_seconds"])
                        for m in stored["measurements"]]
        rates = calibration.fit(measurements)
        stored["rates"] = rates.__dict__
        (refitted / f"calibration-{target}.json").write_text(json.dumps(stored, indent=2))
        calibrations[target] = {"rates": stored["rates"], "refitted_from": stored["measured_at"]}
    results = []
    for earlier_result in recorded["results"]:
        table, target = workdir / earlier_result["table"], earlier_result["target"]
        planned = planned_estimate(table, target, workdir)
        midpoint, median = planned["seconds"], earlier_result["median_seconds"]
        error = (median - midpoint) / midpoint
        results.append({**earlier_result, "estimate": planned, "error": round(error, 3),
                        "holds": abs(error) <= TOLERANCE})
        print(f"{target:9} {table.name:16} estimate {planned['range']:>14} (midpoint {midpoint:6.1f} s)  "
              f"runs {earlier_result['runs']}  median {median:6.1f} s  error {error:+.0%}  "
              f"{'holds' if abs(error) <= TOLERANCE else 'MISSED'}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**recorded, "reestimated_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                               "calibrations": calibrations, "results": results}, indent=2) + "\n")
    sys.exit(0 if all(r["holds"] for r in results) else 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", nargs="+", default=["duckdb", "postgres"], choices=["duckdb", "postgres"])
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-calibrate", action="store_true", help="Use this machine's stored calibration.")
    parser.add_argument("--workdir", type=Path, help="Where the tables are generated (kept: reused next time).")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench" / "estimates-results.json")
    parser.add_argument("--reuse", type=Path, help="An earlier run's results: refit and re-estimate, migrate nothing.")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="delta2sql-estimates-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.reuse:
        reestimate(args.reuse, workdir, args.out)
        return
    if not args.no_calibrate:
        os.environ["DELTA2SQL_CALIBRATION_DIR"] = str(workdir / "calibration")
    tables = {}
    for kind in args.tables:
        tables[kind] = workdir / f"{kind}_1"
        if not tables[kind].exists():
            TABLES[kind](tables[kind], 1.0)
    results, calibrations = [], {}
    for target in args.targets:
        if not args.no_calibrate:
            seconds, out = delta2sql("calibrate", "--target", target, "--json", env=PG if target == "postgres" else {})
            [event] = [e for e in map(json.loads, out.splitlines()) if e["event"] == "calibrated"]
            calibrations[target] = {"seconds": round(seconds, 1), "rates": event["rates"]}
            print(f"calibrated {target} in {seconds:.0f} s", flush=True)
        for kind in args.tables:
            result = run_table(tables[kind], target, args.runs, workdir)
            results.append(result)
            print(f"{target:9} {kind:14} estimate {result['estimate']['range']:>14} (midpoint "
                  f"{result['estimate']['seconds']:6.1f} s)  runs {result['runs']}  median {result['median_seconds']:6.1f} s"
                  f"  error {result['error']:+.0%}  {'holds' if result['holds'] else 'MISSED'}", flush=True)
            print(f"{'':25} {phase_comparison(result)}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                    "tolerance": TOLERANCE, "calibrations": calibrations, "results": results},
                                   indent=2) + "\n")
    sys.exit(0 if all(r["holds"] for r in results) else 1)


if __name__ == "__main__":
    main()
