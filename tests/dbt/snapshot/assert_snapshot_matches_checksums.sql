{{ config(tags=['snapshot', 'log_checksums']) }}
-- Live file counts and sizes equal what writers recorded: `.crc` files (numFiles,
-- tableSizeBytes) and `_last_checkpoint` (numOfAddFiles, and sizeInBytes = the checkpoint's
-- own size in bytes, parts and sidecars included). These need no reference reader, so
-- `delta2sql migrate` runs this test too (tag log_checksums) before it calls a table migrated.
-- The live totals are running sums of +1/-1 per file life over versions: one pass over
-- delta_files, however many versions carry a `.crc`.

with checksums as (
    select * from {{ source('validation', 'reference_version_checksums') }}
    where {{ in_scope('table_name') }}
),

files as (
    select * from {{ ref('delta_files') }}
),

log_files as (
    select * from {{ ref('stg_delta_log__log_files') }}
),

checked_tables as (
    select distinct table_name from checksums
),

life_events as (
    select files.table_name, files.added_version as version, 1 as file_change, files.size_bytes as byte_change
    from files
    inner join checked_tables
        on files.table_name = checked_tables.table_name
    union all
    select files.table_name, files.removed_version, -1, -files.size_bytes
    from files
    inner join checked_tables
        on files.table_name = checked_tables.table_name
    where files.removed_version is not null
    union all
    select table_name, version, 0, 0
    from checksums
),

changes_per_version as (
    select table_name, version, sum(file_change) as file_change, sum(coalesce(byte_change, 0)) as byte_change
    from life_events
    group by table_name, version
),

live_totals as (
    select
        table_name,
        version,
        sum(file_change) over (partition by table_name order by version rows between unbounded preceding and current row) as num_files,
        sum(byte_change) over (partition by table_name order by version rows between unbounded preceding and current row) as table_size_bytes
    from changes_per_version
),

checkpoint_sizes as (
    select table_name, version, sum(size_bytes) as checkpoint_size_bytes
    from log_files
    where file_kind in ('checkpoint', 'sidecar')
    group by table_name, version
),

compared as (
    select
        checksums.table_name,
        checksums.version,
        checksums.source,
        checksums.num_files as expected_files,
        live_totals.num_files as observed_files,
        checksums.size_bytes as expected_bytes,
        case
            when checksums.source = '_last_checkpoint' then checkpoint_sizes.checkpoint_size_bytes
            else live_totals.table_size_bytes
        end as observed_bytes
    from checksums
    inner join live_totals
        on checksums.table_name = live_totals.table_name
        and checksums.version = live_totals.version
    left join checkpoint_sizes
        on checksums.table_name = checkpoint_sizes.table_name
        and checksums.version = checkpoint_sizes.version
)

select
    table_name,
    version,
    source,
    'modified' as diff_status,
    case
        when source = '_last_checkpoint'
            then '_last_checkpoint says numOfAddFiles=' || coalesce(cast(expected_files as varchar), '-')
                || ' sizeInBytes=' || coalesce(cast(expected_bytes as varchar), '-')
        else source || ' says numFiles=' || coalesce(cast(expected_files as varchar), '-')
            || ' tableSizeBytes=' || coalesce(cast(expected_bytes as varchar), '-')
    end as expected,
    case
        when source = '_last_checkpoint'
            then 'the replayed log has ' || observed_files || ' live files at version ' || version
                || ', the checkpoint files ' || coalesce(cast(observed_bytes as varchar), '-') || ' bytes'
        else 'the replayed log has ' || observed_files || ' live files of '
            || coalesce(cast(observed_bytes as varchar), '-') || ' bytes at version ' || version
    end as observed
from compared
where expected_files <> observed_files
    or expected_bytes <> observed_bytes
