-- Lines of JSON commits that are not a single Delta action: truncated or corrupt JSON, or
-- several actions on one line. An action type this reader does not know is no problem: the
-- protocol lets writers add them and readers ignore them; it is kept verbatim (see
-- find_unknown_actions.sql). Input relation raw_log_lines; returns the first offenders.
with classified as (
    select
        log_file,
        line_number,
        raw_line,
        case
            when not json_valid(raw_line) then 'is not valid JSON (truncated or corrupt)'
            when json_type(raw_line) <> 'OBJECT' then 'is not a JSON object'
            when len(json_keys(raw_line)) <> 1 then 'does not hold exactly one action'
        end as problem
    from raw_log_lines
    where not is_blank
)

select log_file, line_number, problem, left(raw_line, 120) as excerpt
from classified
where problem is not null
order by log_file, line_number
