{#
    The version after which an incremental catalog table replays a table's log: none (-1, every
    version) when the model is built in full, the table's built version when dbt runs it
    incrementally. Written as a macro because model bodies stay Jinja-statement-free for sqlglot.
#}
{% macro replay_after(built_version) -%}
    {%- if is_incremental() -%} coalesce({{ built_version }}, -1) {%- else -%} -1 {%- endif -%}
{%- endmacro %}
