"""The transpiler: generated models are current, translations are right, and what sqlglot
cannot translate fails loudly."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from conftest import REPO, run_fleet

from delta2sql.transpile import TranspileError, transpile_dbt_sql, transpile_sql


def test_transpiled_models_are_current():
    result = subprocess.run([sys.executable, "scripts/transpile_models.py", "--check"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("duckdb_sql", "target", "expected"),
    [
        ("select epoch_ms(t) from x", "postgres", "SELECT TO_TIMESTAMP(CAST(t AS DOUBLE PRECISION) / 1000) AT TIME ZONE 'UTC' FROM x"),
        ("select epoch_ms(t) from x", "sqlite", "SELECT STRFTIME('%Y-%m-%d %H:%M:%f', CAST(t AS REAL) / 1000.0, 'unixepoch') FROM x"),
        ("select json_extract_string(j, '$.a') from x", "postgres", "SELECT JSON_EXTRACT_PATH_TEXT(CAST(j AS JSON), 'a') FROM x"),
        ("select json_extract_string(j, '$.a') from x", "sqlite", "SELECT j ->> '$.a' FROM x"),
        ("select a is distinct from b from x", "sqlite", "SELECT a IS NOT b FROM x"),
        ("select * from x where a = ?", "postgres", "SELECT * FROM x WHERE a = %s"),
        ("create table t (a varchar, b bigint, c boolean, d timestamp)", "postgres",
         "CREATE TABLE t (a TEXT, b BIGINT, c BOOLEAN, d TIMESTAMP)"),
    ],
)
def test_translations(duckdb_sql, target, expected):
    assert transpile_sql(duckdb_sql, target, pretty=False) == expected


def test_jinja_survives_transpilation():
    source = "{{ config(tags=['x']) }}\n-- why\nselect a from {{ ref('m') }} where {{ in_scope('a') }}\n"
    assert transpile_dbt_sql(source, "postgres") == (
        "{{ config(tags=['x']) }}\n-- why\nSELECT\n  a\nFROM {{ ref('m') }}\nWHERE\n  {{ in_scope('a') }}\n"
    )


@pytest.mark.parametrize("source", [
    "select a from t {% if x %} where b {% endif %}",  # Jinja control flow cannot be parsed
    "select from where",  # not SQL
])
def test_untranslatable_sql_raises(source):
    with pytest.raises(TranspileError):
        transpile_dbt_sql(source, "sqlite")


def test_sqlite_marts_follow_the_contract(fixture_tables, fleet_dir):
    """dbt-sqlite cannot enforce contracts; the mart columns are checked against them here."""
    run = run_fleet("fixtures", "sqlite", fixture_tables, fleet_dir)
    with run.catalog.connect() as con:
        for path in sorted((REPO / "models" / "marts" / "catalog").glob("*.yml")):
            for model in yaml.safe_load(path.read_text())["models"]:
                declared = [c["name"] for c in model["columns"]]
                actual = [row[1] for row in con.execute(f"pragma table_info({model['name']})").fetchall()]
                assert actual == declared, model["name"]
