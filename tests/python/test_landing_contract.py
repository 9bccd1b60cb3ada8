"""The landing columns are declared once, in the sources YAML (models/staging/delta_log/
_delta_log__sources.yml); the landing DDL and the staging models' select lists are held to it,
in names and types, so a field added in one place and forgotten in another fails here."""

from __future__ import annotations

import re

import pytest
import sqlglot
import yaml
from conftest import REPO, RecordingReporter
from fixtures.deltalake_tables import DELTALAKE_FIXTURES
from sqlglot import exp

from delta2sql.catalog import Catalog
from delta2sql.landing_schema import declared_columns as ddl_columns
from delta2sql.migrate import TableSpec, migrate_tables

STAGING = REPO / "models" / "staging" / "delta_log"
# what each base model passes through unchanged (select actions.* / files.*)
BASE_MODELS = {"base_delta_log__published_actions": "delta_log_actions",
               "base_delta_log__published_log_files": "delta_log_files"}


def declared_columns() -> dict[str, list[tuple[str, str]]]:
    """landing table -> [(column, data_type)] as the sources YAML declares them, in order."""
    sources = yaml.safe_load((STAGING / "_delta_log__sources.yml").read_text())["sources"]
    [landing] = [s for s in sources if s["name"] == "delta_log"]
    return {t["name"]: [(c["name"], c["data_type"]) for c in t["columns"]] for t in landing["tables"]}


def same_type(a: str, b: str) -> bool:
    return exp.DataType.build(a, dialect="duckdb") == exp.DataType.build(b, dialect="duckdb")


def test_every_landing_column_is_declared_with_a_type():
    declared = declared_columns()
    assert set(declared) == {"delta_log_tables", "delta_log_files", "delta_log_actions"}
    assert all(columns and all(t for _, t in columns) for columns in declared.values())


def test_landing_ddl_matches_the_sources_yaml():
    ddl = ddl_columns()
    for table, columns in declared_columns().items():
        assert [name for name, _ in ddl[table]] == [name for name, _ in columns], table
        wrong = [(name, ddl_type, yaml_type) for (name, ddl_type), (_, yaml_type) in zip(ddl[table], columns)
                 if not same_type(ddl_type, yaml_type)]
        assert not wrong, f"{table}: DDL type differs from the sources YAML: {wrong}"


def staging_models() -> dict[str, tuple[str, str]]:
    """staging model name -> (landing table it reads, its SQL with the Jinja resolved to that table)."""
    models = {}
    for path in sorted(STAGING.glob("stg_delta_log__*.sql")):
        sql = path.read_text()
        reads = re.findall(r"\{\{\s*(?:ref\('(\w+)'\)|source\('delta_log',\s*'(\w+)'\))\s*\}\}", sql)
        [table] = {BASE_MODELS.get(ref, ref) if ref else source for ref, source in reads}
        models[path.stem] = (table, re.sub(r"\{\{.*?\}\}", table, sql))
    return models


def test_staging_select_lists_read_declared_columns():
    declared = {table: {name for name, _ in columns} for table, columns in declared_columns().items()}
    for model, (table, sql) in staging_models().items():
        tree = sqlglot.parse_one(sql, read="duckdb")
        aliases = {a.alias for a in tree.find_all(exp.Alias)}
        read = {c.name for c in tree.find_all(exp.Column)} - aliases
        assert read <= declared[table], f"{model} selects columns {table} does not declare: {read - declared[table]}"


@pytest.fixture(scope="module")
def built_catalog(tmp_path_factory) -> Catalog:
    root = tmp_path_factory.mktemp("contract")
    DELTALAKE_FIXTURES["appends"](root / "t")
    catalog = Catalog("duckdb", root / "c.duckdb")
    [outcome] = migrate_tables([TableSpec(root / "t", "t")], catalog, RecordingReporter())
    assert outcome.status == "migrated", outcome.error
    return catalog


def test_built_landing_tables_and_staging_views_have_the_declared_types(built_catalog):
    """What the engine made of the DDL and of each staging view's pass-through columns."""
    declared = declared_columns()

    def described(relation: str) -> dict[str, str]:
        with built_catalog.connect() as con:
            return dict(con.execute("select column_name, data_type from information_schema.columns "
                                    "where table_name = ?", [relation]).fetchall())

    for table, columns in declared.items():
        actual = described(table)
        assert {n: t for n, t in columns if not same_type(actual[n], t)} == {}, table
    for model, (table, _) in staging_models().items():
        types = dict(declared[table])
        view = described(model)
        wrong = {n: (t, types[n]) for n, t in view.items() if n in types and not same_type(t, types[n])}
        assert view and not wrong, f"{model}: {wrong}"
