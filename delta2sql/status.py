"""What the catalog knows about each table, and how far its `_delta_log` has moved on since.

The drift shown here is the cheap kind (listing and file sizes: no file is read, no checkpoint
opened, nothing hashed): versions behind, landed log files gone or resized. `delta2sql drift TABLE` does the full comparison.
"""

from __future__ import annotations

import statistics

from delta2sql.catalog import Catalog
from delta2sql.drift import resized_or_gone
from delta2sql.errors import Delta2SqlError
from delta2sql.extract import load_sql
from delta2sql.landing_schema import create_landing_tables
from delta2sql.lifecycle import UNBUILT, Lease, describe_lease
from delta2sql.log_listing import latest_listed_version
from delta2sql.log_store import TableLog, open_log, session
from delta2sql.reference import create_reference_tables


def table_status(catalog: Catalog, names: list[str] | None = None) -> list[dict]:
    with session(), catalog.connect() as con:
        create_landing_tables(con)
        create_reference_tables(con)
        cursor = con.execute(load_sql("table_status.sql"))
        columns = [d[0] for d in cursor.description]
        rows = [dict(zip(columns, row)) for row in cursor.fetchall()]
        if names:
            missing = set(names) - {r["table_name"] for r in rows}
            if missing:
                raise Delta2SqlError(f"not in this catalog: {', '.join(sorted(missing))}")
            rows = [r for r in rows if r["table_name"] in names]
        for row in rows:
            lease = Lease.read(row.pop("owner_host"), row.pop("owner_pid"), row.pop("heartbeat_at"),
                               row.pop("lease_expires_at"), row["run_status"])
            row["run_owner"] = lease.owner if lease.host else None
            row["run_heartbeat_at"] = lease.heartbeat_at
            # a run still `running` is landed now, or was killed: its lease tells which
            row["run_interrupted"] = lease.interrupted
            row["run_lease"] = describe_lease(lease) if lease.landing else None
            if row["status"] in UNBUILT:  # nothing migrated yet to drift from
                row["versions_behind"], row["drift"] = None, "n/a: not migrated"
                continue
            compared = row["finalized_version"] if row["finalized_version"] is not None else row["latest_version"]
            landed = con.execute("select log_file, size_bytes from delta_log_files where table_name = ? "
                                 "and file_kind <> 'catalog_commit' and version <= ?",
                                 [row["table_name"], compared]).fetchall()
            try:
                log = open_log(row["table_uri"])
            except Delta2SqlError as exc:
                row["versions_behind"], row["drift"] = None, f"log unreadable: {exc}"
                continue
            row["versions_behind"], row["drift"] = _quick_drift(log, compared, landed)
    return rows


def estimate_record(catalog: Catalog) -> dict | None:
    """How this catalog's estimates have held: every built run that started with one, its
    landing and build against its range (`migration_runs`); None when no run had an estimate."""
    with catalog.connect() as con:
        create_landing_tables(con)
        rows = con.execute(
            "select estimated_seconds, estimate_low_seconds, estimate_high_seconds, landing_seconds + build_seconds "
            "from migration_runs where estimated_seconds > 0 and build_seconds is not null").fetchall()
    if not rows:
        return None
    errors = sorted((actual - midpoint) / midpoint for midpoint, _, _, actual in rows)
    return {"runs": len(rows), "within_range": sum(low <= actual <= high for _, low, high, actual in rows),
            "median_error": round(statistics.median(errors), 3), "min_error": round(errors[0], 3),
            "max_error": round(errors[-1], 3)}


def _quick_drift(log: TableLog, compared_version: int, landed: list[tuple[str, int]]) -> tuple[int | None, str]:
    """(new versions in the log since `compared_version`, a one-line drift summary)."""
    try:
        resized, gone = resized_or_gone(log, landed)
        behind = latest_listed_version(log) - compared_version
    except Delta2SqlError as exc:
        return None, f"log unreadable: {exc}"
    findings = [f"{behind} versions behind"] if behind else []
    findings += [f"{len(resized)} landed log files resized"] if resized else []
    findings += [f"{len(gone)} landed log files gone"] if gone else []
    return behind, "; ".join(findings) or "none"
