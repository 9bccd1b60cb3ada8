{#
    dbt-sqlite's own version renders a list `unique_key` as text and selects a row value, which
    SQLite rejects; the catalog tables are keyed on (table_name, version) or (table_name, path).
    Same delete-then-insert, with one equality per key column.
#}
{% macro sqlite_incremental_upsert(tmp_relation, target_relation, unique_key=none, statement_name="main") %}
    {%- set dest_columns = adapter.get_columns_in_relation(target_relation) -%}
    {%- set dest_cols_csv = dest_columns | map(attribute='quoted') | join(', ') -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}

    {%- if unique_key is not none -%}
      {% call statement('sqlite_incremental_upsert') -%}
    delete from {{ target_relation }}
    where exists (
        select 1 from {{ tmp_relation }} as new_rows
        where {% for key in keys %}new_rows.{{ key }} = {{ target_relation }}.{{ key }}{{ " and " if not loop.last }}{% endfor %}
    );
      {%- endcall %}
    {%- endif %}

    insert into {{ target_relation }} ({{ dest_cols_csv }})
       select {{ dest_cols_csv }}
       from {{ tmp_relation }}
    ;
{%- endmacro %}
