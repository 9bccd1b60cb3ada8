{{ config(tags=['structure'], severity='warn') }}
-- Every remove of a replayed commit ends the life of a file the replay knows, or repeats a
-- tombstone the checkpoint already carries. Anything else is an orphan remove: a warning, not
-- an error (ADR 0001). Removes are tombstones: removing a file already removed, or one whose
-- add the replay never saw (its tombstone expired before the checkpoint), is valid and leaves
-- the live files unambiguous; readers accept it.

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
    select commit_removes.table_name, commit_removes.version, commit_removes.path, commit_removes.dv_id,
        (
            select max(earlier.removed_version) from files as earlier
            where earlier.table_name = commit_removes.table_name
                and earlier.path = commit_removes.path
                and earlier.dv_id = commit_removes.dv_id
                and earlier.removed_version < commit_removes.version
        ) as last_removed_version
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
    case when last_removed_version is not null then 'repeated remove of ' else 'orphan remove of ' end
        || path || case when dv_id <> '' then ' (dv ' || dv_id || ')' else '' end || ' at version ' || version
        || coalesce(' (already removed at version ' || last_removed_version || ')', '') as observed
from orphans
