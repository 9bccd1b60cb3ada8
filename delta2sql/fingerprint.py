"""Canonical fingerprints of a table's catalog rows, comparable across engines and runs.

A fingerprint is (row count, sha256 of the sorted canonical rows) per catalog relation. Values
are normalised to what the engines can agree on: booleans as 0/1 (SQLite has no boolean),
timestamps as 'YYYY-MM-DD HH:MM:SS.mmm' text (SQLite stores text), everything else as is.
Sorting happens in Python, so engine collations do not matter. Columns that record when
something ran (landed_at, migrated_at) are left out: two faithful runs differ there.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from delta2sql.catalog import CatalogConnection

# Every relation holding a table's migrated content, keyed by table_name.
RELATIONS = (
    "delta_log_tables", "delta_log_files", "delta_log_actions",
    "delta_tables", "delta_commits", "delta_files", "delta_removes", "delta_metadata",
    "delta_protocol", "delta_txns", "delta_domain_metadata", "delta_cdc_files",
)
VOLATILE_COLUMNS = {"landed_at", "migrated_at", "finalized_at"}


def _normalise(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:23]
    return value


def relation_fingerprint(con: CatalogConnection, relation: str, table_name: str,
                         ignored: frozenset[str] = frozenset()) -> tuple[int, str]:
    """`ignored` names more columns to leave out, e.g. those that describe where the table's
    log is stored (its URI, the objects' times and ETags) when comparing two stores."""
    cursor = con.execute(f"select * from {relation} where table_name = ?", [table_name])
    names = [d[0] for d in cursor.description]
    keep = [i for i, name in enumerate(names) if name not in VOLATILE_COLUMNS and f"{relation}.{name}" not in ignored]
    rows = sorted(
        json.dumps([_normalise(row[i]) for i in keep], ensure_ascii=False, separators=(",", ":"), default=str)
        for row in cursor.fetchall()
    )
    digest = hashlib.sha256()
    for row in rows:
        digest.update(row.encode("utf-8") + b"\n")
    return len(rows), digest.hexdigest()


def table_fingerprints(con: CatalogConnection, table_name: str,
                       ignored: frozenset[str] = frozenset()) -> dict[str, tuple[int, str]]:
    """Per relation; `ignored` holds `relation.column` names left out."""
    return {relation: relation_fingerprint(con, relation, table_name, ignored) for relation in RELATIONS}
