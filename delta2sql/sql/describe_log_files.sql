-- Size, sha256 and final newline of the files in raw_log_files (extract._read_log_files), as read.
select
    log_file,
    octet_length(content) as size_bytes,
    sha256(content) as sha256,
    hex(content[octet_length(content):]) = '0A' as ends_with_newline
from raw_log_files
