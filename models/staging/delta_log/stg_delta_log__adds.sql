with source as (
    select * from {{ ref('base_delta_log__published_actions') }}
),

renamed as (
    select
        -- ids
        table_name,
        version,
        log_file,
        line_number,
        source,
        path,
        dv_id,
        -- text
        partition_values,
        stats,
        tags,
        deletion_vector,
        clustering_provider,
        -- numerics
        size_bytes,
        num_records,
        base_row_id,
        default_row_commit_version,
        -- booleans
        data_change,
        -- timestamps
        modification_time
    from source
    where action_type = 'add'
)

select * from renamed
