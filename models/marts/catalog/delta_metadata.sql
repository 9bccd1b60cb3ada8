with metadata as (
    select * from {{ ref('stg_delta_log__metadata') }}
),

final as (
    select
        table_name,
        version,
        metadata_id,
        metadata_name,
        metadata_description,
        format_provider,
        format_options,
        schema_string,
        partition_columns,
        configuration,
        created_time,
        log_file,
        line_number
    from metadata
    where source in ('checkpoint', 'commit')
)

select * from final
