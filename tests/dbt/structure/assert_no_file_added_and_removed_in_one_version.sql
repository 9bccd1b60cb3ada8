{{ config(tags=['structure']) }}
-- The protocol forbids one version from both adding and removing the same file identity
-- (path + deletion vector); readers disagree on what such a log means.

with adds as (
    select * from {{ ref('stg_delta_log__adds') }}
),

removes as (
    select * from {{ ref('stg_delta_log__removes') }}
),

violations as (
    select adds.table_name, adds.version, adds.path, adds.dv_id
    from adds
    inner join removes
        on adds.table_name = removes.table_name
        and adds.version = removes.version
        and adds.path = removes.path
        and adds.dv_id = removes.dv_id
    where adds.source = 'commit' and removes.source = 'commit' and {{ in_scope('adds.table_name') }}
)

select
    table_name,
    'duplicate key' as diff_status,
    'a file is added or removed once per version' as expected,
    'added and removed at version ' || version || ': ' || path as observed
from violations
