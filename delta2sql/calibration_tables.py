"""The synthetic Delta logs `delta2sql calibrate` migrates to measure this machine's rates.

Each table stresses some drivers of `estimate.Workload`, so that the fit can tell them apart:

- `tiny`: one commit of 10 files: the fixed costs;
- `checkpoint`, `lean_checkpoint` and `fat_checkpoint`: a checkpoint written by delta-rs
  (`create_checkpoint`, as real writers write them: its own schema, one row group of up to 1M
  rows) at version 1, after a commit 0 of many adds with statistics of 2 columns, of none and of
  24 (a wide table's): the cost per checkpoint row and per byte (version 1's own commit, which
  `migrate` lands too, is as small as a writer's);
- `split_checkpoint`: a delta-rs checkpoint of 100,000 adds repeated 20 times under new paths
  (2M live files, the size of a busy production table) and rewritten in row groups of 100,000
  rows, as pyarrow and other writers lay them out: the share of the cost that threads divide
  among row groups, and the build's cost per action at the scale estimates are booked on (over
  the tables of 400,000 actions alone, it drowned in the build's fixed cost);
- `small_commits` and `large_commits`: JSON commits only, of 3 and of 110 actions: the cost per
  commit file and per byte. `small_commits` holds 100,000 commits, a long log's size: from
  20,000, the build's cost per log file was lost in its run-to-run noise, and a long table's
  estimate missed by 38% into PostgreSQL.

Only logs are written, no data files: `migrate` reads nothing else. The actions look like a
writer's (partition values, per-column statistics, removes of live files) because parsing cost
grows with what an action holds.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from delta2sql.delta_rs import deltalake

EPOCH_MS = 1_700_000_000_000
STAT_COLUMNS = ["id", "value", *(f"c{i}" for i in range(22))]  # the columns statistics can describe
SCHEMA = {"type": "struct", "fields": [
    {"name": "id", "type": "long", "nullable": True, "metadata": {}},
    {"name": "value", "type": "double", "nullable": True, "metadata": {}},
    *({"name": name, "type": "double", "nullable": True, "metadata": {}} for name in STAT_COLUMNS[2:]),
    {"name": "part", "type": "string", "nullable": True, "metadata": {}}]}


@dataclass(frozen=True)
class Shape:
    name: str
    initial_files: int  # adds in commit 0
    commits: int  # commits after commit 0
    adds: int  # per commit
    removes: int  # per commit, of live files
    checkpoint: bool  # delta-rs writes a checkpoint at the latest version
    stat_columns: int = 2  # columns with statistics in each add
    row_group_rows: int | None = None  # the checkpoint rewritten in row groups of this many rows
    copies: int = 1  # the checkpoint's adds repeated this many times, each under new paths


def shapes(scale: float) -> list[Shape]:
    """The calibration tables at `scale` (1: 2.8 minutes of migrations into DuckDB here on
    2026-12-06, 3.7 into PostgreSQL)."""
    def n(count: int) -> int:
        return max(1, round(count * scale))
    return [
        Shape("tiny", 10, 0, 0, 0, False),
        Shape("checkpoint", n(400_000), 1, 1, 0, True),
        Shape("lean_checkpoint", n(400_000), 1, 1, 0, True, stat_columns=0),
        Shape("fat_checkpoint", n(100_000), 1, 1, 0, True, stat_columns=24),
        Shape("split_checkpoint", n(100_000), 1, 1, 0, True, row_group_rows=n(100_000), copies=20),
        Shape("small_commits", 100, n(100_000), 2, 1, False),
        Shape("large_commits", 100, n(1_000), 100, 10, False),
    ]


class _Writer:
    def __init__(self, root: Path, seed: int, stat_columns: int) -> None:
        self.stat_columns = stat_columns
        self.log = root / "_delta_log"
        self.log.mkdir(parents=True)
        self.random = random.Random(seed)
        self.live: list[tuple[str, str]] = []

    def add(self, version: int) -> dict:
        part = f"p{self.random.randrange(16)}"
        path = f"part={part}/part-{version:05d}-{uuid.UUID(int=self.random.getrandbits(128))}-c000.snappy.parquet"
        self.live.append((path, part))
        add = {"path": path, "partitionValues": {"part": part}, "size": self.random.randrange(10**4, 10**8),
               "modificationTime": EPOCH_MS + version * 1000, "dataChange": True}
        if not self.stat_columns:
            return {"add": add}
        columns = STAT_COLUMNS[:self.stat_columns]
        low = {name: self.random.randrange(10**6) if name == "id" else self.random.random() for name in columns}
        stats = {"numRecords": self.random.randrange(1, 100_000), "minValues": low,
                 "maxValues": {name: value + 10**6 if name == "id" else value + 1 for name, value in low.items()},
                 "nullCount": {name: self.random.randrange(3) for name in columns}}
        return {"add": {**add, "stats": json.dumps(stats, separators=(",", ":"))}}

    def remove(self, version: int) -> dict:
        index = self.random.randrange(len(self.live))
        path, part = self.live[index]
        self.live[index] = self.live[-1]
        self.live.pop()
        return {"remove": {"path": path, "deletionTimestamp": EPOCH_MS + version * 1000, "dataChange": True,
                           "extendedFileMetadata": True, "partitionValues": {"part": part}}}

    def commit(self, version: int, actions: list[dict], operation: str) -> None:
        info = {"commitInfo": {"timestamp": EPOCH_MS + version * 1000, "operation": operation,
                               "operationParameters": {"mode": "Append"}}}
        lines = [json.dumps(action, separators=(",", ":")) for action in [info, *actions]]
        (self.log / f"{version:020d}.json").write_text("\n".join(lines) + "\n")


def write_table(root: Path, shape: Shape, seed: int = 7) -> Path:
    """`shape`'s log at `root` (which must not exist)."""
    writer = _Writer(root, seed, shape.stat_columns)
    metadata = {"metaData": {"id": str(uuid.UUID(int=writer.random.getrandbits(128))),
                             "format": {"provider": "parquet", "options": {}}, "schemaString": json.dumps(SCHEMA),
                             "partitionColumns": ["part"], "configuration": {}, "createdTime": EPOCH_MS}}
    protocol = {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}
    writer.commit(0, [protocol, metadata, *(writer.add(0) for _ in range(shape.initial_files))], "CREATE TABLE")
    for version in range(1, shape.commits + 1):
        removes = [writer.remove(version) for _ in range(min(shape.removes, len(writer.live) - 1))]
        writer.commit(version, [*(writer.add(version) for _ in range(shape.adds)), *removes], "WRITE")
    if shape.checkpoint:
        deltalake.DeltaTable(str(root)).create_checkpoint()
        if shape.row_group_rows or shape.copies > 1:
            _relay(root, shape.row_group_rows, shape.copies)
    return root


def _relay(root: Path, row_group_rows: int | None, copies: int) -> None:
    """The table's checkpoint rewritten with its schema, its adds `copies` times (each copy's
    file names prefixed `cNN-`), in row groups of `row_group_rows`. Copies make a checkpoint of
    millions of rows in seconds, where delta-rs checkpointing a commit of that many adds takes
    a minute and 6 GB. Their adds are in no commit, so the commits before the checkpoint's are
    removed, as a log cleanup would: a reader starts from the checkpoint."""
    log = root / "_delta_log"
    [checkpoint] = log.glob("*.checkpoint.parquet")
    rows = pq.read_table(checkpoint)
    if copies > 1:
        has_add = pc.is_valid(rows["add"])
        adds = rows.filter(has_add)
        add = adds["add"].combine_chunks()
        column = rows.schema.get_field_index("add")
        tiles = [rows]
        for copy in range(1, copies):
            paths = pc.replace_substring_regex(add.field("path"), pattern="([^/]+)$", replacement=rf"c{copy:02d}-\1")
            renamed = pa.StructArray.from_arrays(
                [paths if field.name == "path" else add.field(field.name) for field in add.type],
                fields=list(add.type), mask=pc.invert(add.is_valid()))
            tiles.append(adds.set_column(column, rows.schema.field(column), renamed))
        rows = pa.concat_tables(tiles)
        version = int(checkpoint.name.split(".")[0])
        for commit in log.glob("*.json"):
            if int(commit.stem) < version:
                commit.unlink()
    pq.write_table(rows, checkpoint, row_group_size=row_group_rows or rows.num_rows)
    hint = log / "_last_checkpoint"
    found = json.loads(hint.read_text())
    found["size"] = rows.num_rows
    if "numOfAddFiles" in found:
        found["numOfAddFiles"] = pc.sum(pc.is_valid(rows["add"]).cast("int64")).as_py()
    if "sizeInBytes" in found:
        found["sizeInBytes"] = checkpoint.stat().st_size
    hint.write_text(json.dumps(found))
