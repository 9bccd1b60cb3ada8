"""What a failed or warned dbt data test found, table by table, without storing its failures.

dbt's run_results carry each test's compiled SQL, already in the target's dialect. Running it
again on the catalog, once per failed or warned test, gives the failing rows; `--store-failures`
would instead write them into a second schema (`<schema>_dbt_test__audit` on PostgreSQL and
DuckDB, another file on SQLite), and the catalog is one schema (ADR 0005). Only the first row
and the row count of each table leave the database, so a test failing on millions of rows costs
no memory here.

Every validation test returns `table_name`, `diff_status`, `expected` and `observed` columns,
so a failure can be attributed to tables and summarised without knowing the test.
"""

from __future__ import annotations

from dataclasses import dataclass

from delta2sql.catalog import CatalogConnection

ALL_TABLES = "*"
_ROWS, _ROW_NUMBER = "delta2sql_failing_rows", "delta2sql_failing_row_number"


@dataclass
class Finding:
    """The rows a test returned for one table (ALL_TABLES: for every table, or naming none)."""

    table_name: str
    rows: int
    first: dict


def is_data_test(node: dict) -> bool:
    """A data test, whose compiled SQL returns the failing rows (a unit test's returns the model's)."""
    return node["unique_id"].startswith("test.")


def node_name(node: dict) -> str:
    """A node's name in its unique_id (`<kind>.<project>.<name>[.<hash>]`): a test's check name, or
    for a unit test the name of the model it tests."""
    return node["unique_id"].split(".")[2]


def attribute_build(con: CatalogConnection, run_results: list[dict],
                    broken: list[dict]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(problems, warnings) per table name (ALL_TABLES: for every table of the build) of a dbt
    build whose `broken` nodes failed, errored or were skipped. A failed data test blames the
    tables its failing rows name; anything else (a model's error, a failed unit test) blames every
    table, and the nodes skipped after it are counted, not detailed."""
    broken = sorted(broken, key=lambda n: n["unique_id"])  # dbt lists nodes as they finish, on its threads
    failed_tests = [n for n in broken if n["status"] == "fail" and is_data_test(n)]
    errors = [n for n in broken if n not in failed_tests]
    skipped = [n for n in errors if n["status"] == "skipped"]
    problems = findings_by_table(con, failed_tests)
    everywhere = problems.setdefault(ALL_TABLES, [])
    everywhere += [f"dbt {n['unique_id']} {n['status']}: {n.get('message')}" for n in errors if n not in skipped]
    if skipped:
        models = list(dict.fromkeys(node_name(n) for n in skipped))  # a model's unit tests share its name
        everywhere.append(f"{len(skipped)} dbt nodes skipped after that ({', '.join(models[:3])}"
                          f"{', ...' if len(models) > 3 else ''})")
    warnings = findings_by_table(con, [n for n in run_results if n["status"] == "warn" and is_data_test(n)])
    return problems, warnings


def findings(con: CatalogConnection, node: dict) -> list[Finding]:
    """Per table, how many rows the test `node` (a run_results entry) returns now, and the first."""
    failures = f"(\n{node['compiled_code']}\n) as failures"  # new lines: the test may end in a -- comment
    columns = _columns(con, f"select * from {failures} limit 0")
    by_table = "table_name" in columns
    found = [Finding(row["table_name"] if by_table else ALL_TABLES, rows, row)
             for rows, row in _first_rows(con, failures, columns, "partition by table_name" if by_table else "")]
    if not found:  # the catalog changed since dbt ran the test (a concurrent run): the failure still stands
        found.append(Finding(ALL_TABLES, node["failures"], {
            "expected": "no rows", "observed": f"{node['failures']} rows when dbt ran the test, none when read back"}))
    return found


def _first_rows(con: CatalogConnection, failures: str, columns: list[str], partition: str) -> list[tuple[int, dict]]:
    """The first row of each partition, with the partition's row count: counted in the database,
    so only one row per table reaches Python. First in the order of the columns' text, which
    every engine has for every type (PostgreSQL's json has no order of its own): the same row at
    every run, where the order a test returns its rows in may change from one run to the next."""
    order = ", ".join('cast("{}" as text)'.format(column.replace('"', '""')) for column in columns)
    cursor = con.raw.execute(  # the target's own SQL: not through the DuckDB-to-target translation
        f"select * from (select failures.*, count(*) over ({partition}) as {_ROWS}, "
        f"row_number() over ({partition} order by {order}) as {_ROW_NUMBER} from {failures}) as numbered "
        f"where {_ROW_NUMBER} = 1"
    )
    names = [d[0] for d in cursor.description]
    first_rows = []
    for values in cursor.fetchall():
        row = dict(zip(names, values))
        rows = row.pop(_ROWS)
        del row[_ROW_NUMBER]
        first_rows.append((rows, row))
    return first_rows


def _columns(con: CatalogConnection, statement: str) -> list[str]:
    """The names of the columns `statement` returns (its rows are read and dropped)."""
    cursor = con.raw.execute(statement)
    names = [d[0] for d in cursor.description]
    cursor.fetchall()
    return names


def findings_by_table(con: CatalogConnection, tests: list[dict]) -> dict[str, list[str]]:
    """table_name -> what each failed (or warned) data test found for it: its name, and its first
    row's expected and observed values when the test returns them."""
    by_table: dict[str, list[str]] = {}
    for node in tests:
        outcome = {"fail": "failed", "warn": "warned"}.get(node["status"], node["status"])
        name = node_name(node)
        for finding in findings(con, node):
            found = ""
            if {"expected", "observed"} <= finding.first.keys():
                found = f": {finding.first['observed']} (expected: {finding.first['expected']})"
            by_table.setdefault(finding.table_name, []).append(f"check {name} {outcome}{found}")
    return by_table
