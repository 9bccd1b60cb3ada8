"""The floors under each benchmark target: what no migration built this way can go below.

    .venv/bin/python scripts/bench_floors.py [--scale 1]

The performance issue asks for ratios to delta-rs's load. A `delta2sql migrate` must at least
start Python and import its libraries, run one dbt invocation, store the log's rows in the
catalog and replay them; validation must at least load delta-rs itself (it is the oracle). This
script times those unavoidable parts, each as its own process, side by side with delta-rs in one
run, on the benchmark tables (scripts/bench_tables.py), and prints each as a ratio (every
process includes starting Python and its own imports; "python + import duckdb" says how much):
  - delta-rs load of wide and long (`DeltaTable` + `get_add_actions`), the denominators;
  - starting Python and importing what `migrate` imports (delta2sql, dbt, duckdb, pyarrow);
  - one dbt invocation building one view and its tests (partial parse warm): dbt's start;
  - DuckDB storing the wide checkpoint's rows as they are (`create table as select * from
    read_parquet`), with no parsing, checksum or JSON text;
  - DuckDB reading the long log's files (`read_blob` of every commit, bytes only);
  - PostgreSQL: a plain COPY of the wide table's landed rows (scripts/bench_postgres_load.py
    measures it beside our landing; its rows/s is taken from there, not repeated here).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

from bench import BIN, DELTA_RS_LOAD, REPO, measure

PYTHONPATH = {"PYTHONPATH": str(REPO)}  # this checkout's package, whatever the venv installed
IMPORTS = "import delta2sql.cli, delta2sql.migrate, dbt.cli.main, duckdb, pyarrow"
DBT_START = """
import sys
from pathlib import Path
from delta2sql.catalog import Catalog
from delta2sql.dbt_runner import run_dbt
from delta2sql.progress import Reporter
run_dbt(["build", "--select", "stg_delta_log__tables"], Catalog(target="duckdb", path=Path(sys.argv[1])), Reporter())
"""
STORE_CHECKPOINT = """
import glob, sys, duckdb
con = duckdb.connect(sys.argv[2])
con.execute("set preserve_insertion_order = false")
con.execute("create table rows as select * from read_parquet(?)", [glob.glob(sys.argv[1] + '/_delta_log/*.checkpoint.parquet')])
"""
READ_FILES = """
import sys, duckdb
con = duckdb.connect()
con.execute("select sum(octet_length(content)) from read_blob(?)", [sys.argv[1] + '/_delta_log/*.json']).fetchall()
"""


def seconds(code: str, *args: str) -> float:
    """Wall time of `python -c code args` as its own process (imports included)."""
    return measure([str(BIN / "python"), "-c", code, *args], PYTHONPATH)["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="delta2sql-floors-") as tmp:
        work = Path(tmp)
        for kind in ("wide", "long"):
            subprocess.run([str(BIN / "python"), str(REPO / "scripts" / "bench_tables.py"), kind, str(args.scale),
                            str(work / kind)], check=True)
        catalog = work / "catalog.duckdb"
        measure([str(BIN / "delta2sql"), "migrate", str(work / "long"), "--catalog", str(catalog), "--json"], PYTHONPATH)
        seconds(DBT_START, str(catalog))  # warms dbt's partial parse for this project
        measured = {
            "delta-rs load, wide": seconds(DELTA_RS_LOAD, str(work / "wide")),
            "delta-rs load, long": seconds(DELTA_RS_LOAD, str(work / "long")),
            "python + import duckdb": seconds("import duckdb"),
            "python + imports of migrate": seconds(IMPORTS),
            "one dbt invocation (1 view, 2 tests)": seconds(DBT_START, str(catalog)),
            "DuckDB stores the wide checkpoint rows": seconds(STORE_CHECKPOINT, str(work / "wide"), str(work / "rows.duckdb")),
            "DuckDB reads the long log's files": seconds(READ_FILES, str(work / "long")),
        }
    wide, long_ = measured["delta-rs load, wide"], measured["delta-rs load, long"]
    print(f"scale {args.scale}")
    print(f"{'step':42} {'wall s':>7} {'x wide':>7} {'x long':>7}")
    for step, value in measured.items():
        print(f"{step:42} {value:7.2f} {value / wide:7.2f} {value / long_:7.2f}")


if __name__ == "__main__":
    main()
