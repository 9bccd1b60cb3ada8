with cdc_files as (
    select * from {{ ref('stg_delta_log__cdc_files') }}
),

final as (
    select
        table_name,
        version,
        path,
        partition_values,
        size_bytes,
        data_change,
        tags,
        log_file,
        line_number
    from cdc_files
    where source in ('checkpoint', 'commit')
)

select * from final
