-- The landed actions the catalog may show: those of each table's published versions. Rows of a
-- run still landing stay invisible: all of a first run (table status 'landing'), and the
-- versions after the published latest_version of a catch-up, so an interrupted run never
-- shows in the catalog tables.

with actions as (
    select * from {{ source('delta_log', 'delta_log_actions') }}
),

published_tables as (
    select table_name, latest_version
    from {{ source('delta_log', 'delta_log_tables') }}
    where status <> 'landing'
),

published_actions as (
    select actions.*
    from actions
    inner join published_tables
        on actions.table_name = published_tables.table_name
        and actions.version <= published_tables.latest_version
)

select * from published_actions
