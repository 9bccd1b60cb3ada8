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
        metadata_id,
        -- text
        metadata_name,
        metadata_description,
        format_provider,
        format_options,
        schema_string,
        partition_columns,
        configuration,
        -- timestamps
        created_time
    from source
    where action_type = 'metaData'
)

select * from renamed
