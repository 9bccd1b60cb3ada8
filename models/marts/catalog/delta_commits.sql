{{ config(unique_key=['table_name', 'version']) }}
-- Incremental: a build replays only the versions after each table's built version.

with commit_versions as (
    select * from {{ ref('int_commit_versions') }}
),

tables as (
    select table_name, built_version from {{ ref('stg_delta_log__tables') }}
),

commit_infos as (
    select * from {{ ref('stg_delta_log__commit_infos') }}
),

first_commit_info_per_version as (
    select
        table_name,
        version,
        commit_info,
        operation,
        operation_parameters,
        in_commit_timestamp,
        row_number() over (partition by table_name, version order by line_number) as position
    from commit_infos
    where source in ('commit', 'checkpoint_commit')
),

final as (
    select
        commit_versions.table_name,
        commit_versions.version,
        -- in-commit timestamp when the writer recorded one, else the commit file's modification time
        epoch_ms(coalesce(first_commit_info_per_version.in_commit_timestamp, commit_versions.modification_time)) as commit_timestamp,
        first_commit_info_per_version.commit_info,
        first_commit_info_per_version.operation,
        first_commit_info_per_version.operation_parameters,
        commit_versions.log_file,
        commit_versions.size_bytes as log_file_size,
        commit_versions.sha256 as log_file_sha256,
        commit_versions.num_actions
    from commit_versions
    left join first_commit_info_per_version
        on commit_versions.table_name = first_commit_info_per_version.table_name
        and commit_versions.version = first_commit_info_per_version.version
        and first_commit_info_per_version.position = 1
    inner join tables
        on commit_versions.table_name = tables.table_name
    where commit_versions.version > {{ replay_after('tables.built_version') }}
)

select * from final
