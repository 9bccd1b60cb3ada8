{#-
    on-run-start: refuse to run on a database that holds no delta2sql catalog. Plain dbt pointed
    at the wrong file (a relative DELTA2SQL_CATALOG read from another directory) or schema would
    otherwise fail on every model with "relation does not exist".
-#}
{% macro require_catalog() %}
    {%- if execute -%}
        {%- set landed = adapter.get_relation(database=target.database, schema=target.schema,
                                              identifier='delta_log_tables') -%}
        {%- if landed is none -%}
            {%- if target.type == 'postgres' -%}
                {%- set where = 'PostgreSQL database ' ~ target.dbname ~ ', schema ' ~ target.schema
                                ~ ' (set DELTA2SQL_PG_SCHEMA and the PG* variables)' -%}
            {%- elif target.type == 'sqlite' -%}
                {%- set where = target.schemas_and_paths['main'] ~ ' (set DELTA2SQL_CATALOG to the file delta2sql wrote)' -%}
            {%- else -%}
                {%- set where = target.path ~ ' (set DELTA2SQL_CATALOG to the file delta2sql wrote)' -%}
            {%- endif -%}
            {{ exceptions.raise_compiler_error("no delta2sql catalog in " ~ where
                                               ~ "; `delta2sql migrate` creates one") }}
        {%- endif -%}
    {%- endif -%}
{% endmacro %}
