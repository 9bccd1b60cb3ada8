"""Cut a log segment into the batches a migration run commits one by one.

The cut is a pure function of the segment and two sizes, so a resumed run recomputes exactly the
batches of the run it continues and can skip the ones already committed. Checkpoint files are
split into slices of at most `checkpoint_batch_rows` rows (DuckDB prunes the row groups outside a
slice on `file_row_number`, and streams the rows of those inside), then come the checkpoint
version's own commit and the JSON commits, `batch_size` files at a time or fewer: a batch of
commits also ends before it passes COMMIT_BATCH_BYTES.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow.parquet as pq

from delta2sql.log_listing import LogFile, LogSegment, sidecar_files

DEFAULT_BATCH_SIZE = 5000  # JSON commit files per batch, at most: see docs/performance.md ("Batch sizes") for the measurement
# ... and their bytes, at most (a single larger commit is a batch of its own): about 1,000 commits
# of the wide bench table, whose batch the PostgreSQL and SQLite readers hold at half the cap
COMMIT_BATCH_BYTES = 32 << 20
DEFAULT_CHECKPOINT_BATCH_ROWS = 500_000  # checkpoint rows per batch, at most, into a DuckDB catalog
# PostgreSQL and SQLite: a batch's rows wait in the in-memory reader until shipped, so it is
# smaller (a delta-rs checkpoint of 1M-row groups into PostgreSQL, whole migrate: peak RSS 1.45 GB
# at 500,000 rows, 0.99-1.03 GB at 200,000, 0.85 GB at 150,000 and no slower)
SHIPPED_CHECKPOINT_BATCH_ROWS = 150_000


def default_checkpoint_batch_rows(target: str) -> int:
    return DEFAULT_CHECKPOINT_BATCH_ROWS if target == "duckdb" else SHIPPED_CHECKPOINT_BATCH_ROWS


@dataclass(frozen=True, slots=True)
class Batch:
    number: int  # 1-based
    files: tuple[LogFile, ...]
    source: str  # checkpoint | checkpoint_commit | commit
    file_kind: str  # checkpoint | sidecar | checkpoint_commit | commit
    first_version: int
    last_version: int
    rows: tuple[int, int] | None = None  # [start, end) rows of a checkpoint Parquet file
    describes_files: bool = True  # records the files' size and sha256 (a file's last slice does)

    @property
    def bytes(self) -> int:
        """Bytes this batch accounts for: a slice carries its file's size in its last slice."""
        return sum(f.size_bytes for f in self.files) if self.describes_files else 0

    @property
    def label(self) -> str:
        return batch_label(self.files[0].name, len(self.files), self.rows)


def batch_label(first_file: str, files: int, rows: tuple[int, int] | None = None) -> str:
    """How a batch names its files (`migration_batches.log_files`, progress, errors)."""
    more = f" (+{files - 1} files)" if files > 1 else ""
    return f"{first_file}{more}" + (f" rows {rows[0]}..{rows[1] - 1}" if rows else "")


def _row_slices(log_file: LogFile, max_rows: int) -> list[tuple[int, int]]:
    """[start, end) row ranges of at most `max_rows` rows: consecutive row groups while they fit,
    and a row group larger than that cut into pieces of `max_rows`. Writers make row groups of
    1M rows (delta-rs, pyarrow) or 128 MB (Spark); a slice, not a row group, bounds the memory."""
    metadata = pq.read_metadata(log_file.path)
    slices, start, end = [], 0, 0
    for index in range(metadata.num_row_groups):
        rows = metadata.row_group(index).num_rows
        if end > start and end - start + rows > max_rows:
            slices.append((start, end))
            start = end
        end += rows
        while end - start > max_rows:
            slices.append((start, start + max_rows))
            start += max_rows
    if end > start or not slices:
        slices.append((start, end))
    return slices


def plan_batches(
    segment: LogSegment,
    batch_size: int = DEFAULT_BATCH_SIZE,
    checkpoint_batch_rows: int = DEFAULT_CHECKPOINT_BATCH_ROWS,
    after_version: int | None = None,
    commit_batch_bytes: int | None = COMMIT_BATCH_BYTES,
) -> list[Batch]:
    """The batches of `segment`; with `after_version`, only the JSON commits after it (catch-up).
    `commit_batch_bytes` None cuts commits by count only, as runs started before the bound did."""
    batches: list[Batch] = []

    def add(files, source, file_kind, first, last, rows=None, describes=True) -> None:
        batches.append(Batch(len(batches) + 1, tuple(files), source, file_kind, first, last, rows, describes))

    checkpoint = segment.checkpoint
    if after_version is None and checkpoint:
        files = [*checkpoint.files, *sidecar_files(checkpoint, segment.log)]
        for f in files:
            kind = "sidecar" if f.name.startswith("_sidecars/") else "checkpoint"
            if not f.name.endswith(".parquet"):
                add([f], "checkpoint", kind, checkpoint.version, checkpoint.version)
                continue
            slices = _row_slices(f, checkpoint_batch_rows)
            for i, rows in enumerate(slices):
                add([f], "checkpoint", kind, checkpoint.version, checkpoint.version,
                    rows if len(slices) > 1 else None, describes=i == len(slices) - 1)
        if segment.checkpoint_commit:
            add([segment.checkpoint_commit], "checkpoint_commit", "checkpoint_commit", checkpoint.version, checkpoint.version)
    chunk, size = [], 0
    for f in segment.commits:
        if after_version is not None and f.version <= after_version:
            continue
        if chunk and (len(chunk) == batch_size
                      or (commit_batch_bytes is not None and size + f.size_bytes > commit_batch_bytes)):
            add(chunk, "commit", "commit", chunk[0].version, chunk[-1].version)
            chunk, size = [], 0
        chunk.append(f)
        size += f.size_bytes
    if chunk:
        add(chunk, "commit", "commit", chunk[0].version, chunk[-1].version)
    return batches
