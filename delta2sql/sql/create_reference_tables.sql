-- Reference data loaded by `delta2sql validate` (see delta2sql/reference.py): what independent
-- readers see, for the dbt tests under tests/dbt/ to compare with the catalog.

create table if not exists reference_snapshots (
    table_name        varchar not null,
    version           bigint  not null,
    num_files         bigint,           -- null when delta-rs could not read the version
    has_deleted_rows  boolean not null, -- deleted_rows below was resolved by delta-rs
    reader_error      varchar
);

create table if not exists reference_snapshot_files (
    table_name        varchar not null,
    version           bigint  not null,
    path              varchar not null,
    size_bytes        bigint,
    partition_values  varchar,          -- sorted-key JSON of the typed partition values (partition_values.py)
    num_records       bigint,
    deleted_rows      bigint            -- rows a deletion vector removes, per delta-rs
);

create table if not exists reference_partition_values (
    table_name              varchar not null,
    version                 bigint  not null,
    partition_values        varchar not null, -- a partition tuple of the catalog live at version, as the log wrote it
    typed_partition_values  varchar           -- the same, each value parsed by its column's type (partition_values.py)
);

create table if not exists reference_log_files (
    table_name        varchar not null,
    log_file          varchar not null,
    sha256            varchar,          -- null when the file is gone
    size_bytes        bigint,
    ends_with_newline boolean,
    blank_lines       varchar           -- JSON files: {"<line>": "<text>"} of whitespace-only lines, null if none
);

create table if not exists reference_log_lines (
    table_name        varchar not null,
    log_file          varchar not null, -- JSON log files only
    line_number       bigint  not null, -- 1-based line an action starts on
    line_text         varchar not null  -- the action's whole lines (one, or several when pretty-printed)
);

-- Checkpoint rows compared per file (reference.load_checkpoint_reference); the per-row hashes
-- of older catalogs (reference_checkpoint_actions) are let go by reference.create_reference_tables.
create table if not exists reference_checkpoint_files (
    table_name        varchar not null,
    log_file          varchar not null, -- a Parquet checkpoint file (a part, a V2 top file or a sidecar)
    action_rows       bigint  not null, -- its rows holding an action, as pyarrow reads them
    equal_rows        bigint  not null  -- of those, the rows whose catalog action_json, read back into the
                                        -- Parquet column's type, is the same value
);

create table if not exists reference_checkpoint_differences (
    table_name        varchar not null,
    log_file          varchar not null,
    line_number       bigint  not null, -- 1-based row of the file
    parquet_action    varchar,          -- '<action>:' || the typed action as JSON, as pyarrow reads the row
    catalog_action    varchar           -- the same, of the catalog's action_json read back into that type
);

create table if not exists reference_version_checksums (
    table_name        varchar not null,
    version           bigint  not null,
    source            varchar not null, -- <version>.crc or _last_checkpoint
    num_files         bigint,           -- numFiles / numOfAddFiles
    size_bytes        bigint            -- tableSizeBytes / sizeInBytes (the checkpoint's own size)
);

create table if not exists validation_results (
    table_name        varchar not null,
    check_name        varchar not null,
    level             varchar not null, -- structure | snapshot | bytes
    status            varchar not null, -- pass | warn | fail | error
    expected          varchar,
    observed          varchar,
    details           varchar,
    checked_at        timestamp not null
);

create table if not exists validation_runs (
    table_name        varchar not null,
    validated_version bigint  not null, -- the table's latest version when `validate` loaded its references
    levels            varchar not null, -- comma-separated levels that run compared (structure,snapshot,bytes)
    checked_at        timestamp not null
);
