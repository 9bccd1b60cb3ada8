-- Split JSON log files (commits, V2 JSON checkpoints) of raw_log_files (extract._read_log_files)
-- into one row per line, keeping the exact line text. decode() rejects bytes that are not UTF-8.
-- A blank line (only spaces, tabs or a carriage return) is no action, but is kept, flagged, so
-- that the file rebuilds byte for byte (delta_log_files.blank_lines). The empty string after a
-- final newline is not a line (ends_with_newline, describe_log_files.sql, records it).
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
        generate_subscripts(lines, 1) as line_number,
        len(lines) as num_lines
    from files
)

select
    log_file,
    cast(left(parse_filename(log_file), 20) as bigint) as version,  -- also _staged_commits/<v>.<uuid>.json
    line_number,
    raw_line,
    trim(raw_line, ' ' || chr(9) || chr(13)) = '' as is_blank
from numbered_lines
where not (line_number = num_lines and raw_line = '')
