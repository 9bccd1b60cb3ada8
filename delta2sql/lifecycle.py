"""The lifecycle of a table in the catalog and of its migration runs: every status, the moves
allowed between them, and every write to the columns that hold them (ADR 0007 draws them).

A table's status (`delta_log_tables.status`) says who holds the truth about it:

- `landing`: a first run is landing it; nothing is published, the catalog tables do not show it;
- `landed`: a run published its versions, the catalog tables are not built up to them yet (also
  the state of a table whose build or checks failed: its last run says which, as `failed`);
- `migrated`: built and checked; the `_delta_log` is still the truth and a catch-up follows it;
- `finalized`: cut over: writers commit through the catalog, the log is no longer read;
- `rolling_back`: the catalog's commits are being written back; writers are shut out;
- `file_based`: rolled back: the log is the truth again, the catalog follows it like `migrated`.

A run's status (`migration_runs.status`): `running`, then `landed` when it publishes and
`migrated` when the build after it succeeds; `failed` when it stopped (a failed landing is
resumed by the next `migrate`, which may publish it); `abandoned` when a later run replaced it;
`rolled_back` when `rollback --to-version` removed every version it landed (a run it cut short
ends `landed` at that version, and the build after it makes it `migrated` again).

Each move is one compare-and-set UPDATE on the statuses it starts from, so two processes can
never both make it; from any other status it is refused with `IllegalTransition`, which names the
table, where it stands and where the move starts. `TABLE_MOVES` and `RUN_MOVES` are the whole
diagram: the tests walk every pair of status and move against them.

A `running` run also holds a lease (its owner's host and pid, renewed with every committed batch):
it tells a run being landed now from one whose process was killed, which the next `migrate`
takes over.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from delta2sql.catalog import CatalogConnection
from delta2sql.errors import Delta2SqlError
from delta2sql.estimate import RANGE, Estimate


class TableStatus(StrEnum):
    LANDING = "landing"
    LANDED = "landed"
    MIGRATED = "migrated"
    FINALIZED = "finalized"
    ROLLING_BACK = "rolling_back"
    FILE_BASED = "file_based"


class RunStatus(StrEnum):
    RUNNING = "running"
    FAILED = "failed"
    LANDED = "landed"
    MIGRATED = "migrated"
    ABANDONED = "abandoned"
    ROLLED_BACK = "rolled_back"


T, R = TableStatus, RunStatus
# What the readers ask of a status
PUBLISHED = (T.LANDED, T.MIGRATED, T.FILE_BASED)  # the log is the truth: a catch-up reads it from the published version
UNBUILT = (T.LANDING, T.LANDED)  # the catalog tables were never built for these: nothing to check yet
CATALOG_OWNED = (T.FINALIZED, T.ROLLING_BACK)  # the catalog holds versions the log does not: the log is not read
BUILT = (T.MIGRATED, T.FINALIZED, T.ROLLING_BACK, T.FILE_BASED)  # catalog tables built: validation can compare them
HEALTHY = (T.MIGRATED, T.FINALIZED, T.FILE_BASED)  # at rest, nothing unfinished
DRIFT_CHECKED = (T.MIGRATED, T.FINALIZED)  # `drift` compares the log with these
OPEN_RUN = (R.RUNNING, R.FAILED)  # a run that stopped before publishing: the next `migrate` resumes it
REMOVABLE = (T.LANDING, *PUBLISHED)  # not cut over: removing the rows loses nothing the log lacks

# move -> {from: to}; None is "no row" (before `start`, after `remove`)
TABLE_MOVES: dict[str, dict[TableStatus | None, TableStatus | None]] = {
    "start": {None: T.LANDING},
    "publish": {T.LANDING: T.LANDED},
    "publish_catch_up": {s: T.LANDED for s in PUBLISHED},
    # a build moves a landed table to migrated, and keeps any other built one where it is
    "record_build": {T.LANDED: T.MIGRATED, **{s: s for s in BUILT}},
    "finalize": {T.MIGRATED: T.FINALIZED},
    "commit_in_catalog": {T.FINALIZED: T.FINALIZED},
    "start_rollback": {T.FINALIZED: T.ROLLING_BACK, T.ROLLING_BACK: T.ROLLING_BACK},  # again: resumes it
    "finish_rollback": {T.ROLLING_BACK: T.FILE_BASED},
    # `rollback --to-version`: published at that version, to be built again; a first run that
    # stopped after landing it is published there too
    "roll_back_to": {T.LANDING: T.LANDED, **{s: T.LANDED for s in PUBLISHED}},
    "remove": {s: None for s in (None, *REMOVABLE)},  # absent: a first full run clears nothing
}
RUN_MOVES: dict[str, dict[RunStatus | None, RunStatus | None]] = {
    "start_run": {None: R.RUNNING},
    "publish": {R.RUNNING: R.LANDED, R.FAILED: R.LANDED},  # a failed landing, resumed
    "fail_run": {R.RUNNING: R.FAILED, R.FAILED: R.FAILED},
    "abandon_run": {s: R.ABANDONED for s in OPEN_RUN},
    "record_build": {R.LANDED: R.MIGRATED},
    "fail_build": {R.LANDED: R.FAILED},
    # `rollback --to-version`: a run holding that version now ends there, published (an open one
    # too: the next `migrate` catches up after it); a run wholly after it is rolled back
    "cut_run": {s: R.LANDED for s in (R.RUNNING, R.FAILED, R.LANDED, R.MIGRATED)},
    "roll_back_run": {s: R.ROLLED_BACK for s in (R.RUNNING, R.FAILED, R.LANDED, R.MIGRATED)},
}


# A run's lease: renewed with every committed batch, so it outlives the longest batch; another
# host's migrate takes a run over only after it ran out (on this host, as soon as the owner's
# process is gone).
LEASE_SECONDS = 300


class IllegalTransition(Delta2SqlError):
    """A move from a status it does not start from (or a table that moved on meanwhile)."""


class RunInProgress(Delta2SqlError):
    """Another process holds the run's lease: it is landing the table now."""


@dataclass(frozen=True)
class Lease:
    """Who is landing a run, and until when it may be taken for gone."""

    host: str | None
    pid: int | None
    heartbeat_at: datetime | None
    expires_at: datetime | None
    landing: bool = True  # the run is `running`; a failed run's owner (say a fleet going on) lands it no more

    @classmethod
    def read(cls, host, pid, heartbeat_at, expires_at, status: str = RunStatus.RUNNING) -> Lease:
        """A lease from its run's columns as read back (SQLite gives timestamps as the text it stored)."""
        times = (datetime.fromisoformat(t) if isinstance(t, str) else t for t in (heartbeat_at, expires_at))
        return cls(host, pid, *times, landing=status == RunStatus.RUNNING)

    @property
    def owner(self) -> str:
        return f"{self.host}:{self.pid}" if self.host else "an earlier delta2sql (no lease recorded)"

    def is_mine(self) -> bool:
        return (self.host, self.pid) == _me()

    @property
    def interrupted(self) -> bool:
        """A `running` run that nobody lands any more: the next `migrate` takes it over."""
        return self.landing and not self.is_alive() and not self.is_mine()

    def is_alive(self) -> bool:
        """On this host: is the owner's process still there; elsewhere: is the lease still running.
        A run of a catalog written before leases has none: it is taken for interrupted."""
        if not self.landing or self.host is None or self.is_mine():
            return False
        if self.host == socket.gethostname():
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True  # another user's process: it exists
            return True
        return self.expires_at is not None and self.expires_at > _utc_now()


def start(con: CatalogConnection, table_name: str, table_uri: str, replay_start_version: int, latest_version: int,
          checkpoint_version: int | None, checkpoint_kind: str | None, listing_warnings: str) -> None:
    """A first (or full) run begins: the table's row, in status `landing`."""
    if current_status(con, table_name) is not None:
        _refuse(con, table_name, "start")
    con.execute(
        "insert into delta_log_tables (table_name, table_uri, replay_start_version, latest_version, "
        "checkpoint_version, checkpoint_kind, status, listing_warnings) values (?, ?, ?, ?, ?, ?, ?, ?)",
        [table_name, table_uri, replay_start_version, latest_version, checkpoint_version, checkpoint_kind,
         T.LANDING.value, listing_warnings],
    )


def start_run(con: CatalogConnection, run_id: str, table_name: str, target: str, mode: str, from_version: int,
              to_version: int, checkpoint_version: int | None, batch_size: int, checkpoint_batch_rows: int,
              num_batches: int, planned: Estimate | None = None, *, commit_batch_bytes: int | None = None) -> None:
    """A run begins, `running`, with the estimate it started with (none when uncalibrated) and the
    sizes that cut its batches, which a resumed run cuts again."""
    if con.execute("select 1 from migration_runs where run_id = ?", [run_id]).fetchone() is not None:
        _refuse_run(con, run_id, "start_run")
    now, expires = _lease_times()
    estimated = [planned.run_seconds, round(planned.run_seconds * (1 - RANGE), 1),
                 round(planned.run_seconds * (1 + RANGE), 1), planned.phases_json()] if planned else [None] * 4
    con.execute(
        "insert into migration_runs (run_id, table_name, target, mode, from_version, to_version, checkpoint_version, "
        "batch_size, checkpoint_batch_rows, commit_batch_bytes, num_batches, status, started_at, owner_host, owner_pid, "
        "heartbeat_at, lease_expires_at, estimated_seconds, estimate_low_seconds, estimate_high_seconds, estimate_phases) "
        "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp, ?, ?, ?, ?, ?, ?, ?, ?)",
        [run_id, table_name, target, mode, from_version, to_version, checkpoint_version, batch_size,
         checkpoint_batch_rows, commit_batch_bytes, num_batches, R.RUNNING.value, *_me(), now, expires, *estimated],
    )


def run_lease(con: CatalogConnection, run_id: str) -> Lease:
    return Lease.read(*con.execute(
        "select owner_host, owner_pid, heartbeat_at, lease_expires_at, status from migration_runs where run_id = ?",
        [run_id]).fetchone())


def take_over(con: CatalogConnection, table_name: str, run_id: str, lease: Lease) -> None:
    """Make this process the owner of an open run whose owner is gone (`lease` as read): a
    compare-and-set on that owner, so of two processes taking it over one wins."""
    if lease.is_alive():
        raise RunInProgress(describe_in_progress(table_name, run_id, lease))
    now, expires = _lease_times()
    owner = "owner_host = ? and owner_pid = ?" if lease.host is not None else "owner_host is null"
    moved = con.execute(
        "update migration_runs set owner_host = ?, owner_pid = ?, heartbeat_at = ?, lease_expires_at = ? "
        f"where run_id = ? and status in ({sql_list(OPEN_RUN)}) and {owner} returning run_id",
        [*_me(), now, expires, run_id, *([lease.host, lease.pid] if lease.host is not None else [])],
    ).fetchall()
    if not moved:
        raise RunInProgress(f"{table_name}: run {run_id[:8]} was taken over by another migrate meanwhile")


def heartbeat(con: CatalogConnection, table_name: str, run_id: str) -> None:
    """Renew this process's lease on the run (in the batch's transaction): if another process took
    the run over meanwhile, this one must stop, and its batch is not committed."""
    now, expires = _lease_times()
    host, pid = _me()
    if not con.execute(
        "update migration_runs set heartbeat_at = ?, lease_expires_at = ? "
        "where run_id = ? and owner_host = ? and owner_pid = ? returning run_id",
        [now, expires, run_id, host, pid],
    ).fetchall():
        lease = run_lease(con, run_id)
        raise RunInProgress(f"{table_name}: run {run_id[:8]} was taken over by {lease.owner} (this process's lease ran "
                            "out); stopping without committing the batch")


def describe_in_progress(table_name: str, run_id: str, lease: Lease) -> str:
    since = f", heartbeat {lease.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC" if lease.heartbeat_at else ""
    return (f"{table_name}: run {run_id[:8]} is being landed by {lease.owner}{since}; wait for it "
            "(`migrate --wait`), or stop that process")


def describe_lease(lease: Lease) -> str:
    """`running` while the owner is alive, else `interrupted: no heartbeat since ...`."""
    if not lease.interrupted:
        return f"running ({lease.owner})"
    since = f"{lease.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC" if lease.heartbeat_at else "it started"
    return f"interrupted: no heartbeat since {since} ({lease.owner} is gone)"


def publish(con: CatalogConnection, table_name: str, run_id: str, mode: str, from_version: int,
            to_version: int, landing_seconds: float) -> None:
    """Make a run's versions visible: a compare-and-set on what the run started from (a first run:
    `landing`; a catch-up: published at `from_version - 1`), so nothing else moved the table
    meanwhile; then the run is `landed`, with the seconds this process spent landing it added to
    those of any process it resumed from."""
    move, condition, params = ("publish", "", []) if mode == "full" else \
        ("publish_catch_up", " and latest_version = ?", [from_version - 1])
    if not _move_table(con, table_name, move, ", latest_version = ?, landed_at = current_timestamp", [to_version],
                       condition, params):
        if current_status(con, table_name) in TABLE_MOVES[move]:
            raise IllegalTransition(f"{table_name}: the table changed while run {run_id[:8]} was landing (caught up "
                                    "by another run); nothing published")
        _refuse(con, table_name, move)
    if not _move_run(con, "publish", "run_id = ?", [run_id],
                     ", landed_at = current_timestamp, landing_seconds = coalesce(landing_seconds, 0) + ?",
                     [landing_seconds]):
        _refuse_run(con, run_id, "publish")


def fail_run(con: CatalogConnection, run_id: str, error: str) -> None:
    if not _move_run(con, "fail_run", "run_id = ?", [run_id], ", error = ?, finished_at = current_timestamp", [error]):
        _refuse_run(con, run_id, "fail_run")


def abandon_run(con: CatalogConnection, run_id: str, why: str) -> None:
    if not _move_run(con, "abandon_run", "run_id = ?", [run_id], ", error = ?, finished_at = current_timestamp",
                     [why]):
        _refuse_run(con, run_id, "abandon_run")


def abandon_open_runs(con: CatalogConnection, table_name: str, why: str) -> None:
    """Every run of the table that stopped before publishing, replaced by a full run."""
    _move_run(con, "abandon_run", "table_name = ? and landed_at is null", [table_name],
              ", error = ?, finished_at = current_timestamp", [why])


def record_build(con: CatalogConnection, table_name: str, built_version: int, build_seconds: float) -> None:
    """The build and its checks passed up to `built_version`: a landed table is `migrated`, its run
    too, with how long the build took; a table built before stays where it is, with its new built
    version."""
    con.begin()
    try:
        if not _move_table(con, table_name, "record_build", ", built_version = ?, migrated_at = current_timestamp",
                           [built_version]):
            _refuse(con, table_name, "record_build")
        _move_run(con, "record_build", "table_name = ?", [table_name],
                  ", finished_at = current_timestamp, build_seconds = ?", [build_seconds])
        con.commit()
    except BaseException:
        con.rollback()
        raise


def fail_build(con: CatalogConnection, table_name: str, error: str) -> None:
    """The build or a check failed: the table stays `landed`, its run is `failed` with the error."""
    _move_run(con, "fail_build", "table_name = ?", [table_name], ", error = ?, finished_at = current_timestamp",
              [error])


def finalize(con: CatalogConnection, table_name: str, latest_version: int) -> None:
    """Cut over at `latest_version`, unless the table moved on while it was being checked."""
    if not _move_table(con, table_name, "finalize", ", finalized_version = latest_version, finalized_at = "
                       "current_timestamp", [], " and latest_version = ?", [latest_version]):
        if current_status(con, table_name) == T.MIGRATED:
            raise IllegalTransition(f"{table_name}: changed while it was being validated; finalize again")
        _refuse(con, table_name, "finalize")


def commit_in_catalog(con: CatalogConnection, table_name: str, read_version: int, version: int) -> bool:
    """A writer's commit of `version` after cut-over; False when `read_version` is no longer the
    latest (another writer got there first)."""
    if _move_table(con, table_name, "commit_in_catalog", ", latest_version = ?", [version],
                   " and latest_version = ?", [read_version]):
        return True
    if current_status(con, table_name) != T.FINALIZED:
        _refuse(con, table_name, "commit_in_catalog")
    return False


def start_rollback(con: CatalogConnection, table_name: str) -> None:
    """Shut writers out (they commit only to a `finalized` table) before the write-back."""
    if not _move_table(con, table_name, "start_rollback"):
        _refuse(con, table_name, "start_rollback")


def finish_rollback(con: CatalogConnection, table_name: str, latest_version: int) -> None:
    if not _move_table(con, table_name, "finish_rollback", condition=" and latest_version = ?",
                       condition_params=[latest_version]):
        _refuse(con, table_name, "finish_rollback")


def roll_back_to(con: CatalogConnection, table_name: str, version: int) -> None:
    """The table stands published at `version`, its catalog tables unbuilt (they are rebuilt from
    the landed rows, which no longer hold the versions after it)."""
    if not _move_table(con, table_name, "roll_back_to", ", latest_version = ?, built_version = null, "
                       "migrated_at = null, landed_at = current_timestamp", [version]):
        _refuse(con, table_name, "roll_back_to")


def cut_run(con: CatalogConnection, run_id: str, version: int, num_batches: int) -> None:
    """The run now ends at `version` after `num_batches` batches, published."""
    if not _move_run(con, "cut_run", "run_id = ?", [run_id], ", to_version = ?, num_batches = ?, error = null, "
                     "landed_at = coalesce(landed_at, current_timestamp), finished_at = null",
                     [version, num_batches]):
        _refuse_run(con, run_id, "cut_run")


def roll_back_run(con: CatalogConnection, run_id: str, version: int) -> None:
    if not _move_run(con, "roll_back_run", "run_id = ?", [run_id], ", error = ?, finished_at = current_timestamp",
                     [f"rolled back to version {version}"]):
        _refuse_run(con, run_id, "roll_back_run")


def remove(con: CatalogConnection, table_name: str, keep_run_history: bool = False) -> None:
    """Delete the table's state rows (and, unless kept, the history of its runs), in the open
    transaction; a finalized table is refused: the catalog holds versions its log lacks."""
    status = current_status(con, table_name)
    if status is not None and status not in REMOVABLE:
        _refuse(con, table_name, "remove")
    con.execute("delete from delta_log_tables where table_name = ?", [table_name])
    if not keep_run_history:
        for table in ("migration_batches", "migration_runs"):
            con.execute(f"delete from {table} where table_name = ?", [table_name])


def current_status(con: CatalogConnection, table_name: str) -> TableStatus | None:
    row = con.execute("select status from delta_log_tables where table_name = ?", [table_name]).fetchone()
    return None if row is None else TableStatus(row[0])


def _me() -> tuple[str, int]:
    return socket.gethostname(), os.getpid()


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # the catalogs' timestamps are naive UTC


def _lease_times() -> tuple[datetime, datetime]:
    now = _utc_now()
    return now, now + timedelta(seconds=LEASE_SECONDS)


def sql_list(statuses) -> str:
    """Statuses as a SQL list of literals, for the readers' `status in (...)`."""
    return ", ".join(f"'{s}'" for s in statuses)


def _status_update(steps: dict) -> tuple[str, str]:
    """A move's (new status expression, statuses it starts from) for an UPDATE of a row that exists."""
    starts = {s: t for s, t in steps.items() if s is not None}
    return "case status " + " ".join(f"when '{s}' then '{t}'" for s, t in starts.items()) + " end", sql_list(starts)


def _move_table(con: CatalogConnection, table_name: str, move: str, sets: str = "", set_params: list | None = None,
                condition: str = "", condition_params: list | None = None) -> bool:
    """One compare-and-set of `move` on the table's row: True when it moved."""
    new_status, froms = _status_update(TABLE_MOVES[move])
    return bool(con.execute(
        f"update delta_log_tables set status = {new_status}{sets} "
        f"where table_name = ? and status in ({froms}){condition} returning table_name",
        [*(set_params or []), table_name, *(condition_params or [])],
    ).fetchall())


def _move_run(con: CatalogConnection, move: str, where: str, where_params: list, sets: str = "",
              set_params: list | None = None) -> int:
    """`move` for the runs matching `where` that stand where it starts: how many moved (none may,
    for a table's runs: a table built with no run of its own)."""
    new_status, froms = _status_update(RUN_MOVES[move])
    return len(con.execute(
        f"update migration_runs set status = {new_status}{sets} where {where} and status in ({froms}) returning run_id",
        [*(set_params or []), *where_params],
    ).fetchall())


def _refuse(con: CatalogConnection, table_name: str, move: str) -> None:
    status = current_status(con, table_name)
    starts = ", ".join("absent" if s is None else s.value for s in TABLE_MOVES[move])
    where = "not in the catalog" if status is None else f"its status is {status.value}"
    raise IllegalTransition(f"{table_name}: cannot {move.replace('_', ' ')}: {where} "
                            f"({move.replace('_', ' ')} starts from: {starts})")


def _refuse_run(con: CatalogConnection, run_id: str, move: str) -> None:
    row = con.execute("select table_name, status from migration_runs where run_id = ?", [run_id]).fetchone()
    starts = ", ".join(s.value for s in RUN_MOVES[move] if s is not None)
    where = "it is not in the catalog" if row is None else f"{row[0]}: its status is {row[1]}"
    raise IllegalTransition(f"run {run_id[:8]}: cannot {move.replace('_', ' ')}: {where} "
                            f"({move.replace('_', ' ')} starts from: {starts})")
