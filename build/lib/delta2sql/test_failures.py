"""Read the rows a failed dbt test stored (`--store-failures`), to say which table failed and how.

Every validation test returns `table_name`, `diff_status`, `expected` and `observed` columns,
so a failure can be attributed to tables and summarised without knowing the test.
"""

from __future__ import annotations

from delta2sql.catalog import CatalogConnection

ALL_TABLES = "*"


def failure_rows(con: CatalogConnection, node: dict) -> list[dict]:
    relation = node.get("relation_name")
    if not relation:
        return []
    cursor = con.execute(f"select * from {relation}")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def findings_by_table(con: CatalogConnection, tests: list[dict]) -> dict[str, list[str]]:
    """table_name -> what each failed (or warned) test found for it: its name, and its first
    row's expected and observed values when the test returns them."""
    by_table: dict[str, list[str]] = {}
    for node in tests:
        outcome = {"fail": "failed", "warn": "warned"}.get(node["status"], node["status"])
        relation = node.get("relation_name")
        if not relation:
            continue
        name = node["unique_id"].split(".")[2]  # test.<project>.<name>[.<hash>]
        cursor = con.execute(f"select * from {relation} limit 1")
        columns = [d[0] for d in cursor.description]
        cursor.fetchall()
        if "table_name" not in columns:  # a test not written in the validation shape: blame every table
            by_table.setdefault(ALL_TABLES, []).append(f"check {name} {outcome}")
            continue
        for (table_name,) in con.execute(f"select distinct table_name from {relation}").fetchall():
            found = ""
            if {"expected", "observed"} <= set(columns):
                expected, observed = con.execute(
                    f"select expected, observed from {relation} where table_name = ? limit 1", [table_name]).fetchone()
                found = f": {observed} (expected: {expected})"
            by_table.setdefault(table_name, []).append(f"check {name} {outcome}{found}")
    return by_table
