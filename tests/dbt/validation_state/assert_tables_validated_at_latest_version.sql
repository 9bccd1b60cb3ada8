{{ config(tags=['validation_state'], severity='warn') }}
-- Only `delta2sql validate` loads what the snapshot and bytes tests compare with (delta-rs's
-- snapshots, the log files re-read from disk). Without it they have nothing to compare and
-- would pass on nothing, so plain `dbt build` warns here instead: one row per table whose
-- latest version was not validated at both levels, with the command that validates it
-- (ADR 0004).

with tables as (
    select table_name, latest_version from {{ ref('delta_tables') }}
    where {{ in_scope('table_name') }}
),

validations as (
    select table_name, max(validated_version) as validated_version
    from {{ source('validation', 'validation_runs') }}
    where levels like '%snapshot%' and levels like '%bytes%'
    group by table_name
),

final as (
    select
        tables.table_name,
        tables.latest_version as version,
        'validated at version ' || cast(tables.latest_version as varchar) as expected,
        coalesce('last validated at version ' || cast(validations.validated_version as varchar), 'not validated yet')
        || ': run `delta2sql validate ' || tables.table_name || '`' as observed
    from tables
    left join validations on tables.table_name = validations.table_name
    where validations.validated_version is null or validations.validated_version < tables.latest_version
)

select * from final
