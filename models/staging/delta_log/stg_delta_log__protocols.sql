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
