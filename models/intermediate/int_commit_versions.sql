-- One row per version from replay_start_version to latest_version, with the log file that
-- records it: the JSON commit, or for a checkpoint version whose JSON commit was cleaned up,
-- the checkpoint's first file. Versions committed through the catalog after cut-over count as commits.

with tables as (
    select * from {{ ref('stg_delta_log__tables') }}
),

log_files as (
    select * from {{ ref('stg_delta_log__log_files') }}
),

commit_files as (
    select table_name, version, log_file, size_bytes, sha256, num_actions, modification_time
    from log_files
    where file_kind in ('commit', 'staged_commit', 'checkpoint_commit', 'catalog_commit')
),

checkpoint_first_files as (
    select table_name, version, min(log_file) as log_file
    from log_files
    where file_kind = 'checkpoint'
    group by table_name, version
),

checkpoint_only_versions as (
    select
        log_files.table_name,
        log_files.version,
        log_files.log_file,
        log_files.size_bytes,
        log_files.sha256,
        log_files.num_actions,
        log_files.modification_time
    from checkpoint_first_files
    inner join log_files
        on checkpoint_first_files.table_name = log_files.table_name
        and checkpoint_first_files.log_file = log_files.log_file
    left join commit_files
        on checkpoint_first_files.table_name = commit_files.table_name
        and checkpoint_first_files.version = commit_files.version
    where commit_files.version is null
),

versions as (
    select * from commit_files
    union all
    select * from checkpoint_only_versions
),

final as (
    select versions.*
    from versions
    inner join tables
        on versions.table_name = tables.table_name
        and versions.version between tables.replay_start_version and tables.latest_version
)

select * from final
