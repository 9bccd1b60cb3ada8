-- Parse each line of raw_log_lines (read_commit_lines.sql, already checked by
-- find_bad_lines.sql) once, into the same typed struct columns as read_checkpoint_rows.sql.
-- The field types mirror checkpoint_template.sql (a test holds the two together).
with parsed as (
    select
        log_file,
        version,
        line_number,
        raw_line,
        from_json(raw_line, '{
            "add": {"path": "VARCHAR", "partitionValues": "MAP(VARCHAR, VARCHAR)", "size": "BIGINT",
                    "modificationTime": "BIGINT", "dataChange": "BOOLEAN", "stats": "VARCHAR",
                    "tags": "MAP(VARCHAR, VARCHAR)",
                    "deletionVector": {"storageType": "VARCHAR", "pathOrInlineDv": "VARCHAR",
                                       "offset": "INTEGER", "sizeInBytes": "INTEGER", "cardinality": "BIGINT"},
                    "baseRowId": "BIGINT", "defaultRowCommitVersion": "BIGINT", "clusteringProvider": "VARCHAR"},
            "remove": {"path": "VARCHAR", "deletionTimestamp": "BIGINT", "dataChange": "BOOLEAN",
                       "extendedFileMetadata": "BOOLEAN", "partitionValues": "MAP(VARCHAR, VARCHAR)",
                       "size": "BIGINT", "stats": "VARCHAR", "tags": "MAP(VARCHAR, VARCHAR)",
                       "deletionVector": {"storageType": "VARCHAR", "pathOrInlineDv": "VARCHAR",
                                          "offset": "INTEGER", "sizeInBytes": "INTEGER", "cardinality": "BIGINT"},
                       "baseRowId": "BIGINT", "defaultRowCommitVersion": "BIGINT"},
            "cdc": {"path": "VARCHAR", "partitionValues": "MAP(VARCHAR, VARCHAR)", "size": "BIGINT",
                    "dataChange": "BOOLEAN", "tags": "MAP(VARCHAR, VARCHAR)"},
            "metaData": {"id": "VARCHAR", "name": "VARCHAR", "description": "VARCHAR",
                         "format": {"provider": "VARCHAR", "options": "MAP(VARCHAR, VARCHAR)"},
                         "schemaString": "VARCHAR", "partitionColumns": "VARCHAR[]",
                         "configuration": "MAP(VARCHAR, VARCHAR)", "createdTime": "BIGINT"},
            "protocol": {"minReaderVersion": "INTEGER", "minWriterVersion": "INTEGER",
                         "readerFeatures": "VARCHAR[]", "writerFeatures": "VARCHAR[]"},
            "txn": {"appId": "VARCHAR", "version": "BIGINT", "lastUpdated": "BIGINT"},
            "domainMetadata": {"domain": "VARCHAR", "configuration": "VARCHAR", "removed": "BOOLEAN"},
            "commitInfo": {"timestamp": "BIGINT", "inCommitTimestamp": "BIGINT", "operation": "VARCHAR",
                           "operationParameters": "JSON"},
            "checkpointMetadata": {"version": "BIGINT", "tags": "MAP(VARCHAR, VARCHAR)"},
            "sidecar": {"path": "VARCHAR", "sizeInBytes": "BIGINT", "modificationTime": "BIGINT",
                        "tags": "MAP(VARCHAR, VARCHAR)"}
        }') as a
    from raw_log_lines
    where not is_blank
)

select
    log_file,
    version,
    line_number,
    raw_line,
    raw_line as row_json,
    a."add",
    a."remove",
    a."cdc",
    a."metaData",
    a."protocol",
    a."txn",
    a."domainMetadata",
    a."commitInfo",
    a."checkpointMetadata",
    a."sidecar",
    coalesce(a."add".deletionVector, a."remove".deletionVector) as dv
from parsed
