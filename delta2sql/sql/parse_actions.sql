-- Parse raw log rows (see read_commit_lines.sql / read_checkpoint_rows.sql) into typed action
-- columns. $table_name: the catalog name of the table; $source: commit | checkpoint_commit | checkpoint.
-- Input relation raw_log_rows(log_file, version, line_number, raw_line, row_json).
--
-- from_json parses each row once into a struct holding every Delta action family; the action
-- type is the one family present. Unknown fields are ignored, as the protocol requires.
with parsed as (
    select
        log_file,
        version,
        line_number,
        raw_line,
        row_json,
        from_json(row_json, '{
            "add": {"path": "VARCHAR", "partitionValues": "MAP(VARCHAR, VARCHAR)",
                    "partitionValues_parsed": "JSON", "size": "BIGINT", "modificationTime": "BIGINT",
                    "dataChange": "BOOLEAN", "stats": "VARCHAR", "stats_parsed": "JSON", "tags": "JSON",
                    "deletionVector": {"storageType": "VARCHAR", "pathOrInlineDv": "VARCHAR",
                                       "offset": "BIGINT", "sizeInBytes": "BIGINT", "cardinality": "BIGINT"},
                    "baseRowId": "BIGINT", "defaultRowCommitVersion": "BIGINT",
                    "clusteringProvider": "VARCHAR"},
            "remove": {"path": "VARCHAR", "deletionTimestamp": "BIGINT", "dataChange": "BOOLEAN",
                       "extendedFileMetadata": "BOOLEAN", "partitionValues": "MAP(VARCHAR, VARCHAR)",
                       "size": "BIGINT", "stats": "VARCHAR", "tags": "JSON",
                       "deletionVector": {"storageType": "VARCHAR", "pathOrInlineDv": "VARCHAR",
                                          "offset": "BIGINT", "sizeInBytes": "BIGINT", "cardinality": "BIGINT"},
                       "baseRowId": "BIGINT", "defaultRowCommitVersion": "BIGINT"},
            "cdc": {"path": "VARCHAR", "partitionValues": "MAP(VARCHAR, VARCHAR)", "size": "BIGINT",
                    "dataChange": "BOOLEAN", "tags": "JSON"},
            "metaData": {"id": "VARCHAR", "name": "VARCHAR", "description": "VARCHAR",
                         "format": {"provider": "VARCHAR", "options": "JSON"}, "schemaString": "VARCHAR",
                         "partitionColumns": "JSON", "configuration": "JSON", "createdTime": "BIGINT"},
            "protocol": {"minReaderVersion": "INTEGER", "minWriterVersion": "INTEGER",
                         "readerFeatures": "JSON", "writerFeatures": "JSON"},
            "txn": {"appId": "VARCHAR", "version": "BIGINT", "lastUpdated": "BIGINT"},
            "domainMetadata": {"domain": "VARCHAR", "configuration": "VARCHAR", "removed": "BOOLEAN"},
            "commitInfo": {"timestamp": "BIGINT", "inCommitTimestamp": "BIGINT", "operation": "VARCHAR",
                           "operationParameters": "JSON"},
            "checkpointMetadata": {"version": "BIGINT", "tags": "JSON"},
            "sidecar": {"path": "VARCHAR", "sizeInBytes": "BIGINT", "modificationTime": "BIGINT", "tags": "JSON"}
        }') as a
    from raw_log_rows
),

typed as (
    select
        *,
        case
            when a.add is not null then 'add'
            when a.remove is not null then 'remove'
            when a.cdc is not null then 'cdc'
            when a.metaData is not null then 'metaData'
            when a.protocol is not null then 'protocol'
            when a.txn is not null then 'txn'
            when a.domainMetadata is not null then 'domainMetadata'
            when a.commitInfo is not null then 'commitInfo'
            when a.checkpointMetadata is not null then 'checkpointMetadata'
            when a.sidecar is not null then 'sidecar'
            -- an action unknown to this reader (allowed by --allow-unknown-actions): kept verbatim
            when raw_line is not null then json_keys(row_json)[1]
        end as action_type,
        coalesce(a.add.deletionVector, a.remove.deletionVector) as dv,
        coalesce(
            a.add.partitionValues,
            a.remove.partitionValues,
            a.cdc.partitionValues,
            from_json(a.add.partitionValues_parsed, '"MAP(VARCHAR, VARCHAR)"')
        ) as partition_map,
        coalesce(a.add.stats, cast(a.add.stats_parsed as varchar), a.remove.stats) as stats_text
    from parsed
)

select
    cast($table_name as varchar) as table_name,
    version,
    log_file,
    line_number,
    cast($source as varchar) as source,
    action_type,
    coalesce(raw_line, json_object(action_type, json_extract(row_json, '$.' || action_type))) as action_json,
    coalesce(a.add.path, a.remove.path, a.cdc.path, a.sidecar.path) as path,
    case
        when dv.storageType is null then ''
        else dv.storageType || dv.pathOrInlineDv || coalesce('@' || dv.offset, '')
    end as dv_id,
    -- sorted keys: one canonical text per partition tuple, whichever writer produced it
    to_json(map_from_entries(list_sort(map_entries(partition_map)))) as partition_values,
    coalesce(a.add.size, a.remove.size, a.cdc.size, a.sidecar.sizeInBytes) as size_bytes,
    coalesce(a.add.modificationTime, a.sidecar.modificationTime) as modification_time,
    coalesce(a.add.dataChange, a.remove.dataChange, a.cdc.dataChange) as data_change,
    stats_text as stats,
    cast(json_extract(stats_text, '$.numRecords') as bigint) as num_records,
    cast(coalesce(a.add.tags, a.remove.tags, a.cdc.tags, a.sidecar.tags, a.checkpointMetadata.tags) as varchar) as tags,
    case when dv is not null then to_json(dv) end as deletion_vector,
    coalesce(a.add.baseRowId, a.remove.baseRowId) as base_row_id,
    coalesce(a.add.defaultRowCommitVersion, a.remove.defaultRowCommitVersion) as default_row_commit_version,
    a.add.clusteringProvider as clustering_provider,
    a.remove.deletionTimestamp as deletion_timestamp,
    a.remove.extendedFileMetadata as extended_file_metadata,
    a.metaData.id as metadata_id,
    a.metaData.name as metadata_name,
    a.metaData.description as metadata_description,
    a.metaData.format.provider as format_provider,
    cast(a.metaData.format.options as varchar) as format_options,
    a.metaData.schemaString as schema_string,
    cast(a.metaData.partitionColumns as varchar) as partition_columns,
    cast(a.metaData.configuration as varchar) as configuration,
    a.metaData.createdTime as created_time,
    a.protocol.minReaderVersion as min_reader_version,
    a.protocol.minWriterVersion as min_writer_version,
    cast(a.protocol.readerFeatures as varchar) as reader_features,
    cast(a.protocol.writerFeatures as varchar) as writer_features,
    a.txn.appId as app_id,
    a.txn.version as txn_version,
    a.txn.lastUpdated as last_updated,
    a.domainMetadata.domain as domain,
    a.domainMetadata.configuration as domain_configuration,
    a.domainMetadata.removed as is_domain_removed,
    a.commitInfo.timestamp as commit_info_timestamp,
    a.commitInfo.inCommitTimestamp as in_commit_timestamp,
    a.commitInfo.operation as operation,
    cast(a.commitInfo.operationParameters as varchar) as operation_parameters,
    case when action_type = 'commitInfo' then cast(json_extract(row_json, '$.commitInfo') as varchar) end as commit_info
from typed
where action_type is not null
