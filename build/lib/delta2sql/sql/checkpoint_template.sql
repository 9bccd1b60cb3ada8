-- Zero rows with every action family of the checkpoint schema (PROTOCOL.md, "Checkpoint
-- Schema"), written once per process to a Parquet file. Read together with a checkpoint
-- (read_parquet(..., union_by_name = true)) it gives every field a column, so the parse below can
-- address add.baseRowId even in a checkpoint written before row tracking existed.
-- Deletion vectors are not in it: DuckDB 2.0.1 fails ("requires a flat vector") when union_by_name
-- adds a nested struct missing from a file, so read_checkpoint_rows.sql takes them from the JSON.
select
    cast(null as struct(
        path varchar, partitionValues map(varchar, varchar), size bigint, modificationTime bigint,
        dataChange boolean, stats varchar, tags map(varchar, varchar),
        baseRowId bigint, defaultRowCommitVersion bigint, clusteringProvider varchar
    )) as "add",
    cast(null as struct(
        path varchar, deletionTimestamp bigint, dataChange boolean, extendedFileMetadata boolean,
        partitionValues map(varchar, varchar), size bigint, stats varchar, tags map(varchar, varchar),
        baseRowId bigint, defaultRowCommitVersion bigint
    )) as "remove",
    cast(null as struct(
        id varchar, name varchar, description varchar,
        format struct(provider varchar, options map(varchar, varchar)),
        schemaString varchar, partitionColumns varchar[], configuration map(varchar, varchar), createdTime bigint
    )) as "metaData",
    cast(null as struct(minReaderVersion integer, minWriterVersion integer, readerFeatures varchar[], writerFeatures varchar[])) as "protocol",
    cast(null as struct(appId varchar, version bigint, lastUpdated bigint)) as "txn",
    cast(null as struct(domain varchar, configuration varchar, removed boolean)) as "domainMetadata",
    cast(null as struct(version bigint, tags map(varchar, varchar))) as "checkpointMetadata",
    cast(null as struct(path varchar, sizeInBytes bigint, modificationTime bigint, tags map(varchar, varchar))) as "sidecar"
where false
