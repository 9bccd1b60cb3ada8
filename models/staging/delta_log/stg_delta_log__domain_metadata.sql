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
        domain,
        -- text
        domain_configuration,
        -- booleans
        is_domain_removed as is_removed
    from source
    where action_type = 'domainMetadata'
)

select * from renamed
