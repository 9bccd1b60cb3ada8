"""What the catalog knows about each table, and how far its `_delta_log` has moved on since."""

from __future__ import annotations

from pathlib import Path

from delta2sql.catalog import Catalog
from delta2sql.errors import Delta2SqlError
from delta2sql.extract import load_sql
from delta2sql.log_listing import plan_segment
from delta2sql.reference import create_reference_tables


def table_status(catalog: Catalog, names: list[str] | None = None) -> list[dict]:
    with catalog.connect() as con:
        con.execute_script(load_sql("create_landing_tables.sql"))
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
        row["versions_behind"] = _versions_behind(Path(row["table_uri"]), row["latest_version"])
    return rows


def _versions_behind(root: Path, latest_version: int) -> int | str:
    """New versions in the log since the catalog's latest, or why that cannot be told."""
    try:
        return plan_segment(root).latest_version - latest_version
    except Delta2SqlError as exc:
        return f"unknown: {exc}"
