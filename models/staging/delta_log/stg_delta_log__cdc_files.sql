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
        -- text
        partition_values,
        tags,
        -- numerics
        size_bytes,
        -- booleans
        data_change
    from source
    where action_type = 'cdc'
)

select * from renamed
