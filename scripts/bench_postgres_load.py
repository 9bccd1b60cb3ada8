"""Load throughput into PostgreSQL: delta2sql's landing next to a plain COPY of the same rows.

    .venv/bin/python scripts/bench_postgres_load.py [--scale 0.25]

Generates the `wide` benchmark table, then in one run:
  1. lands it into a fresh PostgreSQL schema with delta2sql (DuckDB reads and parses the log,
     each batch goes in by COPY ... FROM STDIN and commits with its progress row);
  2. exports exactly those landed rows to CSV and loads them into an empty copy of the table
     with a plain `COPY ... FROM STDIN` (psycopg), the floor any loader can reach.
Prints rows/s for both (1 is end to end, so it includes reading and parsing the log).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_tables import generate_wide  # noqa: E402

from delta2sql.catalog import Catalog  # noqa: E402
from delta2sql.progress import Reporter  # noqa: E402
from delta2sql.runs import RunOptions, land_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.25)
    args = parser.parse_args()
    schema = f"bench_load_{uuid.uuid4().hex[:8]}"
    catalog = Catalog(target="postgres", extra_env={"DELTA2SQL_PG_SCHEMA": schema})
    with tempfile.TemporaryDirectory() as tmp:
        table = generate_wide(Path(tmp) / "wide", args.scale)
        con = catalog.connect()
        try:
            started = time.perf_counter()
            stats = land_table(con, "wide", table, "postgres", RunOptions(), Reporter())
            ours = time.perf_counter() - started
            raw = con.raw
            csv = Path(tmp) / "rows.csv"
            with csv.open("wb") as out, raw.cursor().copy('copy "delta_log_actions" to stdout (format csv)') as copy:
                for chunk in copy:
                    out.write(chunk)
            raw.execute('create table "plain_copy" (like "delta_log_actions")')
            started = time.perf_counter()
            with raw.cursor().copy('copy "plain_copy" from stdin (format csv)') as copy, csv.open("rb") as f:
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
            plain = time.perf_counter() - started
            [(rows,)] = raw.execute('select count(*) from "plain_copy"').fetchall()
            csv_bytes = csv.stat().st_size
        finally:
            con.raw.execute(f'drop schema if exists "{schema}" cascade')
            con.close()
    assert rows == stats.actions
    print(f"rows: {rows:,} ({csv_bytes:,} bytes of CSV)")
    print(f"delta2sql landing (read + parse + COPY, batch commits)   : {ours:6.2f} s  {rows / ours:>10,.0f} rows/s")
    print(f"plain COPY of the same rows from CSV:                      {plain:6.2f} s  {rows / plain:>10,.0f} rows/s")
    print(f"ratio: {ours / plain:.2f}x the plain COPY time")


if __name__ == "__main__":
    try:
        main()
    except psycopg.OperationalError as exc:
        sys.exit(f"PostgreSQL unreachable: {exc}")
