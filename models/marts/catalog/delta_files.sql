{{ config(unique_key=['table_name', 'path', 'dv_id', 'added_version']) }}
-- Incremental: a build writes the lives that the versions after each table's built version
-- change: files added since, and files live before whose removal (or replacement) came since.

with file_lives as (
    select * from {{ ref('int_files_replayed_to_versions') }}
),

tables as (
    select table_name, built_version from {{ ref('stg_delta_log__tables') }}
),

changed_lives as (
    select file_lives.*
    from file_lives
    inner join tables
        on file_lives.table_name = tables.table_name
    where file_lives.added_version > {{ replay_after('tables.built_version') }}
        or file_lives.removed_version > {{ replay_after('tables.built_version') }}
),

final as (
    select
        table_name,
        path,
        dv_id,
        added_version,
        removed_version,
        size_bytes,
        partition_values,
        modification_time,
        data_change,
        stats,
        num_records,
        tags,
        deletion_vector,
        base_row_id,
        default_row_commit_version,
        clustering_provider
    from changed_lives
)

select * from final
