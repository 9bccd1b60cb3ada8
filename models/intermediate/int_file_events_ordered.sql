-- Every event in the life of a data file, in log order: the adds of the checkpoint and of the
-- replayed commits, and the removes of the replayed commits. Checkpoint removes are tombstones of
-- files removed before the checkpoint, not events of files the replay knows.
-- File identity is (path, dv_id), per the protocol.

with adds as (
    select * from {{ ref('stg_delta_log__adds') }}
),

removes as (
    select * from {{ ref('stg_delta_log__removes') }}
),

replayed_adds as (
    select table_name, path, dv_id, version, log_file, line_number, 'add' as action_type
    from adds
    where source in ('checkpoint', 'commit')
),

replayed_removes as (
    select table_name, path, dv_id, version, log_file, line_number, 'remove' as action_type
    from removes
    where source = 'commit'
),

events as (
    select * from replayed_adds
    union all
    select * from replayed_removes
),

ordered as (
    select
        table_name,
        path,
        dv_id,
        version,
        log_file,
        line_number,
        action_type,
        lead(version) over (
            partition by table_name, path, dv_id
            order by version, log_file, line_number
        ) as next_event_version
    from events
)

select * from ordered
