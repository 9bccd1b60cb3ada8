{{ config(tags=['bytes']) }}
-- Every row of every Parquet checkpoint file (parts and sidecars) is in the catalog, action by
-- action: validation compared pyarrow's read of each row with the catalog's action_json read back
-- into the same type (delta2sql/reference.py), and stored a count per file and the first rows
-- that differ. A file is whole when the catalog holds as many of its actions as pyarrow read and
-- each compared pair was equal. A row the catalog lacks or altered inside the file's rows is
-- named, with both sides; one outside them (which validation does not read) shows in the count.

with checkpoint_actions as (
    select * from {{ ref('base_delta_log__published_actions') }}
    where source = 'checkpoint' and log_file like '%.parquet' and {{ in_scope('table_name') }}
        and {{ references_loaded('table_name', 'bytes') }}
),

reference_files as (
    select * from {{ source('validation', 'reference_checkpoint_files') }}
    where {{ in_scope('table_name') }} and {{ references_loaded('table_name', 'bytes') }}
),

reference_differences as (
    select * from {{ source('validation', 'reference_checkpoint_differences') }}
    where {{ in_scope('table_name') }} and {{ references_loaded('table_name', 'bytes') }}
),

catalog_files as (
    select table_name, log_file, count(*) as catalog_rows
    from checkpoint_actions
    group by table_name, log_file
),

compared_files as (
    select
        coalesce(catalog_files.table_name, reference_files.table_name) as table_name,
        coalesce(catalog_files.log_file, reference_files.log_file) as log_file,
        cast(null as bigint) as line_number,
        case
            when reference_files.log_file is null then 'added'  -- a checkpoint file validation never read
            when coalesce(catalog_files.catalog_rows, 0) <> reference_files.action_rows then 'modified'
            when reference_files.equal_rows <> reference_files.action_rows then 'modified'
            else 'identical'
        end as diff_status,
        coalesce('actions: ' || cast(reference_files.action_rows as varchar) || ', all equal', 'not read by validation')
            as expected,
        'actions: ' || cast(coalesce(catalog_files.catalog_rows, 0) as varchar) || ', equal: '
            || cast(coalesce(reference_files.equal_rows, 0) as varchar) as observed
    from catalog_files
    full outer join reference_files
        on catalog_files.table_name = reference_files.table_name
        and catalog_files.log_file = reference_files.log_file
),

compared_rows as (
    select
        table_name,
        log_file,
        line_number,
        case
            when catalog_action is null then 'removed'  -- no catalog row at this line
            when parquet_action is null then 'added'  -- a catalog row at a line holding no action
            else 'modified'
        end as diff_status,
        parquet_action as expected,
        catalog_action as observed
    from reference_differences
),

differences as (
    select * from compared_files
    where diff_status <> 'identical'
    union all
    select * from compared_rows
)

select * from differences
