-- Live files after each version: +1 at a file's added_version, -1 at its removed_version, summed
-- in version order. One pass over delta_files instead of one count per version.
-- Parameters: table_name (three times), first version, sampling step, last version.
with changes as (
    select added_version as version, count(*) as change
    from delta_files where table_name = ? group by added_version
    union all
    select removed_version as version, -count(*) as change
    from delta_files where table_name = ? and removed_version is not null group by removed_version
),

per_version as (select version, sum(change) as change from changes group by version),

history as (
    select
        commits.version,
        commits.commit_timestamp,
        sum(coalesce(per_version.change, 0)) over (
            order by commits.version rows between unbounded preceding and current row
        ) as live_files
    from delta_commits as commits
    left join per_version on commits.version = per_version.version
    where commits.table_name = ?
)

select version, commit_timestamp, live_files
from history
where (version - ?) % ? = 0 or version = ?
order by version
