{{ config(materialized='view') }}
-- A view, so status and migrated_at are current as soon as the CLI marks a table migrated.

with tables as (
    select * from {{ ref('stg_delta_log__tables') }}
),

metadata as (
    select * from {{ ref('stg_delta_log__metadata') }}
),

newest_metadata as (
    select
        table_name,
        metadata_id,
        row_number() over (partition by table_name order by version desc, line_number desc) as recency
    from metadata
    where source in ('checkpoint', 'commit')
),

final as (
    select
        tables.table_name,
        tables.table_uri,
        newest_metadata.metadata_id as delta_table_id,
        tables.replay_start_version,
        tables.latest_version,
        tables.built_version,
        tables.checkpoint_version,
        tables.checkpoint_kind,
        tables.status,
        tables.migrated_at,
        tables.finalized_version
    from tables
    left join newest_metadata
        on tables.table_name = newest_metadata.table_name
        and newest_metadata.recency = 1
)

select * from final
