{{ config(unique_key=['table_name', 'version']) }}
-- Incremental: a build replays only the versions after each table's built version.

with txns as (
    select * from {{ ref('stg_delta_log__txns') }}
),

tables as (
    select table_name, built_version from {{ ref('stg_delta_log__tables') }}
),

final as (
    select
        txns.table_name,
        txns.version,
        app_id,
        txn_version,
        last_updated,
        log_file,
        line_number
    from txns
    inner join tables
        on txns.table_name = tables.table_name
    where txns.source in ('checkpoint', 'commit')
        and txns.version > {{ replay_after('tables.built_version') }}
)

select * from final
