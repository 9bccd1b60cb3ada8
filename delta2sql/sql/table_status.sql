-- One row per landed table: its state, versions, its latest migration run with its committed
-- batches and its estimate beside what it took, and the outcome of its latest validation run.
with latest_runs as (
    select
        runs.table_name,
        runs.run_id,
        runs.mode as run_mode,
        runs.status as run_status,
        runs.num_batches,
        runs.error as run_error,
        runs.owner_host,
        runs.owner_pid,
        runs.heartbeat_at,
        runs.lease_expires_at,
        runs.estimate_low_seconds,
        runs.estimate_high_seconds,
        runs.landing_seconds + runs.build_seconds as run_seconds,
        row_number() over (partition by runs.table_name order by runs.started_at desc, runs.run_id) as recency
    from migration_runs as runs
),

committed_batches as (
    select run_id, count(*) as batches_committed, sum(actions) as actions_committed
    from migration_batches
    group by run_id
),

latest_checks as (
    select table_name, max(checked_at) as checked_at
    from validation_results
    group by table_name
),

latest_outcome as (
    select
        results.table_name,
        results.checked_at,
        sum(case when results.status = 'pass' then 1 else 0 end) as passed,
        sum(case when results.status in ('fail', 'error') then 1 else 0 end) as failed
    from validation_results as results
    inner join latest_checks
        on results.table_name = latest_checks.table_name
        and results.checked_at = latest_checks.checked_at
    group by results.table_name, results.checked_at
)

select
    tables.table_name,
    tables.table_uri,
    tables.status,
    tables.replay_start_version,
    tables.latest_version,
    tables.built_version,
    tables.finalized_version,
    tables.checkpoint_kind,
    tables.migrated_at,
    latest_runs.run_mode,
    latest_runs.run_status,
    coalesce(committed_batches.batches_committed, 0) as batches_committed,
    latest_runs.num_batches,
    latest_runs.run_error,
    latest_runs.owner_host,
    latest_runs.owner_pid,
    latest_runs.heartbeat_at,
    latest_runs.lease_expires_at,
    latest_runs.estimate_low_seconds as run_estimate_low_seconds,
    latest_runs.estimate_high_seconds as run_estimate_high_seconds,
    latest_runs.run_seconds,
    latest_outcome.checked_at,
    latest_outcome.passed,
    latest_outcome.failed
from delta_log_tables as tables
left join latest_runs
    on tables.table_name = latest_runs.table_name
    and latest_runs.recency = 1
left join committed_batches
    on latest_runs.run_id = committed_batches.run_id
left join latest_outcome
    on tables.table_name = latest_outcome.table_name
order by tables.table_name
