-- Split JSON log files (commits, V2 JSON checkpoints) of raw_log_files (read_log_files.sql)
-- into one row per line, keeping the exact line text. decode() rejects bytes that are not UTF-8.
-- Blank lines are not actions; ends_with_newline (describe_log_files.sql) keeps the bytes exact.
with files as (
    select
        log_file,
        string_split(decode(content), chr(10)) as lines
    from raw_log_files
),

numbered_lines as (
    select
        log_file,
        unnest(lines) as raw_line,
        generate_subscripts(lines, 1) as line_number
    from files
)

select
    log_file,
    cast(left(log_file, 20) as bigint) as version,
    line_number,
    raw_line
from numbered_lines
where raw_line <> ''
