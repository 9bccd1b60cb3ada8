{{ config(tags=['structure']) }}
-- delta_commits holds exactly one row per version from replay_start_version to latest_version.

with tables as (
    select * from {{ ref('delta_tables') }}
),

commits as (
    select * from {{ ref('delta_commits') }}
),

version_counts as (
    select
        table_name,
        count(*) as num_rows,
        count(distinct version) as num_versions,
        min(version) as first_version,
        max(version) as last_version
    from commits
    group by table_name
),

compared as (
    select
        tables.table_name,
        tables.replay_start_version || '..' || tables.latest_version
            || ' (' || (tables.latest_version - tables.replay_start_version + 1) || ' versions)' as expected,
        coalesce(version_counts.first_version || '..' || version_counts.last_version
            || ' (' || version_counts.num_versions || ' versions, ' || version_counts.num_rows || ' rows)', 'no commits') as observed,
        version_counts.num_rows = tables.latest_version - tables.replay_start_version + 1
            and version_counts.num_versions = version_counts.num_rows
            and version_counts.first_version = tables.replay_start_version
            and version_counts.last_version = tables.latest_version as is_contiguous
    from tables
    left join version_counts
        on tables.table_name = version_counts.table_name
    where {{ in_scope('tables.table_name') }}
)

select table_name, 'modified' as diff_status, expected, observed
from compared
where is_contiguous is not true
