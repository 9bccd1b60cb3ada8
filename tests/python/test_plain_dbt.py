"""Plain `dbt build --target X`, as dbt users run it, right after `migrate` and after `validate`.

After a migrate, the snapshot and bytes tests have no reference data yet: the build must be
green, with one warning that names the table not validated yet and the command that validates
it, and never a database error (ADR 0004). After `validate`, every test passes, and the bytes
tests really compare (a reference row taken away makes them fail).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ENGINES, cli_options, make_catalog
from fixtures.deltalake_tables import DELTALAKE_FIXTURES

from delta2sql.project import profiles_dir, project_dir

DBT = Path(sys.executable).with_name("dbt")
DELTA2SQL = Path(sys.executable).with_name("delta2sql")
VALIDATION_STATE_TEST = "assert_tables_validated_at_latest_version"


def delta2sql(catalog, *args) -> None:
    """The CLI in its own process, as a user runs it."""
    options, env = cli_options(catalog)
    run = subprocess.run([str(DELTA2SQL), *args, *options], env={**os.environ, **env}, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def plain_dbt_build(catalog, target_path: Path) -> dict[str, dict]:
    """`dbt build --target X` with the catalog's variables, from the project directory; results by node name."""
    env = {**os.environ, **catalog.env(), "DBT_PROFILES_DIR": str(profiles_dir()),
           "DBT_TARGET_PATH": str(target_path), "DBT_LOG_PATH": str(target_path / "logs")}
    run = subprocess.run([str(DBT), "build", "--target", catalog.target], cwd=project_dir(), env=env,
                         capture_output=True, text=True)
    assert "Database Error" not in run.stdout, run.stdout
    assert "WARNING" not in run.stdout, run.stdout  # dbt's own warnings (not test warnings): none
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads((target_path / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[2]: r for r in results}


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_plain_dbt_build_after_migrate_and_after_validate(engine, tmp_path):
    table = tmp_path / "orders"
    DELTALAKE_FIXTURES["checkpoints"](table)  # a checkpoint and commits: every bytes test has rows
    catalog = make_catalog(engine, tmp_path, f"plain_{engine}")
    delta2sql(catalog, "migrate", str(table))

    after_migrate = plain_dbt_build(catalog, tmp_path / "after_migrate")
    not_ok = {name: r["status"] for name, r in after_migrate.items() if r["status"] not in ("success", "pass")}
    assert not_ok == {VALIDATION_STATE_TEST: "warn"}
    assert after_migrate[VALIDATION_STATE_TEST]["failures"] == 1  # one table, not validated yet

    delta2sql(catalog, "validate", "orders")  # exit 0: no check failed
    after_validate = plain_dbt_build(catalog, tmp_path / "after_validate")
    assert {r["status"] for r in after_validate.values()} <= {"success", "pass"}
    assert set(after_validate) == set(after_migrate)  # the same nodes ran both times
    # the replay's unit tests (DuckDB only, ADR 0002) run here and not in `migrate`'s build
    results = json.loads((tmp_path / "after_validate" / "run_results.json").read_text())["results"]
    unit_tests = [r["status"] for r in results if r["unique_id"].startswith("unit_test.")]
    assert set(unit_tests) <= {"pass"}
    assert bool(unit_tests) == (engine == "duckdb")

    if engine == "duckdb":  # the bytes tests compare for real once validated: take one reference away
        with catalog.connect() as con:
            con.execute("delete from reference_log_files where log_file = "
                        "(select min(log_file) from reference_log_files where table_name = 'orders')")
        env = {**os.environ, **catalog.env(), "DBT_PROFILES_DIR": str(profiles_dir()),
               "DBT_TARGET_PATH": str(tmp_path / "tampered")}
        run = subprocess.run([str(DBT), "build", "--target", "duckdb", "--select", "assert_log_files_unchanged"],
                             cwd=project_dir(), env=env, capture_output=True, text=True)
        assert run.returncode == 1 and "FAIL 1 assert_log_files_unchanged" in run.stdout, run.stdout
        docs = subprocess.run([str(DBT), "docs", "generate", "--target", "duckdb"], cwd=project_dir(), env=env,
                              capture_output=True, text=True)
        assert docs.returncode == 0 and "WARNING" not in docs.stdout, docs.stdout


@pytest.mark.duckdb
def test_after_an_upgrade_status_brings_the_catalog_up_to_date_for_plain_dbt(tmp_path):
    """A catalog an older delta2sql wrote lacks a table the new one declares (here a reference
    table, dropped): plain dbt stops at it, and one `delta2sql status` adds it (README)."""
    table = tmp_path / "orders"
    DELTALAKE_FIXTURES["appends"](table)
    catalog = make_catalog("duckdb", tmp_path, "upgraded")
    delta2sql(catalog, "migrate", str(table))
    with catalog.connect() as con:
        con.execute("drop table reference_checkpoint_differences")
    env = {**os.environ, **catalog.env(), "DBT_PROFILES_DIR": str(profiles_dir()),
           "DBT_TARGET_PATH": str(tmp_path / "before_status"), "DBT_LOG_PATH": str(tmp_path / "logs")}
    run = subprocess.run([str(DBT), "build", "--target", "duckdb"], cwd=project_dir(), env=env, capture_output=True,
                         text=True, check=False)
    assert run.returncode == 1 and "reference_checkpoint_differences does not exist" in run.stdout, run.stdout
    delta2sql(catalog, "status")
    after_status = plain_dbt_build(catalog, tmp_path / "after_status")
    assert {r["status"] for r in after_status.values()} <= {"success", "pass", "warn"}


def test_plain_dbt_never_builds_into_a_catalog_that_is_not_there(tmp_path):
    """Unset, DELTA2SQL_CATALOG is an error before anything is opened; pointing at a database
    without a catalog stops the run before any model, saying which file it looked at."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELTA2SQL_")}
    env.update(DBT_PROFILES_DIR=str(profiles_dir()), DBT_TARGET_PATH=str(tmp_path / "target"),
               DBT_LOG_PATH=str(tmp_path / "logs"))
    unset = subprocess.run([str(DBT), "build"], cwd=project_dir(), env=env, capture_output=True, text=True)
    assert unset.returncode != 0 and "DELTA2SQL_CATALOG" in unset.stdout, unset.stdout
    assert not (project_dir() / "delta2sql.duckdb").exists()

    elsewhere = tmp_path / "not_a_catalog.duckdb"
    wrong = subprocess.run([str(DBT), "build"], cwd=project_dir(), env={**env, "DELTA2SQL_CATALOG": str(elsewhere)},
                           capture_output=True, text=True)
    assert wrong.returncode != 0 and f"no delta2sql catalog in {elsewhere}" in wrong.stdout, wrong.stdout
    assert "Database Error" not in wrong.stdout and "PASS=" not in wrong.stdout

