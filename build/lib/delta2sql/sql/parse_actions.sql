-- Turn typed log rows (read_checkpoint_rows.sql or parse_commit_lines.sql) into landing rows:
-- one per action, the action type being the one family present. Unknown fields are ignored, as
-- the protocol requires; an unknown action is kept verbatim.
-- $table_name: the catalog name of the table; $source: commit | checkpoint_commit | checkpoint.
-- Input relation raw_log_rows(log_file, version, line_number, raw_line, row_json, <families>, dv).
with typed as (
    select
        *,
        case
            when "add" is not null then 'add'
            when "remove" is not null then 'remove'
            when "cdc" is not null then 'cdc'
            when "metaData" is not null then 'metaData'
            when "protocol" is not null then 'protocol'
            when "txn" is not null then 'txn'
            when "domainMetadata" is not null then 'domainMetadata'
            when "commitInfo" is not null then 'commitInfo'
            when "checkpointMetadata" is not null then 'checkpointMetadata'
            when "sidecar" is not null then 'sidecar'
            else json_keys(row_json)[1]  -- an action this reader does not know
        end as action_type,
        coalesce(
            "add".partitionValues,
            "remove".partitionValues,
            "cdc".partitionValues,
            -- checkpoints written with writeStatsAsStruct only: rebuild from the typed column
            case when "add" is not null and "add".partitionValues is null
                then from_json(json_extract(row_json, '$.add.partitionValues_parsed'), '"MAP(VARCHAR, VARCHAR)"') end
        ) as partition_map,
        coalesce(
            "add".stats,
            "remove".stats,
            case when "add" is not null and "add".stats is null
                then cast(json_extract(row_json, '$.add.stats_parsed') as varchar) end
        ) as stats_text
    from raw_log_rows
)

select
    cast($table_name as varchar) as table_name,
    version,
    log_file,
    line_number,
    cast($source as varchar) as source,
    action_type,
    row_json as action_json,
    coalesce("add".path, "remove".path, "cdc".path, "sidecar".path) as path,
    case
        when dv.storageType is null then ''
        else dv.storageType || dv.pathOrInlineDv || coalesce('@' || dv."offset", '')
    end as dv_id,
    -- sorted keys: one canonical text per partition tuple, whichever writer produced it
    to_json(map_from_entries(list_sort(map_entries(partition_map)))) as partition_values,
    coalesce("add".size, "remove".size, "cdc".size, "sidecar".sizeInBytes) as size_bytes,
    coalesce("add".modificationTime, "sidecar".modificationTime) as modification_time,
    coalesce("add".dataChange, "remove".dataChange, "cdc".dataChange) as data_change,
    stats_text as stats,
    cast(json_extract(stats_text, '$.numRecords') as bigint) as num_records,
    cast(to_json(coalesce("add".tags, "remove".tags, "cdc".tags, "sidecar".tags, "checkpointMetadata".tags)) as varchar) as tags,
    case when dv is not null then cast(to_json(dv) as varchar) end as deletion_vector,
    coalesce("add".baseRowId, "remove".baseRowId) as base_row_id,
    coalesce("add".defaultRowCommitVersion, "remove".defaultRowCommitVersion) as default_row_commit_version,
    "add".clusteringProvider as clustering_provider,
    "remove".deletionTimestamp as deletion_timestamp,
    "remove".extendedFileMetadata as extended_file_metadata,
    "metaData".id as metadata_id,
    "metaData".name as metadata_name,
    "metaData".description as metadata_description,
    "metaData".format.provider as format_provider,
    cast(to_json("metaData".format.options) as varchar) as format_options,
    "metaData".schemaString as schema_string,
    cast(to_json("metaData".partitionColumns) as varchar) as partition_columns,
    cast(to_json("metaData".configuration) as varchar) as configuration,
    "metaData".createdTime as created_time,
    "protocol".minReaderVersion as min_reader_version,
    "protocol".minWriterVersion as min_writer_version,
    cast(to_json("protocol".readerFeatures) as varchar) as reader_features,
    cast(to_json("protocol".writerFeatures) as varchar) as writer_features,
    "txn".appId as app_id,
    "txn".version as txn_version,
    "txn".lastUpdated as last_updated,
    "domainMetadata".domain as domain,
    "domainMetadata".configuration as domain_configuration,
    "domainMetadata".removed as is_domain_removed,
    "commitInfo".timestamp as commit_info_timestamp,
    "commitInfo".inCommitTimestamp as in_commit_timestamp,
    "commitInfo".operation as operation,
    cast("commitInfo".operationParameters as varchar) as operation_parameters,
    case when action_type = 'commitInfo' then cast(json_extract(row_json, '$.commitInfo') as varchar) end as commit_info
from typed
where action_type is not null
