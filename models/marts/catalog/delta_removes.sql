with removes as (
    select * from {{ ref('stg_delta_log__removes') }}
),

final as (
    select
        table_name,
        version,
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
        source = 'checkpoint' as is_checkpoint_tombstone,
        log_file,
        line_number
    from removes
    where source in ('checkpoint', 'commit')
)

select * from final
