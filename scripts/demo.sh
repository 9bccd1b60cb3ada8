#!/usr/bin/env bash
# Set up, write a sample Delta table with delta-rs, migrate it into the embedded DuckDB catalog
# sample/lake.duckdb, validate it, and show a few catalog queries.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
rm -rf sample && mkdir -p sample
.venv/bin/delta2sql sample sample/events
.venv/bin/delta2sql migrate sample/events --name events --catalog sample/lake.duckdb
.venv/bin/delta2sql validate events --catalog sample/lake.duckdb
.venv/bin/python - <<'PY'
import duckdb
con = duckdb.connect("sample/lake.duckdb", read_only=True)
for title, sql in [
    ("tables", "select table_name, replay_start_version, latest_version, checkpoint_kind, status from delta_tables"),
    ("live files now, per partition", "select partition_values, count(*) as files, sum(size_bytes) as bytes from delta_files where table_name = 'events' and removed_version is null group by 1 order by 1"),
    ("live files at version 22 (time travel)", "select count(*) as files from delta_files where table_name = 'events' and added_version <= 22 and (removed_version is null or removed_version > 22)"),
    ("last commits", "select version, commit_timestamp, operation from delta_commits where table_name = 'events' order by version desc limit 5"),
]:
    print(f"\n-- {title}\n{sql}")
    con.sql(sql).show()
PY
