"""Kill `delta2sql migrate` at random moments, resume it, and compare with an uninterrupted run.

    .venv/bin/python scripts/kill_resume_stress.py --kills 50 [--target duckdb|postgres|sqlite]

Each round starts a fresh catalog and runs `delta2sql migrate` as a separate process with
small batches. The process is SIGKILLed after a random delay (anywhere: reading, committing a
batch, publishing, inside dbt) and the very same command is run again, killed again with some
probability, until one run finishes. Half the rounds first migrate the table up to an earlier
version, so the killed runs are catch-ups. The finished catalog must be identical, relation by
relation (delta2sql.fingerprint), to one that went through the same commands without
interruption; and every resumed run must continue after the batches already committed (it
redoes at most the one in flight).
Prints one line per round and a summary; exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "python"))

from delta2sql.catalog import Catalog  # noqa: E402
from delta2sql.fingerprint import table_fingerprints  # noqa: E402

DELTA2SQL = str(Path(sys.executable).parent / "delta2sql")


def catalog_for(target: str, directory: Path, name: str) -> tuple[Catalog, list[str], dict]:
    """A fresh catalog, the CLI options that reach it, and the environment they need."""
    if target == "postgres":
        schema = f"d2s_stress_{uuid.uuid4().hex[:10]}"
        env = {"DELTA2SQL_PG_SCHEMA": schema}
        return Catalog(target="postgres", extra_env=env), ["--target", "postgres"], env
    path = directory / f"{name}.{target}"
    return Catalog(target=target, path=path), ["--target", target, "--catalog", str(path)], {}


def drop(catalog: Catalog) -> None:
    if catalog.target == "postgres":
        with catalog.connect() as con:
            con.raw.execute(f'drop schema if exists "{catalog.settings["schema"]}" cascade')


def migrate_command(table: Path, options: list[str], version: int | None = None, batch_size: int = 2) -> list[str]:
    command = [DELTA2SQL, "migrate", str(table), "--name", "t", "--batch-size", str(batch_size), "--json", *options]
    return command + (["--version", str(version)] if version is not None else [])


def run_killed(command: list[str], env: dict, delay: float) -> tuple[int | None, list[dict]]:
    """Run `command`, SIGKILL it after `delay` seconds unless it ended; (exit code or None, events)."""
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL, env={**os.environ, **env})
        try:
            code = process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
            code = None
        out.seek(0)
        events = [json.loads(line) for line in out.read().decode().splitlines() if line.startswith("{")]
    return code, events


def committed_batches(catalog: Catalog) -> int:
    try:
        with catalog.connect() as con:
            return con.execute(
                "select count(*) from migration_batches where run_id = "
                "(select run_id from migration_runs order by started_at desc limit 1)"
            ).fetchone()[0]
    except Exception:  # noqa: BLE001 - killed before the tables existed
        return 0


def run_until_done(catalog: Catalog, command: list[str], env: dict, rng: random.Random, max_delay: float,
                   kill_probability: float = 0.7) -> dict:
    """Kill-and-rerun until a run finishes; returns counts and whether each resume skipped right."""
    kills, wrong_resumes = 0, []
    while True:
        kill = rng.random() < kill_probability
        before = committed_batches(catalog)
        code, events = run_killed(command, env, rng.uniform(0.2, max_delay) if kill else 600)
        resumed = [e for e in events if e["event"] == "run_resumed"]
        if resumed and resumed[0]["committed"] != before:
            wrong_resumes.append((before, resumed[0]["committed"]))
        if code is None:
            kills += 1
            continue
        finished = [e for e in events if e["event"] == "migration_finished"]
        return {"kills": kills, "exit": code, "status": finished[-1]["status"] if finished else None,
                "wrong_resumes": wrong_resumes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=50, help="stop after at least this many kills")
    parser.add_argument("--target", default="duckdb", choices=["duckdb", "postgres", "sqlite"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-delay", type=float, default=6.0, help="kill within this many seconds of the start")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    from fixtures.deltalake_tables import DELTALAKE_FIXTURES

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        table = directory / "t"
        DELTALAKE_FIXTURES["many_versions_partitioned_removes"](table)
        latest = max(int(p.stem) for p in (table / "_delta_log").glob("*.json"))
        starts = [None, latest // 4, latest // 2, 3 * latest // 4]  # None: a full run
        expected = {}
        for start in starts:  # the uninterrupted outcome of each sequence of commands
            baseline, options, env = catalog_for(args.target, directory, f"baseline{start}")
            commands = ([migrate_command(table, options, version=start)] if start is not None else [])
            for command in [*commands, migrate_command(table, options)]:
                subprocess.run(command, check=True, capture_output=True, env={**os.environ, **env})
            with baseline.connect() as con:
                expected[start] = table_fingerprints(con, "t")
            drop(baseline)

        total_kills, rounds, differences, bad_resumes = 0, 0, 0, 0
        started = time.perf_counter()
        while total_kills < args.kills:
            rounds += 1
            catalog, options, env = catalog_for(args.target, directory, f"round{rounds}")
            start = starts[rounds % len(starts)]
            if start is not None:  # an earlier version first: the killed runs below are catch-ups
                subprocess.run(migrate_command(table, options, version=start), check=True,
                               capture_output=True, env={**os.environ, **env})
            result = run_until_done(catalog, migrate_command(table, options), env, rng, args.max_delay)
            with catalog.connect() as con:
                got = table_fingerprints(con, "t")
            differing = sorted(name for name in got if got[name] != expected[start][name])
            differences += bool(differing) or result["status"] != "migrated"
            bad_resumes += len(result["wrong_resumes"])
            total_kills += result["kills"]
            print(f"round {rounds:3d} {'full    ' if start is None else f'catch-up from {start:<3d}'} kills {result['kills']}  "
                  f"exit {result['exit']}  {'identical' if not differing else 'DIFFERENT: ' + ', '.join(differing)}"
                  + (f"  wrong resume points {result['wrong_resumes']}" if result["wrong_resumes"] else ""), flush=True)
            drop(catalog)
        print(f"\n{args.target}: {rounds} rounds, {total_kills} kills, {differences} catalogs different from the "
              f"uninterrupted run, {bad_resumes} resumes that did not continue after the committed batches "
              f"({time.perf_counter() - started:.0f} s)")
    return 1 if differences or bad_resumes else 0


if __name__ == "__main__":
    sys.exit(main())
