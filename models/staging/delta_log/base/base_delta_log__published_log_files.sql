-- The landed log files of each table's published versions (see base_delta_log__published_actions).

with log_files as (
    select * from {{ source('delta_log', 'delta_log_files') }}
),

published_tables as (
    select table_name, latest_version
    from {{ source('delta_log', 'delta_log_tables') }}
    where status <> 'landing'
),

published_log_files as (
    select log_files.*
    from log_files
    inner join published_tables
        on log_files.table_name = published_tables.table_name
        and log_files.version <= published_tables.latest_version
)

select * from published_log_files
