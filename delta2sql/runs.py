"""Migration runs: land one table's log in batches that each commit with their progress row.

A run is recorded in `migration_runs` before its first batch; every batch then commits its
landed rows together with its `migration_batches` row, so after a kill at any moment the
catalog holds exactly the committed batches and the run says where to continue. The same
`migrate` command resumes it: the batches are recomputed from the same segment (`batches.py`),
the committed ones are skipped, and at most the one in flight is redone.

Rows of a run stay invisible to the catalog tables until its last batch commits and publishes
the run's version (`delta_log_tables.latest_version`, read by the dbt models' base views):
a first run keeps the table in status `landing`; a catch-up run appends the versions after
the published one while the published snapshot stays as it was.
"""

from __future__ import annotations

import json
import resource
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import duckdb

from delta2sql import calibration, lifecycle, rate_limit
from delta2sql.batches import (
    COMMIT_BATCH_BYTES,
    DEFAULT_BATCH_SIZE,
    Batch,
    default_checkpoint_batch_rows,
    plan_batches,
)
from delta2sql.catalog import CatalogConnection
from delta2sql.drift import resized_or_gone
from delta2sql.errors import Delta2SqlError, DeltaLogError
from delta2sql.estimate import Estimate, catalog_holdings, estimate, workload
from delta2sql.extract import LogReader, check_replayable, land_batch, load_sql
from delta2sql.landing_schema import create_landing_tables, index_landed_actions
from delta2sql.lifecycle import CATALOG_OWNED, OPEN_RUN, PUBLISHED
from delta2sql.log_listing import LogSegment, checkpoint_footers, plan_segment
from delta2sql.log_store import TableLog
from delta2sql.progress import Reporter

# The dbt-built catalog tables that hold rows per table (delta_tables is a view).
MART_TABLES = (
    "delta_files", "delta_removes", "delta_commits", "delta_metadata", "delta_protocol",
    "delta_txns", "delta_domain_metadata", "delta_cdc_files",
)
LANDING_TABLES = ("delta_log_actions", "delta_log_files")
# batches an object store fetches ahead of the one being landed: two keep its downloads busy
# while a batch is landed, where one left them idle whenever a batch arrived before its turn
PREFETCH_BATCHES = 2
WAIT_POLL_SECONDS = 2  # `migrate --wait`: how often the other process's run is looked at


@dataclass
class RunOptions:
    version: int | None = None
    full_history: bool = False
    full_refresh: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    checkpoint_batch_rows: int | None = None  # default: by target (batches.default_checkpoint_batch_rows)
    catalog_version: int | None = None  # catalog-managed tables: the latest version their catalog ratified
    wait: bool = False  # another process is landing the table: wait for it (else stop, naming it)


@dataclass
class LandingResult:
    """What one `land_table` call did: `mode` is full, catch_up, resume, or up_to_date."""

    run_id: str | None
    mode: str
    replay_start_version: int
    latest_version: int
    batches: int = 0
    batches_skipped: int = 0
    files: int = 0
    actions: int = 0
    bytes: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Run:
    run_id: str
    mode: str
    from_version: int
    to_version: int
    checkpoint_version: int | None
    batch_size: int
    checkpoint_batch_rows: int
    commit_batch_bytes: int | None  # None: a run started before the bound (batches.COMMIT_BATCH_BYTES)


def table_state(con: CatalogConnection, table_name: str) -> dict | None:
    cursor = con.execute(
        "select status, replay_start_version, latest_version, built_version, table_uri "
        "from delta_log_tables where table_name = ?", [table_name],
    )
    row = cursor.fetchone()
    return None if row is None else dict(zip([d[0] for d in cursor.description], row))


def open_run(con: CatalogConnection, table_name: str) -> _Run | None:
    """The table's newest run if it stopped before publishing (killed, or failed while landing)."""
    row = con.execute(
        """
        select run_id, mode, from_version, to_version, checkpoint_version, batch_size, checkpoint_batch_rows,
               commit_batch_bytes, status, landed_at
        from migration_runs where table_name = ? order by started_at desc, run_id limit 1
        """,
        [table_name],
    ).fetchone()
    if row is None or row[-2] not in OPEN_RUN or row[-1] is not None:
        return None
    return _Run(*row[:-2])


def _committed_batches(con: CatalogConnection, run_id: str) -> list[tuple]:
    return con.execute(
        "select batch_number, first_version, last_version, log_files, files from migration_batches "
        "where run_id = ? order by batch_number", [run_id],
    ).fetchall()


def _segment_of(run: _Run, log: TableLog, catalog_version: int | None) -> LogSegment:
    if run.mode == "catch_up":
        return plan_segment(log, run.to_version, after_version=run.from_version - 1, catalog_version=catalog_version)
    return plan_segment(log, run.to_version, full_history=run.checkpoint_version is None,
                        checkpoint_version=run.checkpoint_version, catalog_version=catalog_version)


def _why_not_resumable(run: _Run, state: dict | None, options: RunOptions) -> str | None:
    """None when the table is still where `run` left it; else why the run must be abandoned."""
    if state is None:
        return "its table row is gone"
    ratified = options.catalog_version
    if ratified is not None and run.to_version != (ratified if options.version is None else min(options.version, ratified)):
        return f"it lands up to version {run.to_version}, and the catalog has ratified version {ratified}"
    if run.mode == "catch_up" and (state["status"] not in PUBLISHED
                                   or run.from_version != state["latest_version"] + 1):
        return f"the table moved on since (status {state['status']}, version {state['latest_version']})"
    return None


def _same_batches(committed: list[tuple], batches: list[Batch]) -> bool:
    """Do the recomputed batches start with the committed ones (same files, same versions)?"""
    if len(committed) > len(batches):
        return False
    return all(
        (b.number, b.first_version, b.last_version, b.label, len(b.files)) == tuple(row)
        for row, b in zip(committed, batches)
    )


def _check_landed_log_unchanged(con: CatalogConnection, table_name: str, log: TableLog, latest_version: int) -> None:
    """A catch-up appends to what was landed: refuse when the landed commits changed since.

    Sizes are compared for every landed commit still listed (old ones may have been cleaned up,
    which is normal), and the bytes of the newest landed commit, where a torn write would show.
    """
    log_dir = log.log_dir
    landed_commits = ("from delta_log_files where table_name = ? and file_kind in ('commit', 'checkpoint_commit') "
                      "and version <= ?")
    landed = con.execute(f"select log_file, size_bytes {landed_commits} order by version",
                         [table_name, latest_version]).fetchall()
    resized, _ = resized_or_gone(log, landed)
    if resized:
        raise DeltaLogError(f"{log_dir / resized[0]}: its size changed since it was landed"
                            + (f" (and {len(resized) - 1} more files)" if len(resized) > 1 else "")
                            + "; see `delta2sql drift`, and re-land with --full-refresh if the change is intended")
    newest = con.execute(f"select log_file, sha256 {landed_commits} order by version desc limit 1",
                         [table_name, latest_version]).fetchone()
    if newest:
        log_file, sha256 = newest
        digest = log.digest(log_file)
        if digest is not None and digest.sha256 != sha256:
            raise DeltaLogError(f"{log_dir / log_file}: its bytes changed since it was landed; see `delta2sql drift`")


def clear_table(con: CatalogConnection, table_name: str, keep_run_history: bool = False) -> None:
    """Delete `table_name`'s catalog rows (landing, built tables, its state and, unless kept, the
    history of its runs), in the open transaction."""
    for table in LANDING_TABLES:
        con.execute(f"delete from {table} where table_name = ?", [table_name])
    for table in MART_TABLES:
        if con.relation_exists(table):
            con.execute(f"delete from {table} where table_name = ?", [table_name])
    lifecycle.remove(con, table_name, keep_run_history)


def _estimate(con: CatalogConnection, table_name: str, target: str, segment: LogSegment, mode: str,
              slice_rows: int) -> Estimate | None:
    """The run's estimate at this machine's calibration of `target`, if there is one (its
    workload is only worked out then: it reads the footers and a sample of commits)."""
    found, basis = calibration.load(target)
    if found is None:
        return None
    held = catalog_holdings(con, table_name if mode == "full" else None)  # a full run replaces the table's rows
    work = workload(segment, checkpoint_footers(segment), slice_rows, held)
    return estimate(work, found.rates, basis, con.catalog.max_rows_per_second)


def _start_run(con: CatalogConnection, table_name: str, target: str, segment: LogSegment, mode: str,
               options: RunOptions, batches: list[Batch], planned: Estimate | None) -> _Run:
    checkpoint = segment.checkpoint
    run = _Run(
        run_id=uuid.uuid4().hex, mode=mode,
        from_version=segment.replay_start_version,
        to_version=segment.latest_version,
        checkpoint_version=checkpoint.version if checkpoint else None,
        batch_size=options.batch_size, checkpoint_batch_rows=options.checkpoint_batch_rows or default_checkpoint_batch_rows(target),
        commit_batch_bytes=COMMIT_BATCH_BYTES,
    )
    con.begin()
    try:
        if mode == "catch_up":  # rows an abandoned run landed after the published version
            for table in LANDING_TABLES:
                con.execute(f"delete from {table} where table_name = ? and version >= ?", [table_name, run.from_version])
        if mode == "full":
            clear_table(con, table_name, keep_run_history=True)
            lifecycle.abandon_open_runs(con, table_name, "replaced by a full run")
            lifecycle.start(con, table_name, segment.uri, segment.replay_start_version, segment.latest_version,
                            run.checkpoint_version, checkpoint.kind if checkpoint else None, json.dumps(segment.warnings))
        lifecycle.start_run(con, run.run_id, table_name, target, mode, run.from_version, run.to_version,
                            run.checkpoint_version, run.batch_size, run.checkpoint_batch_rows, len(batches), planned,
                            commit_batch_bytes=run.commit_batch_bytes)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return run


class _SliceCounts:
    """Actions landed per checkpoint file so far: the batch ending a file sliced into several
    describes it with the count of every slice (`land_batch`'s `prior_actions`). Slices committed
    by an earlier process are counted in the catalog once; those of this run as they are parsed,
    since a slice is parsed before the one ahead of it has committed."""

    def __init__(self, con: CatalogConnection, table_name: str, todo: list[Batch]) -> None:
        self.counts: dict[str, int] = {}
        first = todo[0] if todo else None
        if first is not None and first.rows and first.rows[0] > 0:  # resuming inside a sliced file
            self.counts[first.files[0].name] = con.execute(
                "select count(*) from delta_log_actions where table_name = ? and log_file = ?",
                [table_name, first.files[0].name],
            ).fetchone()[0]

    def prior(self, batch: Batch) -> int:
        return self.counts.get(batch.files[0].name, 0) if batch.rows and batch.describes_files else 0

    def add(self, batch: Batch, actions: int) -> None:
        if batch.rows:
            self.counts[batch.files[0].name] = self.counts.get(batch.files[0].name, 0) + actions


def _land_batches(con: CatalogConnection, table_name: str, segment: LogSegment, run: _Run, batches: list[Batch],
                  skip: int, options: RunOptions, reporter: Reporter, result: LandingResult) -> None:
    """Land batches after the first `skip`, each in its own transaction with its progress row.

    Into PostgreSQL and SQLite a batch is parsed by an in-memory DuckDB and then shipped, so the
    next batch is parsed (into a second one) while this one ships and commits: wide x1 landed
    into PostgreSQL in 15.5 s instead of 23.5 s (one run each). A batch that fails to parse
    raises when its turn comes, after the batches before it have committed, as without the
    overlap. Into DuckDB a batch is parsed straight into the catalog, inside its transaction.
    """
    todo = batches[skip:]
    slices = _SliceCounts(con, table_name, todo)
    ahead = con.dialect != "duckdb"
    readers = [LogReader(con, share=0.5) for _ in range(2)] if ahead else [LogReader(con)]

    def parse(index: int) -> tuple[int, str]:
        batch = todo[index]
        for later in todo[index + 1:index + 1 + PREFETCH_BATCHES]:
            segment.log.prefetch(later.files)  # an object store's next batches arrive meanwhile
        landed = land_batch(readers[index % len(readers)].con, segment, table_name, batch, slices.prior(batch))
        slices.add(batch, landed[0])
        return landed

    try:
        with reporter.task(f"landing {table_name}", sum(b.bytes for b in todo)) as advance, \
                ThreadPoolExecutor(1, thread_name_prefix="delta2sql-parse") as parser:
            pending = parser.submit(parse, 0) if ahead and todo else None
            for number, batch in enumerate(todo, start=1):
                if ahead:
                    try:
                        parsed = pending.result()  # this batch's own parse error, if any
                    except DeltaLogError as exc:
                        if not isinstance(exc.__cause__, duckdb.OutOfMemoryException):
                            raise
                        with readers[(number - 1) % len(readers)].alone():  # the other reader has shipped
                            parsed = parse(number - 1)
                    if number < len(todo):
                        pending = parser.submit(parse, number)
                con.begin()
                try:
                    lifecycle.heartbeat(con, table_name, run.run_id)  # and stop if the run was taken over
                    actions, checksum = parsed if ahead else parse(number - 1)
                    readers[(number - 1) % len(readers)].ship()
                    peak = peak_rss_bytes()
                    con.execute(
                        "insert into migration_batches (run_id, batch_number, table_name, first_version, last_version, "
                        "log_files, files, actions, bytes, checksum, committed_at, peak_rss_bytes) "
                        "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, current_timestamp, ?)",
                        [run.run_id, batch.number, table_name, batch.first_version, batch.last_version, batch.label,
                         len(batch.files), actions, batch.bytes, checksum, peak],
                    )
                    con.commit()
                except BaseException:
                    con.rollback()
                    raise
                if con.catalog.max_rows_per_second:  # the writers' shared cap: sleep off a debt first
                    rate_limit.take(con, actions, con.catalog.max_rows_per_second)
                result.batches += 1
                result.files += len(batch.files)
                result.actions += actions
                result.bytes += batch.bytes
                advance(batch.bytes, batches=1, files=len(batch.files), actions=actions)
                reporter.event("batch_committed", table=table_name, run_id=run.run_id, batch=batch.number,
                               of=len(batches), versions=[batch.first_version, batch.last_version], actions=actions,
                               peak_rss_bytes=peak)
                limit = con.catalog.memory_limit_bytes
                if limit is not None and peak > limit and number < len(todo):
                    raise MemoryLimitReached(
                        f"{table_name}: the process's peak memory, {peak >> 20} MiB, passed --memory-limit "
                        f"({limit >> 20} MiB) after batch {batch.number} of {len(batches)}; the committed batches "
                        "stay: run `migrate` again with a higher --memory-limit (or smaller --batch-size / "
                        "--checkpoint-batch-rows) to resume")
    finally:
        for reader in readers:
            reader.close()


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class MemoryLimitReached(Delta2SqlError):
    """The run passed --memory-limit: it stops between batches, resumable, before the OS kills it."""


def _publish(con: CatalogConnection, table_name: str, segment: LogSegment, run: _Run, reporter: Reporter,
             started: float) -> None:
    """Check the landed log is replayable and make the run's versions visible, atomically, with the
    seconds since `started` (perf_counter) as this process's share of the landing."""
    con.begin()
    try:
        check_replayable(con, segment, table_name)
        for action_type, log_file, count in con.execute(load_sql("find_unknown_actions.sql"), [table_name]).fetchall():
            reporter.event("warning", table=table_name,
                           message=f"{table_name}: kept {count} unknown {action_type!r} action(s) verbatim (first in {log_file})")
        lifecycle.publish(con, table_name, run.run_id, run.mode, run.from_version, run.to_version,
                          time.perf_counter() - started)
        con.commit()
    except BaseException:
        con.rollback()
        raise


def _fail_run(con: CatalogConnection, run_id: str, error: str) -> None:
    try:
        lifecycle.fail_run(con, run_id, error)
    except Exception:  # noqa: BLE001, S110 - the connection may be what failed; the run then stays 'running'
        pass


def _open_run_once_its_owner_is_gone(con: CatalogConnection, table_name: str, options: RunOptions,
                                     reporter: Reporter) -> tuple[_Run | None, lifecycle.Lease | None]:
    """The table's unfinished run and its lease, once no other process is landing it: with
    `options.wait`, after that process ended (it may have finished the run: then none); without,
    RunInProgress naming the owner."""
    waited = False
    while (run := open_run(con, table_name)) is not None:
        lease = lifecycle.run_lease(con, run.run_id)
        if not lease.is_alive():
            return run, lease
        if not options.wait:
            raise lifecycle.RunInProgress(lifecycle.describe_in_progress(table_name, run.run_id, lease))
        if not waited:
            reporter.event("waiting", table=table_name, run_id=run.run_id, owner=lease.owner,
                           message=f"{table_name}: waiting for run {run.run_id[:8]} of {lease.owner} to end")
            waited = True
        time.sleep(WAIT_POLL_SECONDS)
    return None, None


def land_table(con: CatalogConnection, table_name: str, log: TableLog, target: str, options: RunOptions,
               reporter: Reporter, on_landing: Callable[[int], None] | None = None) -> LandingResult:
    """Bring `table_name`'s landing rows up to the log (or `options.version`): resume an
    unfinished run, start a full run for a new table (or with `full_refresh`), or catch up a
    landed one with the versions after its published version. Raises Delta2SqlError.

    `on_landing(bytes)` is called with the log bytes about to land, once the plan holds (not for a table
    already up to date, nor for a log refused while planning)."""
    started = time.perf_counter()
    create_landing_tables(con)
    run, lease = _open_run_once_its_owner_is_gone(con, table_name, options, reporter)
    state = table_state(con, table_name)
    if state and state["status"] in CATALOG_OWNED:  # the catalog holds versions the log does not
        reporter.event("table_finalized", table=table_name, message=f"{table_name}: finalized; its _delta_log is not "
                       "read (writers commit to the catalog); building the catalog tables only")
        return LandingResult(None, "finalized", state["replay_start_version"], state["latest_version"])
    if options.full_refresh:
        run = None  # the full run abandons it
    batches, skip, mode = [], 0, None
    if run is not None:
        why_not = _why_not_resumable(run, state, options)
        if why_not is None:
            try:
                segment = _segment_of(run, log, options.catalog_version)
            except DeltaLogError as exc:  # e.g. its checkpoint was cleaned up since
                why_not = str(exc)
        if why_not is None:
            batches = plan_batches(segment, run.batch_size, run.checkpoint_batch_rows,
                                   run.from_version - 1 if run.mode == "catch_up" else None, run.commit_batch_bytes)
            committed = _committed_batches(con, run.run_id)
            if not _same_batches(committed, batches):
                why_not = "the log no longer yields the batches it committed"
        if why_not is None:
            lifecycle.take_over(con, table_name, run.run_id, lease)
            mode, skip = "resume", len(committed)
            reporter.event("run_resumed", table=table_name, run_id=run.run_id, committed=skip, of=len(batches),
                           message=f"{table_name}: resuming run {run.run_id[:8]} after batch {skip} of {len(batches)}")
        else:
            lifecycle.abandon_run(con, run.run_id, why_not)
            reporter.event("warning", table=table_name,
                           message=f"{table_name}: run {run.run_id[:8]} abandoned: {why_not}; starting over")
            run = None
    if run is None:
        checkpoint_rows = options.checkpoint_batch_rows or default_checkpoint_batch_rows(target)
        catch_up = state is not None and not options.full_refresh and state["status"] in PUBLISHED
        if catch_up:
            published = state["latest_version"]
            if options.version is not None and options.version < published:
                raise Delta2SqlError(f"{table_name}: the catalog is at version {published}; it cannot go back to "
                                     f"{options.version} (use --full-refresh to re-land)")
            _check_landed_log_unchanged(con, table_name, log, published)
            segment = plan_segment(log, options.version, after_version=published,
                                   catalog_version=options.catalog_version)
            if segment.latest_version == published:
                return LandingResult(None, "up_to_date", state["replay_start_version"], published)
            batches, mode = plan_batches(segment, options.batch_size, checkpoint_rows, published), "catch_up"
        else:
            segment = plan_segment(log, options.version, options.full_history,
                                   catalog_version=options.catalog_version)
            batches, mode = plan_batches(segment, options.batch_size, checkpoint_rows), "full"
        for warning in segment.warnings:
            reporter.event("warning", table=table_name, message=f"{table_name}: {warning}")
        planned = _estimate(con, table_name, target, segment, mode, checkpoint_rows)
        run = _start_run(con, table_name, target, segment, mode, options, batches, planned)
        if planned is not None:
            reporter.event("estimate", table=table_name, run_id=run.run_id, **planned.as_dict(),
                           message=f"{table_name}: estimated {planned.range_text} ({planned.calibration})")

    state = table_state(con, table_name)
    result = LandingResult(run.run_id, mode, state["replay_start_version"], run.to_version, batches_skipped=skip,
                           warnings=segment.warnings)
    try:
        if on_landing is not None:
            on_landing(sum(batch.bytes for batch in batches[skip:]))
        _land_batches(con, table_name, segment, run, batches, skip, options, reporter, result)
        unindexed = index_landed_actions(con)
        if unindexed:
            reporter.event("warning", table=table_name, message=f"{table_name}: {unindexed}")
        con.analyze(("delta_log_actions", "delta_log_files", "delta_log_tables"))
        con.flush()
        _publish(con, table_name, segment, run, reporter, started)
    except Delta2SqlError as exc:
        _fail_run(con, run.run_id, str(exc))
        raise
    except Exception as exc:
        _fail_run(con, run.run_id, repr(exc))
        raise
    return result
