-- One row per checkpoint row (classic, multi-part part, V2 top file or sidecar), as JSON text.
-- to_json of the whole row keeps every column the writer wrote, whatever the checkpoint schema
-- (optional columns such as stats_parsed, txn or domainMetadata may be absent).
-- $files: absolute paths; $log_dir: the _delta_log directory; $version: the checkpoint version.
select
    substr(checkpoint_rows.filename, length($log_dir) + 2) as log_file,
    cast($version as bigint) as version,
    checkpoint_rows.file_row_number + 1 as line_number,
    cast(null as varchar) as raw_line,
    to_json(checkpoint_rows) as row_json
from read_parquet($files, union_by_name = true, filename = true, file_row_number = true) as checkpoint_rows
