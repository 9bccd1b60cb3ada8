"""How a segment's JSON commits are cut into batches: at most `batch_size` files, and a batch ends
before its bytes pass COMMIT_BATCH_BYTES (a single larger commit is a batch of its own)."""

from __future__ import annotations

from pathlib import Path

from delta2sql.batches import COMMIT_BATCH_BYTES, plan_batches
from delta2sql.log_listing import LogFile, LogSegment
from delta2sql.log_store import LocalLog

MIB = 1 << 20


def _segment(sizes: list[int]) -> LogSegment:
    log = LocalLog("/nowhere")
    commits = [LogFile(Path("/nowhere/_delta_log"), f"{v:020}.json", v, size, 0) for v, size in enumerate(sizes)]
    return LogSegment(log, len(sizes) - 1, None, commits, None, {})


def _cut(batches) -> list[tuple[int, int]]:
    return [(b.first_version, b.last_version) for b in batches]


def test_commits_are_cut_by_count():
    assert _cut(plan_batches(_segment([100] * 7), batch_size=3)) == [(0, 2), (3, 5), (6, 6)]


def test_commits_are_cut_before_their_bytes_pass_the_bound():
    assert COMMIT_BATCH_BYTES == 32 * MIB  # the sizes below are chosen around it
    sizes = [10 * MIB, 10 * MIB, 10 * MIB, 3 * MIB, 1 * MIB, 40 * MIB, 1 * MIB]
    # 10+10+10 = 30 MiB; +3 would pass 32; 3+1 = 4, +40 passes; 40 alone (larger than the bound); then 1
    assert _cut(plan_batches(_segment(sizes), batch_size=100)) == [(0, 2), (3, 4), (5, 5), (6, 6)]


def test_a_batch_of_exactly_the_bound_is_kept_whole():
    sizes = [16 * MIB, 16 * MIB, 1]
    assert _cut(plan_batches(_segment(sizes), batch_size=100)) == [(0, 1), (2, 2)]


def test_catch_up_cuts_only_the_commits_after_the_version():
    batches = plan_batches(_segment([100] * 10), batch_size=4, after_version=5)
    assert _cut(batches) == [(6, 9)] and [b.number for b in batches] == [1]


def test_without_a_byte_bound_commits_are_cut_by_count_only():
    """As runs started before the bound cut them (their recorded bound is NULL)."""
    sizes = [40 * MIB, 40 * MIB, 1, 40 * MIB]
    assert _cut(plan_batches(_segment(sizes), batch_size=3, commit_batch_bytes=None)) == [(0, 2), (3, 3)]
