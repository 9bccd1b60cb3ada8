"""Choose the default batch sizes: time `delta2sql migrate` per batch size, side by side in one run.

    .venv/bin/python scripts/bench_batch_size.py [--scale 0.25] [--target duckdb|postgres]

Every batch commits with its progress row, so small batches mean more commits (and a finer
resume point) and large ones more memory. Times the `long` table (JSON commits) for several
`--batch-size` values and the `wide` table (a big checkpoint, then commits) for several
`--checkpoint-batch-rows` values, each migration a separate process (wall time, peak RSS).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import BIN, REPO, measure  # noqa: E402


def migrate(table: Path, workdir: Path, target: str, options: list[str]) -> dict:
    if target == "postgres":
        schema = f"bench_batch_{uuid.uuid4().hex[:8]}"
        try:
            return measure([str(BIN / "delta2sql"), "migrate", str(table), "--target", "postgres", "--json", *options],
                           {"DELTA2SQL_PG_SCHEMA": schema})
        finally:
            subprocess.run(["psql", "-q", "-c", f"drop schema if exists {schema} cascade"], check=False,
                           env={**os.environ, "PGHOST": os.environ.get("PGHOST", "127.0.0.1"),
                                "PGUSER": os.environ.get("PGUSER", "postgres"),
                                "PGDATABASE": os.environ.get("PGDATABASE", "postgres")})
    catalog = workdir / "catalog.duckdb"
    catalog.unlink(missing_ok=True)
    try:
        return measure([str(BIN / "delta2sql"), "migrate", str(table), "--catalog", str(catalog), "--json", *options])
    finally:
        catalog.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--target", default="duckdb", choices=["duckdb", "postgres"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[100, 500, 1000, 2500, 10000])
    parser.add_argument("--checkpoint-rows", type=int, nargs="+", default=[100_000, 250_000, 500_000, 2_000_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(f"{'table':6} {'option':28} {'wall s':>8} {'peak RSS MB':>12}")
        for kind, flag, values in (("long", "--batch-size", args.batch_sizes),
                                   ("wide", "--checkpoint-batch-rows", args.checkpoint_rows)):
            table = workdir / kind
            subprocess.run([str(BIN / "python"), str(REPO / "scripts" / "bench_tables.py"), kind, str(args.scale),
                            str(table)], check=True)
            for value in values:
                result = migrate(table, workdir, args.target, [flag, str(value)])
                print(f"{kind:6} {flag + ' ' + str(value):28} {result['seconds']:8.2f} {result['peak_rss_mb']:12}",
                      flush=True)
            shutil.rmtree(table)


if __name__ == "__main__":
    main()
