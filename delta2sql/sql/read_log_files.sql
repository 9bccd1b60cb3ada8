-- The bytes of a batch of log files, read once: JSON files are split into lines from them
-- (read_commit_lines.sql) and every file's size and sha256 come from them (describe_log_files.sql).
-- $files: absolute paths; $log_dir: the _delta_log directory.
select
    substr(filename, length($log_dir) + 2) as log_file,
    content
from read_blob($files)
