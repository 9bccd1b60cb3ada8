-- Lines of JSON commits that are not a single known Delta action: truncated or corrupt JSON,
-- several actions on one line, or an action type this reader does not know.
-- Input relation raw_log_lines; returns the first offenders with the reason.
-- $allow_unknown_actions: the protocol lets readers ignore unknown actions; a migration refuses
-- them unless told otherwise, because the catalog could not represent what they mean.
with classified as (
    select
        log_file,
        line_number,
        raw_line,
        case
            when not json_valid(raw_line) then 'is not valid JSON (truncated or corrupt)'
            when json_type(raw_line) <> 'OBJECT' then 'is not a JSON object'
            when len(json_keys(raw_line)) <> 1 then 'does not hold exactly one action'
            when not $allow_unknown_actions and json_keys(raw_line)[1] not in (
                'add', 'remove', 'cdc', 'metaData', 'protocol', 'txn', 'domainMetadata',
                'commitInfo', 'checkpointMetadata', 'sidecar'
            ) then 'holds an unknown action "' || json_keys(raw_line)[1] || '"'
        end as problem
    from raw_log_lines
)

select log_file, line_number, problem, left(raw_line, 120) as excerpt
from classified
where problem is not null
order by log_file, line_number
limit 5
