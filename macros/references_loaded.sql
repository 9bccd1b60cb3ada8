{#-
    A predicate: `<column>` names a table whose references for `level` were loaded by
    `delta2sql validate` at its latest version (validation_runs). The bytes tests compare only
    those tables: any other has nothing to compare with yet, and
    assert_tables_validated_at_latest_version says so instead (ADR 0004).
-#}
{% macro references_loaded(column, level) -%}
    {{ column }} in (
        select runs.table_name
        from {{ source('validation', 'validation_runs') }} as runs
        inner join {{ ref('stg_delta_log__tables') }} as tables
            on runs.table_name = tables.table_name
            and runs.validated_version = tables.latest_version
        where runs.levels like '%{{ level }}%'
    )
{%- endmacro %}
