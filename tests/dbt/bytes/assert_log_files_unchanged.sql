{{ config(tags=['bytes']) }}
-- Every log file read (JSON commits, checkpoint parts, sidecars) still has, on disk, the size
-- and sha256 recorded when it was landed (re-read now with hashlib, not DuckDB).

with log_files as (
    select * from {{ ref('stg_delta_log__log_files') }}
    where {{ in_scope('table_name') }} and {{ references_loaded('table_name', 'bytes') }}
),

reference_log_files as (
    select * from {{ source('validation', 'reference_log_files') }}
),

compared as (
    select
        log_files.table_name,
        log_files.log_file,
        case
            when reference_log_files.log_file is null then 'removed'
            when reference_log_files.sha256 is null then 'removed'
            when reference_log_files.sha256 <> log_files.sha256
                or reference_log_files.size_bytes <> log_files.size_bytes then 'modified'
            else 'identical'
        end as diff_status,
        log_files.sha256 || ' (' || log_files.size_bytes || ' bytes)' as expected,
        coalesce(reference_log_files.sha256 || ' (' || reference_log_files.size_bytes || ' bytes)', 'file gone or not checked') as observed
    from log_files
    left join reference_log_files
        on log_files.table_name = reference_log_files.table_name
        and log_files.log_file = reference_log_files.log_file
)

select * from compared
where diff_status <> 'identical'
