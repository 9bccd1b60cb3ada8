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
        -- numerics
        size_bytes,
        num_records,
        base_row_id,
        default_row_commit_version,
        -- booleans
        data_change,
        extended_file_metadata,
        -- timestamps
        deletion_timestamp
    from source
    where action_type = 'remove'
)

select * from renamed
