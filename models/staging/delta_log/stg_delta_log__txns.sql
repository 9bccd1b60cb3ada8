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
        app_id,
        -- numerics
        txn_version,
        -- timestamps
        last_updated
    from source
    where action_type = 'txn'
)

select * from renamed
