{#-
    A catalog key is unique: at most one row per combination of `columns` (table_name first).
    Returns the duplicated keys in the validation shape (table_name, diff_status, expected, observed).
-#}
{% test unique_key(model, columns) %}

with keyed as (
    select
        {{ columns | join(', ') }},
        count(*) as num_rows
    from {{ model }}
    where {{ in_scope('table_name') }}
    group by {{ columns | join(', ') }}
)

select
    table_name,
    'duplicate key' as diff_status,
    '1 row per ({{ columns | join(', ') }})' as expected,
    num_rows || ' rows for ' || {{ columns[1:] | join(" || ', ' || ") if columns | length > 1 else "table_name" }} as observed
from keyed
where num_rows > 1

{% endtest %}
