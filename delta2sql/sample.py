"""`delta2sql sample PATH`: a small, deterministic Delta table written by delta-rs, to try the
tool on before pointing it at real tables (the README's session uses it).

30 versions of an `events` table partitioned by day: appends, a delete that rewrites files, a
compaction and a checkpoint at version 20, so a migration exercises the checkpoint-first replay
and the catalog has history worth querying.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from delta2sql.delta_rs import deltalake


def batch(version: int) -> pa.Table:
    ids = list(range(version * 10, version * 10 + 10))
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "day": pa.array([f"2026-11-{1 + (i % 5):02d}" for i in ids]),
        "amount": pa.array([float(i % 97) for i in ids]),
    })


def write_sample_table(target: Path) -> str:
    """Write the table at `target` (which must not exist yet); returns a one-line description."""
    uri = str(target)
    deltalake.write_deltalake(uri, batch(0), partition_by=["day"])
    for version in range(1, 30):
        if version == 12:
            deltalake.DeltaTable(uri).delete("amount < 10")
        elif version == 16:
            deltalake.DeltaTable(uri).optimize.compact()
        else:
            deltalake.write_deltalake(uri, batch(version), mode="append")
        if version == 20:
            deltalake.DeltaTable(uri).create_checkpoint()
    table = deltalake.DeltaTable(uri)
    return f"sample table {target}: version {table.version()}, {len(table.file_uris())} live files"
