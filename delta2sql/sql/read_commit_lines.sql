-- Split JSON commit files into one row per line, keeping the exact line text.
-- $files: absolute paths of the batch; $log_dir: the _delta_log directory (to name files relatively).
-- Blank lines are not actions; ends_with_newline lets validation rebuild the file's exact bytes.
with files as (
    select
        filename,
        content,
        string_split(content, chr(10)) as lines
    from read_text($files)
),

numbered_lines as (
    select
        substr(filename, length($log_dir) + 2) as log_file,
        unnest(lines) as raw_line,
        generate_subscripts(lines, 1) as line_number
    from files
)

select
    log_file,
    cast(left(log_file, 20) as bigint) as version,
    line_number,
    raw_line,
    raw_line as row_json
from numbered_lines
where raw_line <> ''
