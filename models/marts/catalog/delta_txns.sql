with txns as (
    select * from {{ ref('stg_delta_log__txns') }}
),

final as (
    select
        table_name,
        version,
        app_id,
        txn_version,
        last_updated,
        log_file,
        line_number
    from txns
    where source in ('checkpoint', 'commit')
)

select * from final
