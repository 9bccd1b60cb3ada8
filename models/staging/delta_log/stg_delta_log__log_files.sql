with source as (
    select * from {{ source('delta_log', 'delta_log_files') }}
),

renamed as (
    select
        table_name,
        log_file,
        file_kind,
        version,
        size_bytes,
        num_actions,
        sha256,
        ends_with_newline,
        modification_time
    from source
)

select * from renamed
