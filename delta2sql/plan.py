"""`delta2sql plan` / `migrate --dry-run`: what a migration would read, and how long it would take.

Nothing is written: the checkpoint's row count comes from its Parquet footers, the JSON action
count is extrapolated from a sample of commit files, and the duration from landing that sample
into an in-memory DuckDB (the same code path as a migration). For a table already in the catalog,
the plan is what `migrate` would actually do: nothing (up to date), a catch-up of the versions
after the catalog's, or the rest of an interrupted run.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import duckdb

from delta2sql import rate_limit
from delta2sql.batches import DEFAULT_BATCH_SIZE, DEFAULT_CHECKPOINT_BATCH_ROWS, Batch, plan_batches
from delta2sql.catalog import Catalog
from delta2sql.catalog_state import catalog_exists
from delta2sql.extract import land_batch, load_sql
from delta2sql.lifecycle import CATALOG_OWNED, PUBLISHED
from delta2sql.log_listing import checkpoint_files_and_rows, plan_segment
from delta2sql.log_store import session
from delta2sql.names import table_name as checked_table_name
from delta2sql.runs import open_run, table_state

# dbt's share of a migration (start-up, parse, build) measured here: see README "Performance".
DBT_SECONDS = 6.0


@dataclass
class MigrationPlan:
    table_root: str
    replay_start_version: int
    latest_version: int
    checkpoint: str | None
    checkpoint_reason: str
    checkpoint_files: int
    checkpoint_bytes: int
    checkpoint_actions: int
    commit_files: int
    commit_bytes: int
    commit_actions_estimate: int
    batches: int
    sample_files: int
    sample_seconds: float
    estimated_seconds: float
    warnings: list[str] = field(default_factory=list)
    mode: str = "full"  # full | catch_up | up_to_date | resume | finalized (what `migrate` would do)
    committed_batches: int = 0  # resume: batches the interrupted run already committed
    max_rows_per_second: float | None = None  # the catalog's write cap, if any: the estimate allows for it

    def as_dict(self) -> dict:
        return asdict(self)


def plan_in_catalog(catalog: Catalog, table_name: str, path, version: int | None = None, full_history: bool = False,
                    batch_size: int = DEFAULT_BATCH_SIZE, checkpoint_batch_rows: int | None = None,
                    catalog_version: int | None = None, full_refresh: bool = False) -> MigrationPlan:
    """The plan of what `migrate` would do to `table_name` in `catalog`, as `land_table` decides it."""
    table_name = checked_table_name(table_name)  # refused, or found, as `migrate` would (delta2sql/names.py)
    with session():  # each log object read once
        plan = _plan_in_catalog(catalog, table_name, path, version, full_history, batch_size, checkpoint_batch_rows,
                                catalog_version, full_refresh)
    cap = catalog.max_rows_per_second or stored_cap(catalog)
    if cap and plan.mode != "finalized":  # landing cannot go faster than the cap lets its rows in
        plan.max_rows_per_second = cap
        rows = plan.checkpoint_actions + plan.commit_actions_estimate
        plan.estimated_seconds = round(max(plan.estimated_seconds, rows / cap + DBT_SECONDS), 1)
    return plan


def stored_cap(catalog: Catalog) -> float | None:
    """The cap this catalog's writers last used (`rate_limits`), for a plan given none."""
    if not catalog_exists(catalog):
        return None
    with catalog.connect() as con:
        return rate_limit.current_cap(con) if con.relation_exists("rate_limits") else None


def _plan_in_catalog(catalog: Catalog, table_name: str, path, version: int | None, full_history: bool,
                     batch_size: int, checkpoint_batch_rows: int | None, catalog_version: int | None,
                     full_refresh: bool) -> MigrationPlan:
    state, run, committed = None, None, 0
    if catalog_exists(catalog):
        with catalog.connect() as con:
            if con.relation_exists("delta_log_tables"):
                state = table_state(con, table_name)
                run = None if full_refresh else open_run(con, table_name)
                if run is not None:
                    committed = con.execute("select count(*) from migration_batches where run_id = ?",
                                            [run.run_id]).fetchone()[0]
    options = dict(version=version, batch_size=batch_size, checkpoint_batch_rows=checkpoint_batch_rows,
                   catalog_version=catalog_version)
    if state is None or full_refresh:
        return make_plan(path, full_history=full_history, **options)
    status, published = state["status"], state["latest_version"]
    if status in CATALOG_OWNED:  # writers commit to the catalog: `migrate` reads no log
        return MigrationPlan(str(path), published, published, None, "finalized: the log is not read", 0, 0, 0, 0, 0, 0,
                             0, 0, 0.0, DBT_SECONDS, mode="finalized")
    if run is not None:
        after = run.from_version - 1 if run.mode == "catch_up" else None
        resumed = make_plan(path, full_history=full_history, after_version=after, mode="resume", **options)
        resumed.committed_batches = committed
        return resumed
    if status in PUBLISHED:
        plan = make_plan(path, after_version=published, mode="catch_up", **options)
        plan.mode = "catch_up" if plan.latest_version > published else "up_to_date"
        return plan
    return make_plan(path, full_history=full_history, **options)


def make_plan(path, version: int | None = None, full_history: bool = False, batch_size: int = DEFAULT_BATCH_SIZE,
              checkpoint_batch_rows: int | None = None, sample_size: int = 50,
              catalog_version: int | None = None, after_version: int | None = None, mode: str = "full") -> MigrationPlan:
    segment = plan_segment(path, version, full_history, after_version=after_version, catalog_version=catalog_version)
    checkpoint = segment.checkpoint
    checkpoint_files, checkpoint_actions = checkpoint_files_and_rows(segment)
    if after_version is not None:
        reason = f"the catalog holds the table up to version {after_version}: only the commits after it"
    elif full_history:
        reason = "--full-history: every JSON commit from version 0"
    elif checkpoint is None:
        reason = "no usable checkpoint at or below the version: every JSON commit from version 0"
    else:
        reason = (f"newest complete checkpoint at or below version {segment.latest_version}"
                  + (" (after the warnings below)" if segment.warnings else ""))

    commits = segment.commits
    step = max(1, len(commits) // sample_size)
    sample = commits[::step][:sample_size]
    sample_seconds, sample_actions = _time_sample(segment, sample)
    sample_bytes = sum(f.size_bytes for f in sample) or 1
    commit_bytes = sum(f.size_bytes for f in commits)
    commit_actions = round(sample_actions * commit_bytes / sample_bytes)
    checkpoint_bytes = sum(f.size_bytes for f in checkpoint_files)
    # JSON throughput from the sample; checkpoints parse at about the same bytes/s once read
    bytes_per_second = sample_bytes / sample_seconds if sample_seconds else float("inf")
    estimate = (commit_bytes + checkpoint_bytes) / bytes_per_second + DBT_SECONDS
    return MigrationPlan(
        table_root=segment.uri,
        replay_start_version=segment.replay_start_version if segment.checkpoint or commits else segment.latest_version,
        latest_version=segment.latest_version,
        checkpoint=f"{checkpoint.kind} at version {checkpoint.version}" if checkpoint else None,
        checkpoint_reason=reason, checkpoint_files=len(checkpoint_files), checkpoint_bytes=checkpoint_bytes,
        checkpoint_actions=checkpoint_actions, commit_files=len(commits), commit_bytes=commit_bytes,
        commit_actions_estimate=commit_actions,
        batches=len(plan_batches(segment, batch_size, checkpoint_batch_rows or DEFAULT_CHECKPOINT_BATCH_ROWS,
                                 after_version)),
        sample_files=len(sample), sample_seconds=round(sample_seconds, 3), estimated_seconds=round(estimate, 1),
        warnings=segment.warnings, mode=mode,
    )


def _time_sample(segment, sample) -> tuple[float, int]:
    """Land `sample` into a throw-away in-memory DuckDB; (seconds, actions)."""
    if not sample:
        return 0.0, 0
    con = duckdb.connect()
    try:
        con.execute(load_sql("create_landing_tables.sql"))
        con.execute("set preserve_insertion_order = false")
        started = time.perf_counter()
        batch = Batch(1, tuple(sample), "commit", "commit", sample[0].version, sample[-1].version)
        actions, _ = land_batch(con, segment, "plan", batch)
        return time.perf_counter() - started, actions
    finally:
        con.close()
