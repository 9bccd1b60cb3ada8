-- One row per landed table: its state, versions, and the outcome of its latest validation run.
with latest_checks as (
    select table_name, max(checked_at) as checked_at
    from validation_results
    group by table_name
),

latest_outcome as (
    select
        results.table_name,
        results.checked_at,
        sum(case when results.status = 'pass' then 1 else 0 end) as passed,
        sum(case when results.status <> 'pass' then 1 else 0 end) as failed
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
    tables.checkpoint_kind,
    tables.migrated_at,
    latest_outcome.checked_at,
    latest_outcome.passed,
    latest_outcome.failed
from delta_log_tables as tables
left join latest_outcome
    on tables.table_name = latest_outcome.table_name
order by tables.table_name
