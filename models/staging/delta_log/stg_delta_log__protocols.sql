with source as (
    select * from {{ source('delta_log', 'delta_log_actions') }}
),

renamed as (
    select
        -- ids
        table_name,
        version,
        log_file,
        line_number,
        source,
        -- text
        reader_features,
        writer_features,
        -- numerics
        min_reader_version,
        min_writer_version
    from source
    where action_type = 'protocol'
)

select * from renamed
