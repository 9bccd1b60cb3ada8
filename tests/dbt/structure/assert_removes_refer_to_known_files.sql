{{ config(tags=['structure']) }}
-- Every remove of a replayed commit ends the life of a file the replay knows, or repeats a
-- tombstone the checkpoint already carries. Anything else is an orphan remove.

with removes as (
    select * from {{ ref('delta_removes') }}
),

files as (
    select * from {{ ref('delta_files') }}
),

commit_removes as (
    select * from removes
    where not is_checkpoint_tombstone and {{ in_scope('table_name') }}
),

checkpoint_tombstones as (
    select table_name, path, dv_id from removes
    where is_checkpoint_tombstone
),

orphans as (
    select commit_removes.table_name, commit_removes.version, commit_removes.path, commit_removes.dv_id
    from commit_removes
    left join files
        on commit_removes.table_name = files.table_name
        and commit_removes.path = files.path
        and commit_removes.dv_id = files.dv_id
        and files.removed_version = commit_removes.version
    left join checkpoint_tombstones
        on commit_removes.table_name = checkpoint_tombstones.table_name
        and commit_removes.path = checkpoint_tombstones.path
        and commit_removes.dv_id = checkpoint_tombstones.dv_id
    where files.path is null and checkpoint_tombstones.path is null
)

select
    table_name,
    'removed' as diff_status,
    'a live file or a checkpoint tombstone' as expected,
    'orphan remove of ' || path || case when dv_id <> '' then ' (dv ' || dv_id || ')' else '' end
        || ' at version ' || version as observed
from orphans
