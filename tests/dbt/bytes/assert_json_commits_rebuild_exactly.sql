{{ config(tags=['bytes']) }}
-- Each JSON log file rebuilt from its stored lines (in line order, newline-joined, plus the
-- final newline when the file had one) has the sha256 of the original file.

with log_files as (
    select * from {{ ref('stg_delta_log__log_files') }}
    where log_file like '%.json' {{ table_filter('table_name') }}
),

actions as (
    select * from {{ source('delta_log', 'delta_log_actions') }}
),

rebuilt as (
    select
        table_name,
        log_file,
        string_agg(action_json, chr(10) order by line_number) as content
    from actions
    where log_file like '%.json'
    group by table_name, log_file
),

compared as (
    select
        log_files.table_name,
        log_files.log_file,
        log_files.sha256 as expected,
        sha256(coalesce(rebuilt.content, '') || case when log_files.ends_with_newline then chr(10) else '' end) as observed
    from log_files
    left join rebuilt
        on log_files.table_name = rebuilt.table_name
        and log_files.log_file = rebuilt.log_file
)

select table_name, log_file, 'modified' as diff_status, expected, observed
from compared
where expected <> observed
