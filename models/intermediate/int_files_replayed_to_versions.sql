-- Each add becomes one row of file life: live from its version until the next event of the same
-- file identity (a remove, or a newer add that replaces it), exclusive.
-- A file is live at version v when added_version <= v and (removed_version is null or removed_version > v).

with adds as (
    select * from {{ ref('stg_delta_log__adds') }}
),

events as (
    select * from {{ ref('int_file_events_ordered') }}
),

add_events as (
    select table_name, log_file, line_number, next_event_version
    from events
    where action_type = 'add'
),

file_lives as (
    select
        adds.table_name,
        adds.path,
        adds.dv_id,
        adds.version as added_version,
        add_events.next_event_version as removed_version,
        adds.size_bytes,
        adds.partition_values,
        adds.modification_time,
        adds.data_change,
        adds.stats,
        adds.num_records,
        adds.tags,
        adds.deletion_vector,
        adds.base_row_id,
        adds.default_row_commit_version,
        adds.clustering_provider,
        adds.log_file as added_in_log_file
    from adds
    inner join add_events
        on adds.table_name = add_events.table_name
        and adds.log_file = add_events.log_file
        and adds.line_number = add_events.line_number
)

select * from file_lives
