-- Migrated (and finalized or rolled back) tables and the version range whose snapshots can be compared with delta-rs: from
-- the first version whose metadata is complete (a metaData with id and schemaString; some
-- writers, e.g. Delta Live Tables, create a table with an empty one first) to the latest.
select
    tables.table_name,
    tables.table_uri,
    greatest(tables.replay_start_version, coalesce(min(metadata.version), tables.replay_start_version)) as first_comparable_version,
    tables.latest_version
from delta_log_tables as tables
left join delta_metadata as metadata
    on tables.table_name = metadata.table_name
    and metadata.metadata_id is not null
    and metadata.schema_string is not null
-- finalized tables are validated by finalize (before any catalog commit) and rollback (after
-- writing the catalog commits back); a file_based one was verified by its rollback
where tables.status in ('migrated', 'finalized', 'rolling_back', 'file_based')
group by tables.table_name, tables.table_uri, tables.replay_start_version, tables.latest_version
order by tables.table_name
