{{ config(tags=['snapshot']) }}
-- Live file counts and sizes equal what writers recorded: `.crc` files (numFiles,
-- tableSizeBytes) and `_last_checkpoint` (numOfAddFiles, and sizeInBytes = the checkpoint's
-- own size in bytes, parts and sidecars included).

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

live_totals as (
    select
        checksums.table_name,
        checksums.version,
        checksums.source,
        count(files.path) as num_files,
        coalesce(sum(files.size_bytes), 0) as table_size_bytes
    from checksums
    left join files
        on checksums.table_name = files.table_name
        and files.added_version <= checksums.version
        and (files.removed_version is null or files.removed_version > checksums.version)
    group by checksums.table_name, checksums.version, checksums.source
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
        and checksums.source = live_totals.source
    left join checkpoint_sizes
        on checksums.table_name = checkpoint_sizes.table_name
        and checksums.version = checkpoint_sizes.version
)

select
    table_name,
    version,
    source,
    'modified' as diff_status,
    'files=' || coalesce(cast(expected_files as varchar), '-') || ' bytes=' || coalesce(cast(expected_bytes as varchar), '-') as expected,
    'files=' || observed_files || ' bytes=' || coalesce(cast(observed_bytes as varchar), '-') as observed
from compared
where expected_files <> observed_files
    or expected_bytes <> observed_bytes
