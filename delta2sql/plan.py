"""`delta2sql plan` / `migrate --dry-run`: what a migration would read, and how long it would take.

Nothing is written. The checkpoint's row count comes from its Parquet footers, the JSON commits'
action count from the bytes per action of a sample of them, and the duration from those at the
rates `delta2sql calibrate` measured on this machine (`estimate.py`). For a table already in the
catalog, the plan is what `migrate` would actually do: nothing (up to date), a catch-up of the
versions after the catalog's, or the rest of an interrupted run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from delta2sql import calibration, rate_limit
from delta2sql.batches import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CHECKPOINT_BATCH_ROWS,
    default_checkpoint_batch_rows,
    plan_batches,
)
from delta2sql.catalog import Catalog
from delta2sql.catalog_state import catalog_exists
from delta2sql.estimate import Workload, catalog_holdings, estimate, workload
from delta2sql.lifecycle import CATALOG_OWNED, PUBLISHED
from delta2sql.log_listing import checkpoint_footers, plan_segment
from delta2sql.log_store import session
from delta2sql.names import table_name as checked_table_name
from delta2sql.runs import open_run, table_state


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
    work: Workload  # what drives each phase of the estimate
    estimate: dict | None = None  # estimate.Estimate.as_dict(); None when not calibrated
    estimate_basis: str = ""  # the calibration the estimate used, or why there is none
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
    checkpoint_batch_rows = checkpoint_batch_rows or default_checkpoint_batch_rows(catalog.target)
    with session():  # each log object read once
        plan = _plan_in_catalog(catalog, table_name, path, version, full_history, batch_size, checkpoint_batch_rows,
                                catalog_version, full_refresh)
    plan.max_rows_per_second = None if plan.mode == "finalized" else (catalog.max_rows_per_second
                                                                      or stored_cap(catalog))
    _estimate(plan, catalog)
    return plan


def _estimate(plan: MigrationPlan, catalog: Catalog) -> None:
    """The plan's time estimate at this machine's calibrated rates for the target, if any."""
    if plan.mode == "up_to_date":
        plan.estimate_basis = "up to date: `migrate` has nothing to land"
        return
    found, plan.estimate_basis = calibration.load(catalog.target)
    if found is None:
        return
    timed = estimate(plan.work, found.rates, plan.estimate_basis, plan.max_rows_per_second)
    if plan.mode == "resume":
        timed.assumptions.append(f"the whole run: {plan.committed_batches:,} of its {plan.batches:,} batches are "
                                 "committed already, so the rest takes less")
    plan.estimate = timed.as_dict()


def stored_cap(catalog: Catalog) -> float | None:
    """The cap this catalog's writers last used (`rate_limits`), for a plan given none."""
    if not catalog_exists(catalog):
        return None
    with catalog.connect() as con:
        return rate_limit.current_cap(con) if con.relation_exists("rate_limits") else None


def _plan_in_catalog(catalog: Catalog, table_name: str, path, version: int | None, full_history: bool,
                     batch_size: int, checkpoint_batch_rows: int | None, catalog_version: int | None,
                     full_refresh: bool) -> MigrationPlan:
    state, run, committed, held = None, None, 0, (0, 0, 0)
    if catalog_exists(catalog):
        with catalog.connect() as con:
            if con.relation_exists("delta_log_tables"):
                state = table_state(con, table_name)
                run = None if full_refresh else open_run(con, table_name)
                if run is not None:
                    committed = con.execute("select count(*) from migration_batches where run_id = ?",
                                            [run.run_id]).fetchall()[0][0]
                replaced = state is None or full_refresh or (run is not None and run.mode == "full") or \
                    state["status"] not in PUBLISHED
                held = catalog_holdings(con, table_name if replaced else None)
    options = dict(version=version, batch_size=batch_size, checkpoint_batch_rows=checkpoint_batch_rows,
                   catalog_version=catalog_version, held=held)
    if state is None or full_refresh:
        return make_plan(path, full_history=full_history, **options)
    status, published = state["status"], state["latest_version"]
    if status in CATALOG_OWNED:  # writers commit to the catalog: `migrate` reads no log
        return MigrationPlan(str(path), published, published, None, "finalized: the log is not read", 0, 0, 0, 0, 0,
                             0, 0, Workload(0, 0, 1, 0, 0, 0, *held), mode="finalized")
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
              checkpoint_batch_rows: int | None = None, catalog_version: int | None = None,
              after_version: int | None = None, mode: str = "full", held: tuple[int, int, int] = (0, 0, 0)) -> MigrationPlan:
    """The plan of landing `path`'s log into a catalog holding `held` (actions, log files, bytes)."""
    segment = plan_segment(path, version, full_history, after_version=after_version, catalog_version=catalog_version)
    checkpoint = segment.checkpoint
    footers = checkpoint_footers(segment)
    if after_version is not None:
        reason = f"the catalog holds the table up to version {after_version}: only the commits after it"
    elif full_history:
        reason = "--full-history: every JSON commit from version 0"
    elif checkpoint is None:
        reason = "no usable checkpoint at or below the version: every JSON commit from version 0"
    else:
        reason = (f"newest complete checkpoint at or below version {segment.latest_version}"
                  + (" (after the warnings below)" if segment.warnings else ""))
    slice_rows = checkpoint_batch_rows or DEFAULT_CHECKPOINT_BATCH_ROWS
    work = workload(segment, footers, slice_rows, held)
    return MigrationPlan(
        table_root=segment.uri,
        replay_start_version=segment.replay_start_version if segment.checkpoint or segment.commits
        else segment.latest_version,
        latest_version=segment.latest_version,
        checkpoint=f"{checkpoint.kind} at version {checkpoint.version}" if checkpoint else None,
        checkpoint_reason=reason, checkpoint_files=len(footers.files),
        checkpoint_bytes=sum(f.size_bytes for f in footers.files), checkpoint_actions=footers.rows,
        commit_files=work.commit_files, commit_bytes=work.commit_bytes, commit_actions_estimate=work.commit_actions,
        batches=len(plan_batches(segment, batch_size, slice_rows, after_version)),
        work=work, warnings=segment.warnings, mode=mode,
    )
