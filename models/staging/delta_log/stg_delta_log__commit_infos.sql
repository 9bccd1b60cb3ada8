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
        -- text
        operation,
        operation_parameters,
        commit_info,
        -- timestamps
        commit_info_timestamp,
        in_commit_timestamp
    from source
    where action_type = 'commitInfo'
)

select * from renamed
