with file_lives as (
    select * from {{ ref('int_files_replayed_to_versions') }}
),

final as (
    select
        table_name,
        path,
        dv_id,
        added_version,
        removed_version,
        size_bytes,
        partition_values,
        modification_time,
        data_change,
        stats,
        num_records,
        tags,
        deletion_vector,
        base_row_id,
        default_row_commit_version,
        clustering_provider
    from file_lives
)

select * from final
