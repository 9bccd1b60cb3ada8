{#-
    None of `columns` holds a null: one scan of the model for all of them. dbt's column-level
    not_null scans once per column, and on PostgreSQL every such scan of a staging view re-reads
    the whole landing table (0.3 s per test on 1.9M actions).
    Returns, per table, the null count of each column, in the validation shape (table_name,
    diff_status, expected, observed); a row whose table_name is null is reported under '*',
    which delta2sql reads as "every table" (test_failures.ALL_TABLES).
-#}
{% test not_null_columns(model, columns) %}

with null_rows as (
    select *
    from {{ model }}
    where ({% for column in columns %}{{ column }} is null{% if not loop.last %} or {% endif %}{% endfor %})
        and ({{ in_scope('table_name') }} or table_name is null)
),

null_counts as (
    select
        coalesce(table_name, '*') as table_name,
        {%- for column in columns %}
        sum(case when {{ column }} is null then 1 else 0 end) as {{ column }}_nulls{% if not loop.last %},{% endif %}
        {%- endfor %}
    from null_rows
    group by coalesce(table_name, '*')
)

select
    table_name,
    'null value' as diff_status,
    'no nulls in {{ columns | join(', ') }}' as expected,
    {% for column in columns -%}
    case when {{ column }}_nulls > 0 then '{{ column }}: ' || {{ column }}_nulls || ' nulls; ' else '' end
    {%- if not loop.last %} || {% endif %}
    {% endfor %} as observed
from null_counts

{% endtest %}
