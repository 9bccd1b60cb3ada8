{{ config(tags=['structure']) }}
-- The protocol forbids one version from acting twice on the same file identity (path +
-- deletion vector): adding and removing it, or adding it twice; readers disagree on what such
-- a log means. In log order, such an event is followed by another one in the same version.
-- Within a commit it is here; a checkpoint listing a file twice that no later commit acts on
-- is not in int_file_events_ordered, and the unique key of delta_files refuses it.

with events as (
    select * from {{ ref('int_file_events_ordered') }}
    where {{ in_scope('table_name') }}
),

violations as (
    select table_name, version, path, dv_id
    from events
    where next_event_version = version
)

select
    table_name,
    'duplicate key' as diff_status,
    'one action per file identity and version' as expected,
    'two actions at version ' || version || ' on ' || path as observed
from violations
