{#-
    `and <column> = '<table>'` when the run is scoped to one table (var table_name), else nothing.
    The CLI scopes validation to the table being validated; plain dbt checks every table.
-#}
{% macro table_filter(column) -%}
    {%- set table_name = var('table_name', '') -%}
    {%- if table_name -%}
        and {{ column }} = '{{ table_name | replace("'", "''") }}'
    {%- endif -%}
{%- endmacro %}
