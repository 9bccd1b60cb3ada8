-- One row per table for `delta2sql metrics`: its state, the work its runs committed, its latest
-- validation and its newest drift check. Reads the catalog only: no log is listed.
with committed as (
    select
        table_name,
        count(*) as batches,
        sum(actions) as actions,
        sum(bytes) as bytes
    from migration_batches
    group by table_name
),

latest_checks as (
    select table_name, max(checked_at) as checked_at
    from validation_results
    group by table_name
),

latest_validation as (
    select
        results.table_name,
        results.checked_at,
        sum(case when results.status = 'pass' then 1 else 0 end) as passed,
        sum(case when results.status = 'fail' then 1 else 0 end) as failed,
        sum(case when results.status = 'error' then 1 else 0 end) as errored
    from validation_results as results
    inner join latest_checks
        on results.table_name = latest_checks.table_name
        and results.checked_at = latest_checks.checked_at
    group by results.table_name, results.checked_at
),

ranked_drift_checks as (
    select
        table_name,
        checked_at,
        catalog_version,
        log_version,
        findings,
        exit_code,
        row_number() over (partition by table_name order by checked_at desc) as recency
    from drift_checks
),

clean_drift_checks as (
    select table_name, max(checked_at) as checked_at
    from drift_checks
    where exit_code = 0
    group by table_name
)

select
    tables.table_name,
    tables.status,
    tables.latest_version,
    tables.built_version,
    coalesce(committed.batches, 0) as batches_committed,
    coalesce(committed.actions, 0) as actions_committed,
    coalesce(committed.bytes, 0) as bytes_committed,
    latest_validation.checked_at as validated_at,
    latest_validation.passed,
    latest_validation.failed,
    latest_validation.errored,
    drift.checked_at as drift_checked_at,
    drift.log_version as drift_log_version,
    drift.findings as drift_findings,
    clean_drift_checks.checked_at as in_sync_at
from delta_log_tables as tables
left join committed
    on tables.table_name = committed.table_name
left join latest_validation
    on tables.table_name = latest_validation.table_name
left join ranked_drift_checks as drift
    on tables.table_name = drift.table_name
    and drift.recency = 1
left join clean_drift_checks
    on tables.table_name = clean_drift_checks.table_name
order by tables.table_name
