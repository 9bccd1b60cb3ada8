{#-
    A predicate: `<column> = '<table>'` when the run is scoped to one table (var table_name),
    else `1 = 1`. The CLI scopes validation to the tables being validated; plain dbt checks all.
    Written as a whole predicate so the DuckDB source of a test stays parseable by sqlglot.
-#}
{% macro in_scope(column) -%}
    {%- set table_name = var('table_name', '') -%}
    {%- if table_name -%}
        {{ column }} = '{{ table_name | replace("'", "''") }}'
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}
