"""Deterministic, protocol-valid benchmark tables (logs only: no data files are needed).

- wide: a classic checkpoint holding ~1.8M live files at version 19,000, then 1,000 JSON commits
  (100 adds and 10 removes each), partitioned, stats on every add;
- long: 100,000 JSON commits and no checkpoint (2 adds and 1 remove per commit).

`scale` multiplies the file and commit counts (the scaling series). Content depends only on the
arguments, so two generations are byte-identical apart from file modification times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TABLE_ID = "00000000-0000-4000-8000-0000000be7c4"
SCHEMA = json.dumps({"type": "struct", "fields": [
    {"name": "id", "type": "long", "nullable": True, "metadata": {}},
    {"name": "part", "type": "integer", "nullable": True, "metadata": {}},
]})
PARTITIONS = 100
T0 = 1_700_000_000_000  # epoch ms of version 0


def _protocol_and_metadata() -> list[dict]:
    return [
        {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
        {"metaData": {"id": TABLE_ID, "format": {"provider": "parquet", "options": {}}, "schemaString": SCHEMA,
                      "partitionColumns": ["part"], "configuration": {}, "createdTime": T0}},
    ]


def _add(file_id: int, version: int) -> dict:
    part = file_id % PARTITIONS
    return {"add": {
        "path": f"part={part}/part-{file_id:010d}.snappy.parquet",
        "partitionValues": {"part": str(part)}, "size": 1000 + file_id % 9000,
        "modificationTime": T0 + version * 1000, "dataChange": True,
        "stats": _stats(file_id),
    }}


def _stats(file_id: int) -> str:
    return (f'{{"numRecords":{100 + file_id % 900},"minValues":{{"id":{file_id * 1000}}},'
            f'"maxValues":{{"id":{file_id * 1000 + 999}}},"nullCount":{{"id":0}}}}')


def _remove(file_id: int, version: int) -> dict:
    part = file_id % PARTITIONS
    return {"remove": {
        "path": f"part={part}/part-{file_id:010d}.snappy.parquet", "deletionTimestamp": T0 + version * 1000,
        "dataChange": True, "extendedFileMetadata": True, "partitionValues": {"part": str(part)},
        "size": 1000 + file_id % 9000,
    }}


def _write_commit(log: Path, version: int, actions: list[dict]) -> None:
    info = {"commitInfo": {"timestamp": T0 + version * 1000, "operation": "WRITE",
                           "operationParameters": {"mode": "Append"}}}
    lines = [json.dumps(a, separators=(",", ":")) for a in [info, *actions]]
    path = log / f"{version:020d}.json"
    path.write_text("\n".join(lines) + "\n")
    os.utime(path, ns=((T0 + version * 1000) * 1_000_000,) * 2)


def _checkpoint_table(num_files: int, version: int) -> pa.Table:
    """A classic checkpoint: protocol, metaData and `num_files` adds (vectorised)."""
    ids = np.arange(num_files, dtype=np.int64)
    parts = pc.cast(pa.array(ids % PARTITIONS), pa.string())
    paths = pc.binary_join_element_wise(
        "part=", parts, "/part-", pc.utf8_lpad(pc.cast(pa.array(ids), pa.string()), 10, "0"), ".snappy.parquet", "")
    stats = pc.binary_join_element_wise(
        '{"numRecords":', pc.cast(pa.array(100 + ids % 900), pa.string()),
        ',"minValues":{"id":', pc.cast(pa.array(ids * 1000), pa.string()),
        '},"maxValues":{"id":', pc.cast(pa.array(ids * 1000 + 999), pa.string()),
        '},"nullCount":{"id":0}}', "")
    partition_values = pa.MapArray.from_arrays(
        pa.array(np.arange(num_files + 1, dtype=np.int32)), pa.array(["part"] * num_files), parts)
    add = pa.StructArray.from_arrays(
        [paths, partition_values, pa.array(1000 + ids % 9000), pa.array(np.full(num_files, T0 + version * 1000)),
         pa.array(np.zeros(num_files, dtype=bool)), stats],
        names=["path", "partitionValues", "size", "modificationTime", "dataChange", "stats"])
    head = _protocol_and_metadata()
    protocol = pa.array([head[0]["protocol"], None] + [None] * num_files,
                        type=pa.struct([("minReaderVersion", pa.int32()), ("minWriterVersion", pa.int32())]))
    metadata_row = dict(head[1]["metaData"], configuration=[], format={"provider": "parquet", "options": []})
    metadata = pa.array([None, metadata_row] + [None] * num_files, type=pa.struct([
        ("id", pa.string()), ("format", pa.struct([("provider", pa.string()), ("options", pa.map_(pa.string(), pa.string()))])),
        ("schemaString", pa.string()), ("partitionColumns", pa.list_(pa.string())),
        ("configuration", pa.map_(pa.string(), pa.string())), ("createdTime", pa.int64())]))
    nulls = pa.nulls(2, add.type)
    return pa.table({"protocol": protocol, "metaData": metadata, "add": pa.concat_arrays([nulls, add])})


def generate_wide(root: Path, scale: float = 1.0) -> Path:
    num_files = int(1_800_000 * scale)
    num_commits = int(1_000 * scale)
    checkpoint_version = 19_000
    log = root / "_delta_log"
    log.mkdir(parents=True)
    table = _checkpoint_table(num_files, checkpoint_version)
    path = log / f"{checkpoint_version:020d}.checkpoint.parquet"
    pq.write_table(table, path, row_group_size=100_000)
    (log / "_last_checkpoint").write_text(json.dumps({"version": checkpoint_version, "size": table.num_rows,
                                                      "sizeInBytes": path.stat().st_size, "numOfAddFiles": num_files}))
    next_id, next_removed = num_files, 0
    for version in range(checkpoint_version + 1, checkpoint_version + 1 + num_commits):
        actions = [_add(next_id + i, version) for i in range(100)]
        actions += [_remove(next_removed + i, version) for i in range(10)]
        next_id, next_removed = next_id + 100, next_removed + 10
        _write_commit(log, version, actions)
    return root


def generate_long(root: Path, scale: float = 1.0, crc: bool = False) -> Path:
    """100,000 commits at scale 1, each adding two files and removing one; with `crc`, a
    `<v>.crc` (numFiles, tableSizeBytes) for every version, as Spark writes them."""
    num_commits = int(100_000 * scale)
    log = root / "_delta_log"
    log.mkdir(parents=True)
    first = [*_protocol_and_metadata(), _add(0, 0), _add(1, 0)]
    _write_commit(log, 0, first)
    live_files, live_bytes = 2, sum(a["add"]["size"] for a in first[2:])
    for version in range(num_commits):
        if version:
            actions = [_add(2 * version, version), _add(2 * version + 1, version), _remove(2 * version - 2, version)]
            _write_commit(log, version, actions)
            live_files += 1
            live_bytes += actions[0]["add"]["size"] + actions[1]["add"]["size"] - actions[2]["remove"]["size"]
        if crc:
            protocol, metadata = (a[k] for a, k in zip(_protocol_and_metadata(), ("protocol", "metaData")))
            (log / f"{version:020d}.crc").write_text(json.dumps(
                {"tableSizeBytes": live_bytes, "numFiles": live_files, "numMetadata": 1, "numProtocol": 1,
                 "metadata": metadata, "protocol": protocol}, separators=(",", ":")))
    return root


def append_long_commits(root: Path, count: int) -> int:
    """`count` more commits of the long shape after the newest one; returns the new latest version."""
    log = root / "_delta_log"
    latest = max(int(p.name[:20]) for p in log.glob("*.json"))
    for version in range(latest + 1, latest + 1 + count):
        _write_commit(log, version, [_add(2 * version, version), _add(2 * version + 1, version),
                                     _remove(2 * version - 2, version)])
    return latest + count


GEN_DELTA_LOG = Path(__file__).resolve().parents[2] / "shared" / "bench" / "gen_delta_log.py"


def generate_wide_delta_rs(root: Path, scale: float = 1.0) -> Path:
    """The wide shape with a checkpoint delta-rs itself wrote (`DeltaTable.create_checkpoint()`):
    1M-row row groups and delta-rs's full checkpoint schema, as real checkpoints are, unlike the
    pyarrow-written one of `generate_wide`. At scale 1: 10,000 files at version 0, then commits
    1..20,000 of 100 adds and 10 removes, checkpointed at 19,000 (1.72M actions, 430 MB)."""
    subprocess.run([sys.executable, str(GEN_DELTA_LOG), str(root), "--initial-files", str(int(10_000 * scale)),
                    "--commits", str(int(20_000 * scale)), "--adds", "100", "--removes", "10",
                    "--checkpoint-at", str(int(19_000 * scale))], check=True, stdout=subprocess.DEVNULL)
    return root


if __name__ == "__main__":
    kind, scale, target = sys.argv[1], float(sys.argv[2]), Path(sys.argv[3])
    generators = {"wide": generate_wide, "long": generate_long, "wide_delta_rs": generate_wide_delta_rs,
                  "long_crc": lambda root, s: generate_long(root, s, crc=True)}
    generators[kind](target, scale)
