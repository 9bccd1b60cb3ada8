with source as (
    select * from {{ ref('base_delta_log__published_log_files') }}
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
        blank_lines,
        modification_time
    from source
)

select * from renamed
