{{ config(tags=['bytes']) }}
-- Every row of every Parquet checkpoint file (parts and sidecars) is in the catalog, action by
-- action: the hash of pyarrow's read of the row equals the hash of the catalog's action_json read
-- back into the same type (delta2sql/reference.py), and no row is missing or extra.

with checkpoint_actions as (
    select * from {{ ref('base_delta_log__published_actions') }}
    where source = 'checkpoint' and log_file like '%.parquet' and {{ in_scope('table_name') }}
        and {{ references_loaded('table_name', 'bytes') }}
),

reference_actions as (
    select * from {{ source('validation', 'reference_checkpoint_actions') }}
    where {{ in_scope('table_name') }} and {{ references_loaded('table_name', 'bytes') }}
),

compared as (
    select
        coalesce(checkpoint_actions.table_name, reference_actions.table_name) as table_name,
        coalesce(checkpoint_actions.log_file, reference_actions.log_file) as log_file,
        coalesce(checkpoint_actions.line_number, reference_actions.line_number) as line_number,
        case
            when reference_actions.line_number is null then 'added'
            when reference_actions.parquet_sha256 is null then 'identical'  -- an all-null row holds no action
            when checkpoint_actions.line_number is null then 'removed'
            when reference_actions.catalog_sha256 is distinct from reference_actions.parquet_sha256 then 'modified'
            else 'identical'
        end as diff_status,
        reference_actions.parquet_sha256 as expected,
        reference_actions.catalog_sha256 as observed
    from checkpoint_actions
    full outer join reference_actions
        on checkpoint_actions.table_name = reference_actions.table_name
        and checkpoint_actions.log_file = reference_actions.log_file
        and checkpoint_actions.line_number = reference_actions.line_number
)

select * from compared
where diff_status <> 'identical'
