"""Choosing the log segment: checkpoint kinds, hints, fallbacks and gaps, on hand-written logs."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fixtures.deltalake_tables import DELTALAKE_FIXTURES
from fixtures.handwritten_logs import BAD_INPUT_FIXTURES, HANDWRITTEN_FIXTURES, SURVIVABLE_FIXTURES

from delta2sql.errors import DeltaLogError
from delta2sql.log_listing import _sidecar_paths, plan_segment


def build(registry, name, tmp_path):
    entry = registry[name]
    (entry[0] if isinstance(entry, tuple) else entry)(tmp_path / name)
    return tmp_path / name


@pytest.mark.parametrize(
    ("name", "kind", "files"),
    [("multipart_checkpoint", "multipart", 3), ("v2_checkpoint_sidecars", "v2", 1), ("v2_checkpoint_json", "v2", 1)],
)
def test_checkpoint_kinds(tmp_path, name, kind, files):
    segment = plan_segment(build(HANDWRITTEN_FIXTURES, name, tmp_path))
    assert segment.checkpoint.kind == kind and len(segment.checkpoint.files) == files
    assert [c.version for c in segment.commits] == list(range(segment.checkpoint.version + 1, segment.latest_version + 1))


def test_requested_version_uses_the_checkpoint_at_or_below_it(tmp_path):
    table = build(DELTALAKE_FIXTURES, "checkpoints", tmp_path)
    assert plan_segment(table, version=15).checkpoint.version == 10
    assert plan_segment(table, version=20).checkpoint.version == 20
    assert plan_segment(table, version=9).checkpoint is None
    with pytest.raises(DeltaLogError, match="version 99 requested"):
        plan_segment(table, version=99)


def test_full_history_ignores_checkpoints(tmp_path):
    segment = plan_segment(build(DELTALAKE_FIXTURES, "checkpoints", tmp_path), full_history=True)
    assert segment.checkpoint is None and segment.commits[0].version == 0


def test_full_history_needs_every_commit(tmp_path):
    with pytest.raises(DeltaLogError, match="version 0 is missing|version 0 .* missing"):
        plan_segment(build(DELTALAKE_FIXTURES, "metadata_cleanup", tmp_path), full_history=True)


def test_missing_part_falls_back_to_older_complete_checkpoint(tmp_path):
    segment = plan_segment(build(SURVIVABLE_FIXTURES, "multipart_missing_part_with_older_complete", tmp_path))
    assert segment.checkpoint.kind == "classic" and segment.checkpoint.version < 4
    assert any("missing parts" in w for w in segment.warnings)


def test_gap_names_the_missing_version(tmp_path):
    with pytest.raises(DeltaLogError, match=r"version 2 is missing \(00000000000000000002\.json\)"):
        plan_segment(build(BAD_INPUT_FIXTURES, "missing_middle_version", tmp_path))


def test_sidecar_paths_are_read_from_every_row_group(tmp_path):
    """The sidecar rows of a Parquet checkpoint, read one row group at a time: rows of every group
    are found, in file order, and null rows (the file actions and the other rows) are not."""
    sidecar = pa.struct([("path", pa.string()), ("sizeInBytes", pa.int64()), ("modificationTime", pa.int64())])
    rows = [None, {"path": "a.parquet", "sizeInBytes": 1, "modificationTime": 2}, None, None,
            {"path": "b.parquet", "sizeInBytes": 3, "modificationTime": 4},
            {"path": "c.parquet", "sizeInBytes": 5, "modificationTime": 6}, None]
    protocol = pa.struct([("minReaderVersion", pa.int32())])
    table = pa.table({"protocol": pa.array([{"minReaderVersion": 3}] + [None] * 6, protocol),
                      "sidecar": pa.array(rows, sidecar)})
    pq.write_table(table, tmp_path / "top.parquet", row_group_size=2)
    parquet = pq.ParquetFile(tmp_path / "top.parquet")
    assert parquet.metadata.num_row_groups == 4
    assert _sidecar_paths(parquet) == ["a.parquet", "b.parquet", "c.parquet"]

    pq.write_table(table.drop_columns(["sidecar"]), tmp_path / "no_column.parquet")
    assert _sidecar_paths(pq.ParquetFile(tmp_path / "no_column.parquet")) == []
    all_null = table.set_column(1, "sidecar", pa.array([None] * 7, sidecar))  # a classic checkpoint's column
    pq.write_table(all_null, tmp_path / "classic.parquet", row_group_size=3)
    assert _sidecar_paths(pq.ParquetFile(tmp_path / "classic.parquet")) == []
