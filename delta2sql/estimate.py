"""How long `migrate` will take here: each phase from what drives it, at the rates
`delta2sql calibrate` measured on this machine and target (`calibration.py`).

A migration's wall time is six phases, each growing with its own drivers:

- **process**: the command's own start (interpreter, imports) and exit: fixed;
- **listing**: what even a one-commit table's landing costs (the listing, the catalog's tables,
  publishing): fixed;
- **checkpoint**: landing the checkpoint, per row and per byte of the columns read, once
  decompressed (both in the Parquet footers); the share of it that runs in parallel goes as
  many times faster as a batch's slice holds row groups, up to the cores (a delta-rs checkpoint
  of 1M-row row groups is read by one thread, pyarrow's 100k-row groups by all);
- **commits**: landing the JSON commits after it, per file (open, list, one transaction per
  batch) and per byte (parsing);
- **download**: on an object store, the checkpoint's download, as long as it took when the
  plan downloaded it to check that it opens (the landing waits for it), plus the round trips of
  listing the log (a page per 1,000 objects) and of fetching its commits (`--io-concurrency` at a
  time), at the store's latency measured when the estimate is made; the next batches download
  while one lands, so only what the commits' landing does not hide counts;
- **build**: dbt's start and its build and checks of the catalog tables: fixed, plus per action
  and per log file in the catalog once the run has landed, and per byte of log it stores.

A run records its estimate without the process phase (`migration_runs.estimated_seconds`), beside
what it measured of the rest (`landing_seconds`, `build_seconds`).
The midpoint is their sum; the range is the midpoint ±`RANGE` (one command's runs on this machine
vary about that much: README, "Estimates"). With no calibration for the target there is no time
estimate at all, only the workload: a rate measured on another machine would be a number nobody
should book a window on.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field

from delta2sql.catalog import CatalogConnection
from delta2sql.errors import DeltaLogError
from delta2sql.extract import NotAJsonStream, json_stream_records
from delta2sql.log_listing import CheckpointFooters, LogFile, LogSegment
from delta2sql.log_store import ObjectStoreLog, TableLog

RANGE = 0.2  # the range is the midpoint ±20%
SAMPLE_COMMITS = 50  # JSON commits read to learn the bytes per action of the ones not read
LISTING_PAGE = 1_000  # objects per page of an object store's listing (S3's and GCS's most)


@dataclass(frozen=True)
class Workload:
    """What drives a migration's phases."""

    checkpoint_rows: int
    checkpoint_bytes: int  # decompressed bytes of the columns landing reads, from the footers
    checkpoint_parallelism: int  # row groups a batch's slice reads at once: 1 .. the cores
    commit_files: int
    commit_bytes: int
    commit_actions: int  # estimated from a sample of the commits' bytes per action
    catalog_actions: int  # actions the build replays: every table's in the catalog once the run landed
    catalog_log_files: int  # the log files they came from (commits, checkpoint parts)
    catalog_log_bytes: int  # those files' bytes, which the catalog stores
    store_round_trips: int = 0  # an object store's listing pages and rounds of concurrent commit GETs
    round_trip_seconds: float = 0.0  # the store's latency, measured (0 on local disk)
    checkpoint_download_seconds: float = 0.0  # the checkpoint's download from an object store, measured

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Estimate:
    seconds: float  # midpoint
    low: float
    high: float
    phases: dict[str, float]  # process, listing, checkpoint, commits, download, build: they add up to the midpoint
    calibration: str  # where the rates were read, and when they were measured
    assumptions: list[str] = field(default_factory=list)

    @property
    def range_text(self) -> str:
        return seconds_range(self.low, self.high)

    @property
    def run_seconds(self) -> float:
        """The run's share, which `migration_runs` records: all but the command's own process."""
        return round(self.seconds - self.phases["process"], 1)

    def as_dict(self) -> dict:
        return {**asdict(self), "range": self.range_text}

    def phases_json(self) -> str:
        return json.dumps(self.phases, sort_keys=True)


@dataclass(frozen=True)
class Rates:
    """Seconds of each phase: fixed, or per unit of its drivers, on one machine and target
    (`calibration.fit`)."""

    process_seconds: float
    listing_seconds: float
    checkpoint_seconds_per_row: float
    checkpoint_seconds_per_byte: float
    checkpoint_parallel_share: float  # 0..1 of the checkpoint's cost that row groups share among threads
    commit_seconds_per_file: float
    commit_seconds_per_byte: float
    build_seconds: float
    build_seconds_per_action: float
    build_seconds_per_log_file: float
    build_seconds_per_log_byte: float

    def phases(self, work: Workload) -> dict[str, float]:
        commits = work.commit_files * self.commit_seconds_per_file + work.commit_bytes * self.commit_seconds_per_byte
        return {
            "process": self.process_seconds,
            "listing": self.listing_seconds,
            "checkpoint": (work.checkpoint_rows * self.checkpoint_seconds_per_row
                           + work.checkpoint_bytes * self.checkpoint_seconds_per_byte)
            * (1 - self.checkpoint_parallel_share + self.checkpoint_parallel_share / work.checkpoint_parallelism),
            "commits": commits,
            "download": work.checkpoint_download_seconds
            + max(0.0, work.store_round_trips * work.round_trip_seconds - commits),
            "build": self.build_seconds + work.catalog_actions * self.build_seconds_per_action
            + work.catalog_log_files * self.build_seconds_per_log_file
            + work.catalog_log_bytes * self.build_seconds_per_log_byte,
        }


def estimate(work: Workload, rates: Rates, calibration: str, max_rows_per_second: float | None = None) -> Estimate:
    """The estimate of `work` at `rates`; a writers' rate cap, if any, holds the landing back."""
    phases = rates.phases(work)
    assumptions = [f"{work.commit_actions:,} actions in the JSON commits, from the bytes per action of a sample"
                   if work.commit_files else "no JSON commits to land"]
    if work.store_round_trips:
        assumptions.append(f"{work.store_round_trips:,} round trips to the object store at "
                           f"{work.round_trip_seconds * 1000:,.0f} ms (measured now)")
    if work.checkpoint_download_seconds:
        assumptions.append(f"the checkpoint downloads in {work.checkpoint_download_seconds:,.1f} s, as it did "
                           "when planning")
    if max_rows_per_second:
        capped = (work.checkpoint_rows + work.commit_actions) / max_rows_per_second
        landing = phases["checkpoint"] + phases["commits"]
        if capped > landing:  # the cap, not the machine, paces the landing: spread its wait over both
            scale = capped / landing if landing else 0.0
            phases["checkpoint"] *= scale
            phases["commits"] = phases["commits"] * scale if landing else capped
            assumptions.append(f"landing held to the writers' cap of {max_rows_per_second:,.0f} rows/s")
    phases = {name: round(seconds, 1) for name, seconds in phases.items()}
    midpoint = sum(phases.values())
    return Estimate(round(midpoint, 1), round(midpoint * (1 - RANGE), 1), round(midpoint * (1 + RANGE), 1),
                    phases, calibration, assumptions)


def commit_actions(log: TableLog, commits: list[LogFile]) -> int:
    """The actions in `commits`, from the bytes per action of up to SAMPLE_COMMITS of them spread
    over the range: counting them all would be the full read that `plan` and `assess` must not
    make. A sampled commit that `migrate` would refuse as corrupt is refused here, in its words."""
    if not commits:
        return 0
    step = max(1, len(commits) // SAMPLE_COMMITS)
    sample = commits[::step][:SAMPLE_COMMITS]
    log.fetch(sample)
    actions = sum(_actions_in((log.read_bytes(f.name) or b"").decode("utf-8", errors="replace"), log.log_dir / f.name)
                  for f in sample)
    sample_bytes = sum(f.size_bytes for f in sample)
    if not sample_bytes:
        return 0
    return round(actions * sum(f.size_bytes for f in commits) / sample_bytes)


def _actions_in(text: str, path) -> int:
    """The actions of one JSON commit: a line each, or, for a writer that pretty-prints them, a
    JSON value each, as `extract` reads it."""
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        for line in lines:
            json.loads(line)
        return len(lines)
    except ValueError:
        pass
    try:
        return sum(1 for _, _, blank in json_stream_records(text) if not blank)
    except NotAJsonStream as exc:
        raise DeltaLogError(f"{path}: line {exc.line_number} is not valid JSON (truncated or corrupt): "
                            f"{exc.excerpt!r}") from None


def workload(segment: LogSegment, footers: CheckpointFooters, slice_rows: int,
             held: tuple[int, int, int] = (0, 0, 0)) -> Workload:
    """The workload of landing `segment`, whose checkpoint's `footers` are read and sliced into
    batches of at most `slice_rows`, into a catalog that holds `held` (actions, log files, log
    bytes) already."""
    commits = segment.commits
    actions = commit_actions(segment.log, commits)
    commit_bytes = sum(f.size_bytes for f in commits)
    held_actions, held_files, held_bytes = held
    round_trips, latency, download = 0, 0.0, 0.0
    if isinstance(segment.log, ObjectStoreLog):
        download = segment.log.download_seconds([f.name for f in footers.files])
        if commits:
            round_trips = (math.ceil(len(commits) / segment.log.io_concurrency)
                           + math.ceil(len(commits) / LISTING_PAGE))
            latency = segment.log.round_trip_seconds(commits[-1].name)
    group_rows = footers.rows / footers.row_groups if footers.row_groups else slice_rows
    in_slice = min(footers.row_groups, int(slice_rows // max(1.0, group_rows)))  # row groups a slice reads
    parallelism = max(1, min(os.cpu_count() or 1, in_slice))
    return Workload(footers.rows, footers.read_bytes, parallelism, len(commits), commit_bytes, actions,
                    held_actions + footers.rows + actions, held_files + len(footers.files) + len(commits),
                    held_bytes + sum(f.size_bytes for f in footers.files) + commit_bytes, round_trips,
                    round(latency, 4), round(download, 3))


def catalog_holdings(con: CatalogConnection, replaced_table: str | None) -> tuple[int, int, int]:
    """(actions, log files, log bytes) the catalog holds that the next build replays besides what
    a run lands: every table's, less those of `replaced_table` (a full run replaces them)."""
    other = "where table_name <> ?" if replaced_table is not None else ""
    params = [replaced_table] if replaced_table is not None else []
    actions = con.execute(f"select count(*) from delta_log_actions {other}", params).fetchall()[0][0]
    files, size = con.execute(f"select count(*), coalesce(sum(size_bytes), 0) from delta_log_files {other}",
                              params).fetchall()[0]
    return actions, files, int(size)


def estimate_lines(timed: dict | None, basis: str) -> list[str]:
    """An estimate (`Estimate.as_dict()`) as `plan` and `assess` print it: the range, the phases
    it adds up, what it assumed and which calibration it used; or why there is none."""
    if timed is None:
        return [f"estimate         none: {basis}"]
    phases = ", ".join(f"{name} {seconds:,.1f} s" for name, seconds in timed["phases"].items()
                       if seconds or name != "download")  # downloads: object stores only
    return [f"estimate         {timed['range']} (midpoint {timed['seconds']:,.1f} s: {phases})",
            *(f"  assumed        {assumption}" for assumption in timed["assumptions"]),
            f"  rates          {timed['calibration']}"]


def seconds_range(low: float, high: float) -> str:
    """`low`–`high` seconds in one unit a person books a window in: "40–60 s", "1.9–2.9 min", "2.1–3.2 h"."""
    if high < 120:
        return f"{low:.0f}–{high:.0f} s" if high >= 10 else f"{low:.1f}–{high:.1f} s"
    if high < 7_200:
        return f"{low / 60:.1f}–{high / 60:.1f} min"
    return f"{low / 3600:.1f}–{high / 3600:.1f} h"
