"""`rollback TABLE --to-version V`: undo the versions landed after V, before cut-over.

What was landed after V goes: the landing rows of those versions, the batches holding only them,
and the tail of the batch that holds V (its progress row is rewritten to end at V, with the
files, actions, bytes and checksum of what it keeps). The run holding V then ends at V,
published, and the runs after it are `rolled_back`; the table stands `landed` at V and its
catalog tables are rebuilt from the landed rows, with the build's checks (the log's `.crc` at V
included), so it ends `migrated` at V. A later `migrate` catches up from V + 1.

The same holds for a run that stopped before publishing (killed, or failed): what it committed
up to V is kept and published at V, so nothing below V is landed twice. After finalize the
catalog holds versions the log lacks: going back would drop them, so it is refused.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import pyarrow as pa

from delta2sql import lifecycle
from delta2sql.batches import batch_label
from delta2sql.catalog import Catalog, CatalogConnection, connect_duckdb
from delta2sql.errors import Delta2SqlError
from delta2sql.extract import ACTION_CHECKSUM
from delta2sql.landing_schema import create_landing_tables
from delta2sql.lifecycle import CATALOG_OWNED, RunStatus, TableStatus
from delta2sql.migrate import TableSpec, migrate_tables
from delta2sql.progress import Reporter
from delta2sql.reference import REFERENCE_TABLES, create_reference_tables
from delta2sql.runs import LANDING_TABLES, MART_TABLES

LIVE_RUNS = (RunStatus.RUNNING, RunStatus.FAILED, RunStatus.LANDED, RunStatus.MIGRATED)


@dataclass
class _Run:
    run_id: str
    mode: str
    from_version: int
    checkpoint_version: int | None
    num_batches: int
    status: str
    published_to: int | None  # its to_version once published, else None
    committed: list[tuple[int, int, int]]  # (batch_number, first_version, last_version)

    @property
    def reach(self) -> int:
        """The newest version whose rows this run landed (from_version - 1 if none)."""
        if self.published_to is not None:
            return self.published_to
        return max((last for *_, last in self.committed), default=self.from_version - 1)


@dataclass
class PartialRollback:
    table_name: str
    version: int
    removed_versions: tuple[int, int] | None  # the first and last version removed, if any
    batches_removed: int
    batches_cut: int
    runs_rolled_back: int


def rollback_to_version(catalog: Catalog, table_name: str, version: int, reporter: Reporter) -> PartialRollback:
    """Remove what was landed after `version` and build the table again at it. Raises
    Delta2SqlError, with nothing changed, when the table cannot stand at `version`."""
    with catalog.connect() as con:
        create_landing_tables(con)
        create_reference_tables(con)  # DDL first: SQLite's executescript would end the transaction
        status, start, latest, uri = _state(con, table_name)
        runs = _current_runs(con, table_name)
        # the newest version landed: the published one, or further by a run that has not published
        reach = max([run.reach for run in runs] + ([latest] if status != TableStatus.LANDING else []),
                    default=start - 1)
        _refuse_unless_possible(con, table_name, status, start, reach, runs, version)
        done = _cut(con, table_name, status, latest, reach, runs, version)
    # the catalog tables, rebuilt from the landed rows at `version` and checked (the build
    # compares them with the log's own checksums at it); `--version` keeps migrate from catching up
    [outcome] = migrate_tables([TableSpec(uri, table_name, version=version)], catalog, reporter)
    if outcome.status != "migrated":
        raise Delta2SqlError(f"{table_name}: rolled back to version {version}, but building the catalog tables "
                             f"failed: {outcome.error}; run `delta2sql rollback {shlex.quote(table_name)} "
                             f"--to-version {version}` again once that is fixed")
    removed = (f"versions {done.removed_versions[0]}..{done.removed_versions[1]} removed, "
               f"{done.batches_removed} batch(es) removed, {done.batches_cut} cut short, "
               f"{done.runs_rolled_back} run(s) rolled back" if done.removed_versions else "nothing landed after it")
    reporter.event("rolled_back", table=table_name, version=version,
                   removed_versions=list(done.removed_versions) if done.removed_versions else None,
                   batches_removed=done.batches_removed, batches_cut=done.batches_cut,
                   runs_rolled_back=done.runs_rolled_back,
                   message=f"{table_name}: migrated at version {version} ({removed}); `delta2sql migrate` catches "
                           f"up from version {version + 1}")
    return done


def _state(con: CatalogConnection, table_name: str) -> tuple:
    row = con.execute("select status, replay_start_version, latest_version, table_uri from delta_log_tables "
                      "where table_name = ?", [table_name]).fetchone()
    if row is None:
        raise Delta2SqlError(f"not in this catalog: {table_name}")
    return row


def _current_runs(con: CatalogConnection, table_name: str) -> list[_Run]:
    """The runs whose rows the catalog holds now: the newest full run that was not abandoned and
    the runs after it (those before it were cleared by it), oldest first."""
    rows = con.execute(
        f"select run_id, mode, from_version, checkpoint_version, num_batches, status, "
        f"case when landed_at is null then null else to_version end from migration_runs "
        f"where table_name = ? and status in ({lifecycle.sql_list(LIVE_RUNS)}) order by started_at, run_id",
        [table_name],
    ).fetchall()
    full = max((i for i, row in enumerate(rows) if row[1] == "full"), default=0)
    return [_Run(*row, committed=con.execute(
        "select batch_number, first_version, last_version from migration_batches where run_id = ? "
        "order by batch_number", [row[0]]).fetchall()) for row in rows[full:]]


def _refuse_unless_possible(con: CatalogConnection, table_name: str, status: str, start: int, reach: int,
                            runs: list[_Run], version: int) -> None:
    if status in CATALOG_OWNED:
        raise Delta2SqlError(
            f"{table_name}: refusing --to-version: the table is {status} (cut over), its versions after the cut-over "
            f"are committed in the catalog only and going back to {version} would drop committed versions; "
            f"`delta2sql rollback {shlex.quote(table_name)}` without --to-version writes them back to _delta_log")
    for run in runs:
        if run.status == RunStatus.RUNNING and (lease := lifecycle.run_lease(con, run.run_id)).is_alive():
            raise lifecycle.RunInProgress(lifecycle.describe_in_progress(table_name, run.run_id, lease))
    if version < start:
        raise Delta2SqlError(
            f"{table_name}: the catalog holds no version before {start} (its replay starts at the checkpoint of "
            f"version {start}); to stand at {version}, `delta2sql rollback {shlex.quote(table_name)}` it wholly and "
            f"migrate again with --version {version} --full-history")
    if version > reach:
        raise Delta2SqlError(f"{table_name}: only versions up to {reach} are landed; there is nothing after version "
                             f"{version} to roll back" if reach >= start else
                             f"{table_name}: no version is landed yet; nothing to roll back")
    for run in runs:  # a checkpoint is whole only once its last slice (or part, or sidecar) committed
        if (run.published_to is None and run.checkpoint_version == version and run.reach == version
                and len(run.committed) < run.num_batches):
            raise Delta2SqlError(f"{table_name}: run {run.run_id[:8]} stopped part-way through the checkpoint of "
                                 f"version {version}; `delta2sql migrate` resumes it")


def _cut(con: CatalogConnection, table_name: str, status: str, latest: int, reach: int, runs: list[_Run],
         version: int) -> PartialRollback:
    """In one transaction: the landing rows, batches, runs and table state after `version` go."""
    done = PartialRollback(table_name, version, (version + 1, reach) if reach > version else None, 0, 0, 0)
    to_publish = [run for run in runs if run.published_to is None and run.from_version <= version <= run.reach]
    if done.removed_versions is None and not to_publish and status != TableStatus.LANDING and latest == version:
        return done  # already there (a rollback run again after its build failed: only the build is left)
    cut_batches = [(run, _kept_part(con, table_name, run_id=run.run_id, number=number, first=first, version=version))
                   for run in runs for number, first, last in run.committed if first <= version < last]
    con.begin()
    try:
        for run in runs:
            if run.status == RunStatus.RUNNING:  # its owner is gone (checked): this process takes its lease
                lifecycle.take_over(con, table_name, run.run_id, lifecycle.run_lease(con, run.run_id))
            after = [number for number, first, _ in run.committed if first > version]
            if after:
                con.execute("delete from migration_batches where run_id = ? and batch_number >= ?",
                            [run.run_id, min(after)])
                done.batches_removed += len(after)
            if run.from_version > version:
                lifecycle.roll_back_run(con, run.run_id, version)
                done.runs_rolled_back += 1
            elif run.reach > version or run in to_publish:
                lifecycle.cut_run(con, run.run_id, version, len(run.committed) - len(after))
        for run, kept in cut_batches:
            con.execute("update migration_batches set last_version = ?, log_files = ?, files = ?, actions = ?, "
                        "bytes = ?, checksum = ? where run_id = ? and batch_number = ?", [version, *kept])
            done.batches_cut += 1
        for table in LANDING_TABLES:
            con.execute(f"delete from {table} where table_name = ? and version > ?", [table_name, version])
        for table in (*MART_TABLES, *REFERENCE_TABLES, "validation_results", "validation_runs"):
            if con.relation_exists(table):  # rebuilt (or checked) again at `version`
                con.execute(f"delete from {table} where table_name = ?", [table_name])
        lifecycle.roll_back_to(con, table_name, version)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return done


def _kept_part(con: CatalogConnection, table_name: str, run_id: str, number: int, first: int,
               version: int) -> list:
    """A JSON commit batch cut at `version`: the label, files, actions, bytes and checksum of the
    commits it keeps (a checkpoint batch holds one version: it is kept or removed whole), and its key."""
    names, sizes = zip(*con.execute(
        "select log_file, size_bytes from delta_log_files where table_name = ? "
        "and file_kind in ('commit', 'staged_commit') and version between ? and ? order by version",
        [table_name, first, version],
    ).fetchall())
    rows = con.execute(
        "select log_file, line_number, action_json from delta_log_actions where table_name = ? and source = 'commit' "
        "and version between ? and ?", [table_name, first, version],
    ).fetchall()
    kept = pa.table({"log_file": pa.array([r[0] for r in rows], pa.string()),
                     "line_number": pa.array([r[1] for r in rows], pa.int64()),
                     "action_json": pa.array([r[2] for r in rows], pa.string())})
    # the same sum `land_batch` took, by the same engine
    with connect_duckdb() as engine:
        (total,) = engine.register("kept", kept).execute(
            f"select coalesce(sum({ACTION_CHECKSUM}), 0) from kept").fetchone()
    return [batch_label(names[0], len(names)), len(names), len(rows), sum(sizes), f"md5sum:{int(total)}", run_id,
            number]
