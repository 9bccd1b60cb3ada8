-- The blank lines of each JSON file in raw_log_lines (read_commit_lines.sql): one JSON object
-- per file, line number -> exact text, in line order. Files without blank lines have no row.
select
    log_file,
    cast(to_json(map(
        list(cast(line_number as varchar) order by line_number),
        list(raw_line order by line_number)
    )) as varchar) as blank_lines
from raw_log_lines
where is_blank
group by log_file
