{{ config(unique_key=['table_name', 'version']) }}
-- Incremental: a build replays only the versions after each table's built version.

with cdc_files as (
    select * from {{ ref('stg_delta_log__cdc_files') }}
),

tables as (
    select table_name, built_version from {{ ref('stg_delta_log__tables') }}
),

final as (
    select
        cdc_files.table_name,
        cdc_files.version,
        path,
        partition_values,
        size_bytes,
        data_change,
        tags,
        log_file,
        line_number
    from cdc_files
    inner join tables
        on cdc_files.table_name = tables.table_name
    where cdc_files.source in ('checkpoint', 'commit')
        and cdc_files.version > {{ replay_after('tables.built_version') }}
)

select * from final
