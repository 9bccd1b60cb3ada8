{{ config(unique_key=['table_name', 'version']) }}
-- Incremental: a build replays only the versions after each table's built version.

with protocols as (
    select * from {{ ref('stg_delta_log__protocols') }}
),

tables as (
    select table_name, built_version from {{ ref('stg_delta_log__tables') }}
),

final as (
    select
        protocols.table_name,
        protocols.version,
        min_reader_version,
        min_writer_version,
        reader_features,
        writer_features,
        log_file,
        line_number
    from protocols
    inner join tables
        on protocols.table_name = tables.table_name
    where protocols.source in ('checkpoint', 'commit')
        and protocols.version > {{ replay_after('tables.built_version') }}
)

select * from final
