{#-
    The catalog is one schema (ADR 0005): every relation dbt creates goes into the target's
    schema, whatever custom schema a node asks for. No model asks for one; the node that does is a
    data test run with `--store-failures`, which would otherwise write its failing rows into a
    second schema, `<schema>_dbt_test__audit` (on SQLite, a file beside the catalog). Plain
    `dbt build --store-failures` therefore keeps them in the catalog's schema, as tables named
    after the tests. delta2sql itself never stores failures: it re-reads them (test_failures.py).
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ target.schema }}
{%- endmacro %}
