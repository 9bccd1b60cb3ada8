{{ config(tags=['snapshot', 'delta_rs']) }}
-- Every sampled version was read by delta-rs; a version it cannot read has no reference, so
-- the catalog's snapshot there is unproven and the check fails with delta-rs's message.

with snapshots as (
    select * from {{ source('validation', 'reference_snapshots') }}
    where {{ in_scope('table_name') }}
)

select
    table_name,
    version,
    'removed' as diff_status,
    'a snapshot read by delta-rs' as expected,
    'unsupported: ' || reader_error as observed
from snapshots
where num_files is null
