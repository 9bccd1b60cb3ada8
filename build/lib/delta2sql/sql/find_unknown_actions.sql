-- Actions of a landed table that this reader does not know, kept verbatim (their lines rebuild
-- the file; the replay ignores them, as the protocol asks): one row per action type with its
-- first log file, for the warning. Parameter: table name.
select action_type, min(log_file) as first_log_file, count(*) as num_actions
from delta_log_actions
where table_name = ?
    and action_type not in (
        'add', 'remove', 'cdc', 'metaData', 'protocol', 'txn', 'domainMetadata',
        'commitInfo', 'checkpointMetadata', 'sidecar'
    )
group by action_type
order by action_type
