{{ config(unique_key=['table_name', 'version']) }}
-- Incremental: a build replays only the versions after each table's built version.

with domain_metadata as (
    select * from {{ ref('stg_delta_log__domain_metadata') }}
),

tables as (
    select table_name, built_version from {{ ref('stg_delta_log__tables') }}
),

final as (
    select
        domain_metadata.table_name,
        domain_metadata.version,
        domain,
        domain_configuration,
        is_removed,
        log_file,
        line_number
    from domain_metadata
    inner join tables
        on domain_metadata.table_name = tables.table_name
    where domain_metadata.source in ('checkpoint', 'commit')
        and domain_metadata.version > {{ replay_after('tables.built_version') }}
)

select * from final
