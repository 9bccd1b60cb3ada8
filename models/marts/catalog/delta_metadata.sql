{{ config(unique_key=['table_name', 'version']) }}
-- Incremental: a build replays only the versions after each table's built version.

with metadata as (
    select * from {{ ref('stg_delta_log__metadata') }}
),

tables as (
    select table_name, built_version from {{ ref('stg_delta_log__tables') }}
),

final as (
    select
        metadata.table_name,
        metadata.version,
        metadata_id,
        metadata_name,
        metadata_description,
        format_provider,
        format_options,
        schema_string,
        partition_columns,
        configuration,
        created_time,
        log_file,
        line_number
    from metadata
    inner join tables
        on metadata.table_name = tables.table_name
    where metadata.source in ('checkpoint', 'commit')
        and metadata.version > {{ replay_after('tables.built_version') }}
)

select * from final
