{{ config(unique_key=['table_name', 'version']) }}
-- Incremental: a build replays only the versions after each table's built version.

with removes as (
    select * from {{ ref('stg_delta_log__removes') }}
),

tables as (
    select table_name, built_version from {{ ref('stg_delta_log__tables') }}
),

final as (
    select
        removes.table_name,
        removes.version,
        path,
        dv_id,
        deletion_timestamp,
        data_change,
        extended_file_metadata,
        partition_values,
        size_bytes,
        stats,
        tags,
        deletion_vector,
        base_row_id,
        default_row_commit_version,
        -- tombstones carried by the checkpoint record removals from before the replay start;
        -- their version is the checkpoint's
        removes.source = 'checkpoint' as is_checkpoint_tombstone,
        log_file,
        line_number
    from removes
    inner join tables
        on removes.table_name = tables.table_name
    where removes.source in ('checkpoint', 'commit')
        and removes.version > {{ replay_after('tables.built_version') }}
)

select * from final
