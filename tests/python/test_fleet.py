"""`migrate --manifest tables.yml --parallel N`: tables migrate independently, a broken one does
not stop the others, and the summary and `status` say which is which. The migrated tables are
then held to delta-rs by `validate`."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner
from conftest import invoke_cli
from fixtures.deltalake_tables import DELTALAKE_FIXTURES

from delta2sql.cli import main


def events(output: str, kind: str) -> list[dict]:
    return [e for e in map(json.loads, (line for line in output.splitlines() if line.startswith("{"))) if e["event"] == kind]


def test_manifest_in_parallel_survives_a_broken_table(tmp_path, catalog):
    lake = tmp_path / "lake"
    for name, fixture in (("orders", "appends"), ("sales", "partitioned"), ("broken", "delete")):
        DELTALAKE_FIXTURES[fixture](lake / name)
    torn = max((lake / "broken" / "_delta_log").glob("*.json"))
    torn.write_bytes(torn.read_bytes()[:-30])
    manifest = tmp_path / "tables.yml"
    manifest.write_text(yaml.safe_dump({"tables": [
        {"path": "lake/orders"}, {"path": str(lake / "sales"), "name": "sales_eu"}, {"path": "lake/broken"},
    ]}))

    result = invoke_cli(catalog, "migrate", "--manifest", str(manifest), "--parallel", "2")
    assert result.exit_code == 1, result.output
    finished = {e["name"]: e for e in events(result.output, "migration_finished")}
    assert {n: e["status"] for n, e in finished.items()} == {"orders": "migrated", "sales_eu": "migrated", "broken": "failed"}
    assert torn.name in finished["broken"]["error"]
    [summary] = events(result.output, "fleet_finished")
    assert (summary["tables"], summary["migrated"], summary["failed"]) == (3, 2, 1)

    status = {e["table_name"]: e for e in events(invoke_cli(catalog, "status").output, "table_status")}
    assert {n: s["status"] for n, s in status.items()} == {"orders": "migrated", "sales_eu": "migrated", "broken": "landing"}
    assert status["broken"]["run_status"] == "failed"

    validation = invoke_cli(catalog, "validate", "orders", "sales_eu")
    assert validation.exit_code == 0, validation.output
    assert {e["table_name"] for e in events(validation.output, "check")} == {"orders", "sales_eu"}


def test_manifest_errors_name_the_entry(tmp_path):
    manifest = tmp_path / "tables.yml"
    manifest.write_text(yaml.safe_dump({"tables": [{"path": "a"}, {"path": "b", "name": "a"}]}))
    result = CliRunner().invoke(main, ["migrate", "--manifest", str(manifest), "--catalog", str(tmp_path / "c.duckdb")])
    assert result.exit_code == 1 and "repeated: a" in result.output
    manifest.write_text(yaml.safe_dump({"tables": [{"path": "a", "paht": "typo"}]}))
    result = CliRunner().invoke(main, ["migrate", "--manifest", str(manifest), "--catalog", str(tmp_path / "c.duckdb")])
    assert result.exit_code == 1 and "table 1: unknown key(s) paht" in result.output
