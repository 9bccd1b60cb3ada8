"""Installed like any Python tool: a wheel in a fresh virtual environment, run from elsewhere.

The package must carry its dbt project and SQL; a path into the source tree that happens to
work in a checkout would fail here, because neither the checkout nor its `.venv` is visible.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import REPO
from fixtures.deltalake_tables import DELTALAKE_FIXTURES

pytestmark = pytest.mark.slow

IGNORED = shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__", "target", "logs",
                                 ".pytest_cache", "sample", "bench-out", "*.duckdb", "*.sqlite", "node_modules")


def run(command: list, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv holding delta2sql from a wheel built from a copy of this source tree."""
    work = tmp_path_factory.mktemp("install")
    source = work / "source"
    shutil.copytree(REPO, source, ignore=IGNORED)  # so no build output lands in the checkout
    build = run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", work / "wheels", source], cwd=work)
    assert "Successfully built delta2sql" in build.stdout
    # setuptools' own warnings (e.g. "Package 'delta2sql.sql' is absent from the packages configuration")
    warnings = re.findall(r"^.*(?:SetuptoolsDeprecationWarning|absent from the `?packages).*$",
                          build.stdout + build.stderr, re.M)
    assert warnings == []
    wheel = next((work / "wheels").glob("delta2sql-*.whl"))
    venv = work / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=work)
    run([venv / "bin" / "pip", "install", "--quiet", wheel], cwd=work)
    return venv / "bin"


def test_wheel_carries_the_dbt_project_and_sql(installed):
    shown = run([installed / "python", "-c",
                 "import delta2sql.project as p; print(p.project_dir()); print(p.SQL_DIR)"], cwd=installed)
    project, sql = (Path(line) for line in shown.stdout.split())
    assert REPO not in project.parents and project != REPO
    shipped = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
    expected = {p.relative_to(REPO).as_posix() for name in ("models", "macros", "tests/dbt", "transpiled")
                for p in (REPO / name).rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert expected | {"dbt_project.yml", "profiles/profiles.yml"} <= shipped
    assert {p.name for p in sql.glob("*.sql")} == {p.name for p in (REPO / "delta2sql" / "sql").glob("*.sql")}


def test_installed_cli_migrates_and_validates_from_another_directory(installed, tmp_path):
    table = tmp_path / "tables" / "events"
    DELTALAKE_FIXTURES["partitioned"](table)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": f"{installed}:/usr/bin:/bin", "DELTA2SQL_CATALOG": ""}

    assert run([installed / "delta2sql", "--version"], cwd=elsewhere, env=env).stdout.startswith("delta2sql ")
    run([installed / "delta2sql", "migrate", table, "--catalog", "lake.duckdb"], cwd=elsewhere, env=env)
    validated = run([installed / "delta2sql", "validate", "events", "--catalog", "lake.duckdb", "--json"],
                    cwd=elsewhere, env=env)
    checks = [json.loads(line) for line in validated.stdout.splitlines() if '"event": "check"' in line]
    assert checks and all(c["status"] in ("pass", "warn") for c in checks)
    assert {c["level"] for c in checks} == {"structure", "snapshot", "bytes"}

    from deltalake import DeltaTable  # the oracle: delta-rs's live files

    live = set(DeltaTable(str(table)).get_add_actions().column("path").to_pylist())
    with duckdb.connect(str(elsewhere / "lake.duckdb"), read_only=True) as con:
        stored = {p for (p,) in con.execute(
            "select path from delta_files where table_name = 'events' and removed_version is null").fetchall()}
    assert stored == live
    assert sorted(p.name for p in elsewhere.iterdir()) == ["lake.duckdb"]  # nothing else written here
