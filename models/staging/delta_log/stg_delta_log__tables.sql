with source as (
    select * from {{ source('delta_log', 'delta_log_tables') }}
),

renamed as (
    select
        table_name,
        table_uri,
        replay_start_version,
        latest_version,
        built_version,
        checkpoint_version,
        checkpoint_kind,
        status,
        listing_warnings,
        landed_at,
        migrated_at,
        finalized_version,
        finalized_at
    from source
)

select * from renamed
