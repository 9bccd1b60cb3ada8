-- One row per row of a Parquet checkpoint file (classic, multi-part part, V2 top file or
-- sidecar), with each action family as a typed struct column. The zero-row template
-- (checkpoint_template.sql), read with union_by_name, supplies every field a checkpoint written
-- by an older writer lacks, as NULL. row_json is the action rebuilt as JSON: {"<family>": {...}};
-- a column of the file that is no action this reader knows is kept the same way (the protocol
-- lets writers add actions; extract.py fills in /* unknown actions */ from the file's schema).
-- $files: [template, checkpoint file]; $template: the template's path; $log_dir: the _delta_log
-- directory; $version: the checkpoint version; [$row_start, $row_end): the rows of this batch
-- (DuckDB skips the row groups outside it).
with checkpoint_rows as (
    select *
    from read_parquet($files, union_by_name = true, filename = true, file_row_number = true)
    where filename <> $template
        and file_row_number >= $row_start
        and file_row_number < $row_end
),

rebuilt as (
    select
        *,
        case
        when "add" is not null then json_object('add', "add")
        when "remove" is not null then json_object('remove', "remove")
        when "metaData" is not null then json_object('metaData', "metaData")
        when "protocol" is not null then json_object('protocol', "protocol")
        when "txn" is not null then json_object('txn', "txn")
        when "domainMetadata" is not null then json_object('domainMetadata', "domainMetadata")
        when "checkpointMetadata" is not null then json_object('checkpointMetadata', "checkpointMetadata")
        when "sidecar" is not null then json_object('sidecar', "sidecar")
        /* unknown actions */
    end as row_json
    from checkpoint_rows
)

select
    substr(filename, length($log_dir) + 2) as log_file,
    cast($version as bigint) as version,
    file_row_number + 1 as line_number,
    cast(null as varchar) as raw_line,
    row_json,
    "add",
    "remove",
    cast(null as struct(path varchar, partitionValues map(varchar, varchar), size bigint, dataChange boolean,
                        tags map(varchar, varchar))) as "cdc",
    "metaData",
    "protocol",
    "txn",
    "domainMetadata",
    cast(null as struct("timestamp" bigint, inCommitTimestamp bigint, operation varchar,
                        operationParameters json)) as "commitInfo",
    "checkpointMetadata",
    "sidecar",
    -- the cheap text test first: few files carry a deletion vector
    case when contains(row_json, '"deletionVector":{') then from_json(
        coalesce(json_extract(row_json, '$.add.deletionVector'), json_extract(row_json, '$.remove.deletionVector')),
        '{"storageType": "VARCHAR", "pathOrInlineDv": "VARCHAR", "offset": "INTEGER", "sizeInBytes": "INTEGER",
          "cardinality": "BIGINT"}'
    ) end as dv
from rebuilt
