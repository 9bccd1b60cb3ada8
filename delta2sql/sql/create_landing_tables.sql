-- Landing area: what the extractor writes, and what the dbt sources read.
-- One row per replayed table, per log file read, and per action of those files; and the
-- progress of every migration run, one row per committed batch.

create table if not exists delta_log_tables (
    table_name            varchar not null primary key,
    table_uri             varchar not null,
    replay_start_version  bigint  not null,
    -- the published version: every batch up to it has committed. Rows of later versions belong
    -- to a run still landing and are invisible to the catalog tables until it finishes.
    latest_version        bigint  not null,
    built_version         bigint,           -- the catalog tables are built up to this version
    checkpoint_version    bigint,
    checkpoint_kind       varchar,          -- classic | multipart | v2 | null (full JSON history)
    -- landing (first run in progress, nothing published) | landed (published, not yet built)
    -- | migrated (built) | finalized (writers commit to the catalog) | rolling_back (writers shut
    -- out while catalog commits are written back) | file_based (rolled back)
    status                varchar not null,
    listing_warnings      varchar,          -- JSON list of what listing survived (stale hints, ...)
    landed_at             timestamp,
    migrated_at           timestamp,
    finalized_version     bigint,           -- cut-over: versions after it were committed in the catalog
    finalized_at          timestamp
);

create table if not exists delta_log_files (
    table_name            varchar not null,
    log_file              varchar not null, -- relative to _delta_log, e.g. 00000000000000000007.json
    file_kind             varchar not null, -- commit | staged_commit | checkpoint_commit | checkpoint | sidecar
                                            -- | catalog_commit (written through the catalog after cut-over)
    version               bigint  not null,
    size_bytes            bigint  not null,
    modification_time     bigint  not null, -- epoch milliseconds, from the file system or object store
    sha256                varchar not null, -- of the file's bytes when landed
    num_actions           bigint  not null,
    ends_with_newline     boolean,          -- JSON files: needed to rebuild the exact bytes
    blank_lines           varchar,          -- JSON files: {"<line>": "<text>"} of lines that are only
                                            -- whitespace (no action, kept for the exact bytes); null if none
    etag                  varchar,          -- an object store's ETag (or GCS generation) when landed;
                                            -- null on a file system
    primary key (table_name, log_file)
);

create table if not exists delta_log_actions (
    table_name                 varchar not null,
    version                    bigint  not null,
    log_file                   varchar not null,
    line_number                bigint  not null, -- 1-based line (JSON) or row (Parquet) in log_file
    source                     varchar not null, -- commit | checkpoint_commit | checkpoint
    action_type                varchar not null,
    action_json                varchar not null, -- the original line (JSON) or the rebuilt action (Parquet)
    -- add / remove / cdc / sidecar
    path                       varchar,
    dv_id                      varchar,
    partition_values           varchar,
    size_bytes                 bigint,
    modification_time          bigint,
    data_change                boolean,
    stats                      varchar,
    num_records                bigint,
    tags                       varchar,
    deletion_vector            varchar,
    base_row_id                bigint,
    default_row_commit_version bigint,
    clustering_provider        varchar,
    deletion_timestamp         bigint,
    extended_file_metadata     boolean,
    -- metaData
    metadata_id                varchar,
    metadata_name              varchar,
    metadata_description       varchar,
    format_provider            varchar,
    format_options             varchar,
    schema_string              varchar,
    partition_columns          varchar,
    configuration              varchar,
    created_time               bigint,
    -- protocol
    min_reader_version         integer,
    min_writer_version         integer,
    reader_features            varchar,
    writer_features            varchar,
    -- txn
    app_id                     varchar,
    txn_version                bigint,
    last_updated               bigint,
    -- domainMetadata
    domain                     varchar,
    domain_configuration       varchar,
    is_domain_removed          boolean,
    -- commitInfo
    commit_info_timestamp      bigint,
    in_commit_timestamp        bigint,
    operation                  varchar,
    operation_parameters       varchar,
    commit_info                varchar
);

create table if not exists migration_runs (
    run_id                varchar not null primary key,
    table_name            varchar not null,
    target                varchar not null, -- duckdb | postgres | sqlite
    mode                  varchar not null, -- full | catch_up
    from_version          bigint  not null, -- first version this run reads
    to_version            bigint  not null, -- version this run publishes
    checkpoint_version    bigint,           -- the checkpoint a full run starts from, if any
    batch_size            integer not null, -- JSON commit files per batch
    checkpoint_batch_rows bigint  not null, -- checkpoint rows per batch, at most
    commit_batch_bytes    bigint,           -- JSON commit bytes per batch, at most; null: no bound
                                            -- (a run started before delta2sql had one)
    num_batches           integer not null,
    -- running | landed (published) | migrated (built) | failed | abandoned (log changed under it)
    -- | rolled_back (`rollback --to-version` removed what it landed)
    status                varchar not null,
    started_at            timestamp not null,
    landed_at             timestamp,
    finished_at           timestamp,
    error                 varchar,
    -- the run's lease: the process landing it, renewed with every committed batch; another
    -- migrate takes the run over once the owner is gone (lifecycle.py, ADR 0007)
    owner_host            varchar,
    owner_pid             integer,
    heartbeat_at          timestamp,
    lease_expires_at      timestamp,
    -- the estimate the run started with (estimate.py: calibrated rates, or none) and what it took:
    -- `status` compares them, so a team sees how far this machine's estimates can be trusted
    estimated_seconds     double,           -- landing and build, the midpoint; null when uncalibrated
    estimate_low_seconds  double,
    estimate_high_seconds double,
    estimate_phases       varchar,          -- JSON {phase: seconds}, the command's `process` phase too
    landing_seconds       double,           -- listing, landing and publishing, over every process that ran it
    build_seconds         double            -- the dbt build that made the run `migrated`
);

create table if not exists migration_batches (
    run_id                varchar not null,
    batch_number          integer not null, -- 1-based, in landing order
    table_name            varchar not null,
    first_version         bigint  not null,
    last_version          bigint  not null,
    log_files             varchar not null, -- first file of the batch, and a row range for checkpoint slices
    files                 integer not null,
    actions               bigint  not null,
    bytes                 bigint  not null,
    checksum              varchar not null, -- sum of md5 (upper 64 bits) of each landed (file, line, action)
    committed_at          timestamp not null,
    peak_rss_bytes        bigint,           -- the migrating process's peak resident memory when it committed
    primary key (run_id, batch_number)
);

-- Every comparison of a table's log with the catalog (`drift`, `finalize`, `sync`): what the log
-- held then. `metrics` reads "versions behind" from the newest, without listing any log.
create table if not exists drift_checks (
    table_name            varchar not null,
    checked_at            timestamp not null,
    catalog_version       bigint  not null, -- the catalog's version compared (a finalized table's cut-over)
    log_version           bigint  not null, -- the log's latest version then
    findings              varchar not null, -- JSON list of {"kind", "detail"}; [] when in sync
    exit_code             integer not null  -- `drift`'s exit code for these findings
);

-- What `delta2sql worker` processes did with the jobs of the catalog's work queue (PostgreSQL;
-- the queue itself is procrastinate's `procrastinate_jobs`, work_queue.py): one row per attempt.
create table if not exists worker_jobs (
    job_id                bigint  not null,
    attempt               integer not null, -- 1 for the first claim of the job, 2 after its first retry, ...
    table_name            varchar not null,
    worker                varchar not null, -- host:pid of the worker process that claimed it
    claimed_at            timestamp not null,
    finished_at           timestamp,
    status                varchar not null, -- claimed | done | failed
    error                 varchar,
    primary key (job_id, attempt)
);

-- --max-rows-per-second: the catalog's token bucket, shared by every process writing to it
-- (rate_limit.py). Tokens are rows; the bucket refills at the cap and may go into debt.
create table if not exists rate_limits (
    bucket                varchar not null primary key, -- 'landed_rows'
    rows_per_second       double  not null, -- the cap, as the newest process that took from it set it
    tokens                double  not null,
    refilled_at           double  not null  -- epoch seconds of the newest take
);
