with domain_metadata as (
    select * from {{ ref('stg_delta_log__domain_metadata') }}
),

final as (
    select
        table_name,
        version,
        domain,
        domain_configuration,
        is_removed,
        log_file,
        line_number
    from domain_metadata
    where source in ('checkpoint', 'commit')
)

select * from final
