-- The bytes of a batch of JSON log files, read once: they are split into lines from them
-- (read_commit_lines.sql) and every file's size and sha256 come from them (describe_log_files.sql).
-- $files: absolute paths; $log_dir: the _delta_log directory.
select
    substr(filename, length($log_dir) + 2) as log_file,
    content
from read_blob($files)
