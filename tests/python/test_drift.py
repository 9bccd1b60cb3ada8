"""`delta2sql drift`: new versions, changed or vanished log files and disagreeing checkpoints
are told apart by exit code."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
from conftest import invoke_cli
from deltalake import DeltaTable, write_deltalake
from fixtures.deltalake_tables import DELTALAKE_FIXTURES


def drift(table_name: str, catalog) -> tuple[int, list[str]]:
    result = invoke_cli(catalog, "drift", table_name)
    kinds = [e["finding"] for e in map(json.loads, result.output.splitlines()) if e.get("event") == "drift"]
    return result.exit_code, kinds


def migrated(tmp_path, catalog, fixture: str):
    table = tmp_path / "t"
    DELTALAKE_FIXTURES[fixture](table)
    assert invoke_cli(catalog, "migrate", str(table)).exit_code == 0
    return table, catalog


def test_no_drift_then_behind(tmp_path, catalog):
    table, catalog = migrated(tmp_path, catalog, "appends")
    assert drift("t", catalog) == (0, [])
    write_deltalake(str(table), pa.table({"id": pa.array([99], pa.int64()), "label": pa.array(["row-99"])}), mode="append")
    assert drift("t", catalog) == (3, ["behind"])


def test_changed_and_disappeared_log_files(tmp_path, catalog):
    table, catalog = migrated(tmp_path, catalog, "appends")
    commits = sorted((table / "_delta_log").glob("*.json"))
    commits[-1].write_bytes(commits[-1].read_bytes() + b"\n")
    assert drift("t", catalog) == (4, ["changed"])
    commits[1].unlink()
    code, kinds = drift("t", catalog)
    assert code == 4 and sorted(kinds) == ["changed", "disappeared", "unreplayable"]


def test_checkpoint_that_disagrees(tmp_path, catalog):
    table, catalog = migrated(tmp_path, catalog, "appends")
    DeltaTable(str(table)).create_checkpoint()  # agrees with the catalog: no drift
    assert drift("t", catalog) == (0, [])
    checkpoint = next((table / "_delta_log").glob("*.checkpoint.parquet"))
    rows = pq.read_table(checkpoint)
    adds = [i for i, add in enumerate(rows.column("add").to_pylist()) if add]
    pq.write_table(rows.take([i for i in range(rows.num_rows) if i != adds[0]]), checkpoint)  # one live file lost
    code, kinds = drift("t", catalog)
    assert code == 5 and "checkpoint_disagrees" in kinds
