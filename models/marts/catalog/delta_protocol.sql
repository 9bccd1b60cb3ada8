with protocols as (
    select * from {{ ref('stg_delta_log__protocols') }}
),

final as (
    select
        table_name,
        version,
        min_reader_version,
        min_writer_version,
        reader_features,
        writer_features,
        log_file,
        line_number
    from protocols
    where source in ('checkpoint', 'commit')
)

select * from final
