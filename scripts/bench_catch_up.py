"""Catch-up latency: how long until the catalog shows commits appended to a migrated table.

    .venv/bin/python scripts/bench_catch_up.py [--scale 1] [--rounds 5] [--commits 10]

Generates the long benchmark table (scripts/bench_tables.py: 100,000 commits at scale 1) and
migrates it into a DuckDB catalog. Then, in one run:
  1. one-shot: appends the commits and times `delta2sql migrate` as a whole process, as a cron
     job pays it (start, imports and dbt's parse included);
  2. resident: runs `delta2sql sync --every 20s --levels structure --json` on the same catalog,
     appends the commits after each pass, and reads the next pass's `sync_caught_up` event: the
     seconds from the pass's start until the catalog showed them (docs/json-events.md).
Prints every round and the median of each.
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "scripts"))

from bench_tables import append_long_commits, generate_long  # noqa: E402


def one_shot(table: Path, catalog: Path, commits: int) -> float:
    append_long_commits(table, commits)
    started = time.perf_counter()
    subprocess.run([str(BIN / "delta2sql"), "migrate", str(table), "--catalog", str(catalog), "--json"],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def resident(table: Path, catalog: Path, workdir: Path, commits: int, rounds: int) -> list[float]:
    manifest = workdir / "tables.yml"
    manifest.write_text(f"tables:\n  - path: {json.dumps(str(table))}\n    name: {table.name}\n")
    events_path = workdir / "sync.jsonl"
    with events_path.open("w") as out:
        process = subprocess.Popen([str(BIN / "delta2sql"), "sync", "--manifest", str(manifest), "--every", "20s",
                                    "--levels", "structure", "--catalog", str(catalog), "--json"],
                                   stdout=out, stderr=subprocess.DEVNULL)
    latencies: list[float] = []
    try:
        passes_seen, expected = 0, None
        while len(latencies) < rounds:
            events = [json.loads(line) for line in events_path.read_text().splitlines() if line.startswith("{")]
            if process.poll() is not None:
                raise RuntimeError(f"sync exited {process.returncode}: {events[-3:]}")
            finished = [e for e in events if e["event"] == "sync_finished"]
            if expected is not None:
                shown = [e for e in events if e["event"] == "sync_caught_up"
                         and e["versions"].get(table.name) == expected]
                if shown:
                    latencies.append(shown[0]["seconds"])
                    print(f"  resident round {len(latencies)}: {shown[0]['seconds']:.2f} s", flush=True)
                    expected = None
            if expected is None and len(finished) > passes_seen:  # a pass ended: the next starts in ~20 s
                passes_seen = len(finished)
                expected = append_long_commits(table, commits)
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=120)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--commits", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="delta2sql-bench-") as tmp:
        workdir = Path(tmp)
        table = generate_long(workdir / "long", args.scale)
        catalog = workdir / "catalog.duckdb"
        subprocess.run([str(BIN / "delta2sql"), "migrate", str(table), "--catalog", str(catalog), "--json"],
                       check=True, stdout=subprocess.DEVNULL)
        shots = []
        for number in range(args.rounds):
            shots.append(one_shot(table, catalog, args.commits))
            print(f"  one-shot round {number + 1}: {shots[-1]:.2f} s", flush=True)
        latencies = resident(table, catalog, workdir, args.commits, args.rounds)
    print(f"\nlong x{args.scale}, {args.commits} commits appended, {args.rounds} rounds (DuckDB catalog):")
    print(f"  one-shot `delta2sql migrate`, whole process: median {statistics.median(shots):.2f} s "
          f"(min {min(shots):.2f}, max {max(shots):.2f})")
    print(f"  resident `sync --every`, pass start to catalog: median {statistics.median(latencies):.2f} s "
          f"(min {min(latencies):.2f}, max {max(latencies):.2f})")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
