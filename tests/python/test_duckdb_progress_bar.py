"""DuckDB's own progress bar stays off in every DuckDB connection delta2sql opens.

DuckDB's Python client draws the bar on stdout for any statement past 2 s. A wide table's landing
(1.8M checkpoint rows, 2026-12-07) wrote it between the JSON lines of `migrate --json`, which a
machine reading them line by line cannot parse. Whether it is on is asked of DuckDB itself.
dbt-duckdb runs its statements on cursors, where DuckDB starts with the bar off.
"""

from __future__ import annotations

import ast
from pathlib import Path

from delta2sql import dbt_runner
from delta2sql.catalog import Catalog, connect_duckdb

PACKAGE = Path(dbt_runner.__file__).parent
BAR = "select current_setting('enable_progress_bar')"


def test_connections_of_delta2sql_draw_no_bar(tmp_path):
    assert connect_duckdb().execute(BAR).fetchone() == (False,)
    with Catalog("duckdb", tmp_path / "catalog.duckdb").connect() as con:
        assert con.execute(BAR).fetchone() == (False,)


def test_the_package_opens_duckdb_only_through_connect_duckdb():
    """A `duckdb.connect` elsewhere, or DuckDB's module-level connection (`duckdb.sql(...)`, whose
    bar is on), would draw the bar again."""
    opened = []
    for module in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "duckdb":
                opened.append((module.name, f"from duckdb import {', '.join(a.name for a in node.names)}"))
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and ast.unparse(node.func.value) == "duckdb" and node.func.attr[0].islower()):
                opened.append((module.name, ast.unparse(node.func)))
    assert opened == [("catalog.py", "duckdb.connect")]
