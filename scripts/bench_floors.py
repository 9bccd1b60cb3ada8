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
  - PostgreSQL (unless --no-postgres; the wide table is migrated into a scratch schema first):
    one dbt invocation there; ingesting the wide table's landed rows, as they are, from a
    Parquet file by ADBC's driver (binary COPY written in C++: the fastest client measured);
    and the replay's irreducible query, the window that orders every file's events over the
    landed rows, created as a table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import uuid
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
catalog = Catalog(target="postgres") if sys.argv[1] == "postgres" else Catalog(target="duckdb", path=Path(sys.argv[1]))
run_dbt(["build", "--select", "stg_delta_log__tables"], catalog, Reporter())
"""
PG_EXPORT = """
import os, sys, adbc_driver_postgresql.dbapi as adbc, pyarrow.parquet as pq
uri = "postgresql://{PGUSER}@{PGHOST}:{PGPORT}/{PGDATABASE}".format(**os.environ)
with adbc.connect(uri) as con, con.cursor() as cur:
    cur.execute(f'select * from "{os.environ["DELTA2SQL_PG_SCHEMA"]}".delta_log_actions')
    pq.write_table(cur.fetch_arrow_table(), sys.argv[1])
    cur.execute(f'create table "{os.environ["DELTA2SQL_PG_SCHEMA"]}".ingested (like "{os.environ["DELTA2SQL_PG_SCHEMA"]}".delta_log_actions)')
    con.commit()
"""
PG_INGEST = """
import os, sys, pyarrow.parquet as pq, adbc_driver_postgresql.dbapi as adbc
uri = "postgresql://{PGUSER}@{PGHOST}:{PGPORT}/{PGDATABASE}".format(**os.environ)
with adbc.connect(uri) as con, con.cursor() as cur:
    cur.adbc_ingest(sys.argv[2], pq.ParquetFile(sys.argv[1]).iter_batches(65_536), mode="append",
                    db_schema_name=os.environ["DELTA2SQL_PG_SCHEMA"])
    con.commit()
"""
PG_WINDOW = """
import os, psycopg
with psycopg.connect(f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} user={os.environ['PGUSER']} "
                     f"dbname={os.environ['PGDATABASE']}") as con:
    con.execute(f'set search_path to "{os.environ["DELTA2SQL_PG_SCHEMA"]}"')
    con.execute(
        "create table events_ordered as select path, version, log_file, line_number, action_type, "
        "lead(version) over (partition by table_name, path, dv_id order by version, log_file, line_number) as next_event_version "
        "from delta_log_actions where (action_type = 'add' and source in ('checkpoint', 'commit')) "
        "or (action_type = 'remove' and source = 'commit')")
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


def postgres_floors(work: Path) -> dict[str, float]:
    """The floors of the PostgreSQL path, in a scratch schema dropped afterwards."""
    env = {"PGHOST": os.environ.get("PGHOST", "127.0.0.1"), "PGPORT": os.environ.get("PGPORT", "5432"),
           "PGUSER": os.environ.get("PGUSER", "postgres"), "PGDATABASE": os.environ.get("PGDATABASE", "postgres"),
           "DELTA2SQL_PG_SCHEMA": f"floors_{uuid.uuid4().hex[:8]}", "DELTA2SQL_TARGET": "postgres", **PYTHONPATH}

    def pg_seconds(code: str, *args: str) -> float:
        return measure([str(BIN / "python"), "-c", code, *args], env)["seconds"]

    try:
        measure([str(BIN / "delta2sql"), "migrate", str(work / "wide"), "--target", "postgres", "--json"], env)
        measure([str(BIN / "python"), "-c", PG_EXPORT, str(work / "landed.parquet")], env)
        pg_seconds(DBT_START, "postgres")  # warm, as for DuckDB
        return {
            "one dbt invocation on PostgreSQL": pg_seconds(DBT_START, "postgres"),
            "PostgreSQL ingests the wide landed rows (ADBC)": pg_seconds(PG_INGEST, str(work / "landed.parquet"),
                                                                          "ingested"),
            "PostgreSQL orders the wide file events (window)": pg_seconds(PG_WINDOW),
        }
    finally:
        subprocess.run(["psql", "-q", "-c", f'drop schema if exists "{env["DELTA2SQL_PG_SCHEMA"]}" cascade'],
                       check=False, env={**os.environ, **env, "PGOPTIONS": "--client-min-messages=warning"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--no-postgres", action="store_true")
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
        if not args.no_postgres:
            measured |= postgres_floors(work)
    wide, long_ = measured["delta-rs load, wide"], measured["delta-rs load, long"]
    print(f"scale {args.scale}")
    print(f"{'step':48} {'wall s':>7} {'x wide':>7} {'x long':>7}")
    for step, value in measured.items():
        print(f"{step:48} {value:7.2f} {value / wide:7.2f} {value / long_:7.2f}")


if __name__ == "__main__":
    main()
