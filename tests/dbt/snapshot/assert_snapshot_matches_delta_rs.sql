{{ config(tags=['snapshot', 'delta_rs']) }}
-- At every version captured from delta-rs, the catalog's live files equal delta-rs's:
-- same paths, sizes, partition values, record counts and (when delta-rs resolved them)
-- deleted-row counts of deletion vectors. Partition values are compared as values of their
-- column's type (the catalog keeps the log's string; reference_partition_values holds it
-- parsed, reference_snapshot_files holds delta-rs's typed values, both as canonical text).

with snapshots as (
    select * from {{ source('validation', 'reference_snapshots') }}
    where num_files is not null and {{ in_scope('table_name') }}
),

reference_files as (
    select * from {{ source('validation', 'reference_snapshot_files') }}
),

files as (
    select * from {{ ref('delta_files') }}
),

typed_partitions as (
    select * from {{ source('validation', 'reference_partition_values') }}
),

catalog_live_files as (  -- one row per live path: a path live twice is a duplicate key
    select
        snapshots.table_name,
        snapshots.version,
        snapshots.has_deleted_rows,
        files.path,
        min(files.size_bytes) as size_bytes,
        min(files.partition_values) as partition_values,
        min(typed_partitions.typed_partition_values) as typed_partition_values,
        min(files.num_records) as num_records,
        min(coalesce(cast(json_extract_string(files.deletion_vector, '$.cardinality') as bigint), 0)) as deleted_rows,
        count(*) as live_rows_per_path
    from snapshots
    inner join files
        on snapshots.table_name = files.table_name
        and files.added_version <= snapshots.version
        and (files.removed_version is null or files.removed_version > snapshots.version)
    left join typed_partitions
        on snapshots.table_name = typed_partitions.table_name
        and snapshots.version = typed_partitions.version
        and files.partition_values = typed_partitions.partition_values
    group by snapshots.table_name, snapshots.version, snapshots.has_deleted_rows, files.path
),

reference_live_files as (
    select reference_files.*, snapshots.has_deleted_rows
    from reference_files
    inner join snapshots
        on reference_files.table_name = snapshots.table_name
        and reference_files.version = snapshots.version
),

compared as (
    select
        coalesce(catalog_live_files.table_name, reference_live_files.table_name) as table_name,
        coalesce(catalog_live_files.version, reference_live_files.version) as version,
        coalesce(catalog_live_files.path, reference_live_files.path) as path,
        case
            when catalog_live_files.path is null then 'removed'
            when reference_live_files.path is null then 'added'
            when catalog_live_files.live_rows_per_path > 1 then 'duplicate key'
            when catalog_live_files.size_bytes is distinct from reference_live_files.size_bytes
                or catalog_live_files.typed_partition_values is distinct from reference_live_files.partition_values
                -- delta-rs leaves num_records null when it ignores a checkpoint's stats_parsed
                or (reference_live_files.num_records is not null
                    and catalog_live_files.num_records is distinct from reference_live_files.num_records)
                or (reference_live_files.has_deleted_rows
                    and catalog_live_files.deleted_rows is distinct from reference_live_files.deleted_rows)
                then 'modified'
            else 'identical'
        end as diff_status,
        'size=' || coalesce(cast(reference_live_files.size_bytes as varchar), 'null')
            || ' partitions=' || coalesce(reference_live_files.partition_values, 'null')
            || ' records=' || coalesce(cast(reference_live_files.num_records as varchar), 'null')
            || ' deleted=' || coalesce(cast(reference_live_files.deleted_rows as varchar), 'null') as expected,
        -- a path live twice: how often, and the smallest of each value among its rows
        case
            when catalog_live_files.live_rows_per_path > 1
                then 'live ' || cast(catalog_live_files.live_rows_per_path as varchar) || ' times, smallest values: '
            else ''
        end
            || 'size=' || coalesce(cast(catalog_live_files.size_bytes as varchar), 'null')
            || ' partitions=' || coalesce(catalog_live_files.partition_values, 'null')
            || ' (typed ' || coalesce(catalog_live_files.typed_partition_values, 'null') || ')'
            || ' records=' || coalesce(cast(catalog_live_files.num_records as varchar), 'null')
            || ' deleted=' || coalesce(cast(catalog_live_files.deleted_rows as varchar), 'null') as observed
    from catalog_live_files
    full outer join reference_live_files
        on catalog_live_files.table_name = reference_live_files.table_name
        and catalog_live_files.version = reference_live_files.version
        and catalog_live_files.path = reference_live_files.path
)

select table_name, version, path, diff_status, expected, observed
from compared
where diff_status <> 'identical'
