-- Size and sha256 of log files as read now (DuckDB reads the bytes).
-- $files: absolute paths; $log_dir: the _delta_log directory.
select
    substr(filename, length($log_dir) + 2) as log_file,
    size as size_bytes,
    sha256(content) as sha256,
    hex(content[octet_length(content):]) = '0A' as ends_with_newline
from read_blob($files)
