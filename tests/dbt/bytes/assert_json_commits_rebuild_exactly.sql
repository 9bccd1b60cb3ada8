{{ config(tags=['bytes']) }}
-- Each JSON log file is stored whole: its actions, re-read from disk by Python now, equal the
-- stored actions one for one (text, line number and order), and its blank lines and final
-- newline are recorded as they are. An action is the whole lines of one JSON object (several
-- lines when a writer pretty-printed it), numbered by the line it starts on. With
-- assert_log_files_unchanged (same sha256 as at landing), the stored actions rebuild the landed
-- bytes exactly. No SQL hash function needed, so the test runs on every engine.

with log_files as (
    select * from {{ ref('stg_delta_log__log_files') }}
    where log_file like '%.json' and {{ in_scope('table_name') }} and {{ references_loaded('table_name', 'bytes') }}
),

actions as (
    select * from {{ ref('base_delta_log__published_actions') }}
),

reference_lines as (
    select * from {{ source('validation', 'reference_log_lines') }}
),

stored_lines as (
    select actions.table_name, actions.log_file, actions.line_number, actions.action_json
    from actions
    inner join log_files
        on actions.table_name = log_files.table_name
        and actions.log_file = log_files.log_file
),

expected_lines as (
    select reference_lines.*
    from reference_lines
    inner join log_files
        on reference_lines.table_name = log_files.table_name
        and reference_lines.log_file = log_files.log_file
),

compared_lines as (
    select
        coalesce(stored_lines.table_name, expected_lines.table_name) as table_name,
        coalesce(stored_lines.log_file, expected_lines.log_file) as log_file,
        coalesce(stored_lines.line_number, expected_lines.line_number) as line_number,
        case
            when stored_lines.line_number is null then 'removed'
            when expected_lines.line_number is null then 'added'
            when stored_lines.action_json <> expected_lines.line_text then 'modified'
            else 'identical'
        end as diff_status,
        expected_lines.line_text as expected,
        stored_lines.action_json as observed
    from stored_lines
    full outer join expected_lines
        on stored_lines.table_name = expected_lines.table_name
        and stored_lines.log_file = expected_lines.log_file
        and stored_lines.line_number = expected_lines.line_number
),

compared_layouts as (
    select
        log_files.table_name,
        log_files.log_file,
        cast(null as bigint) as line_number,
        'modified' as diff_status,
        case when reference_layouts.ends_with_newline then 'ends with a newline' else 'no final newline' end
            || ', blank lines ' || coalesce(reference_layouts.blank_lines, 'none') as expected,
        case when log_files.ends_with_newline then 'ends with a newline' else 'no final newline' end
            || ', blank lines ' || coalesce(log_files.blank_lines, 'none') as observed
    from log_files
    inner join {{ source('validation', 'reference_log_files') }} as reference_layouts
        on log_files.table_name = reference_layouts.table_name
        and log_files.log_file = reference_layouts.log_file
    where log_files.ends_with_newline <> reference_layouts.ends_with_newline
        or log_files.blank_lines is distinct from reference_layouts.blank_lines
)

select * from compared_lines
where diff_status <> 'identical'
union all
select * from compared_layouts
