"""The one choke point where DuckDB SQL becomes PostgreSQL or SQLite SQL (sqlglot).

Everything is written once, in DuckDB's dialect: the dbt models and tests (rendered to files by
`scripts/transpile_models.py`) and the SQL the Python package runs against a catalog. Unsupported
constructs raise (`ErrorLevel.RAISE`) instead of sqlglot's default warning: a silently wrong
translation is worse than none.

dbt models contain Jinja, which sqlglot cannot parse. Each `{{ ... }}` expression is swapped for
a placeholder identifier before parsing and put back afterwards, so refs, sources and macro
calls survive untouched; `{{ config(...) }}` and comment headers are carried over as they are.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

TARGETS = ("duckdb", "postgres", "sqlite")

_JINJA_EXPRESSION = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_JINJA_STATEMENT = re.compile(r"\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_CONFIG = re.compile(r"^\s*\{\{\s*config\(.*?\)\s*\}\}\s*\n", re.DOTALL)
_PLACEHOLDER = "__jinja_{}__"


class TranspileError(Exception):
    """sqlglot could not translate a statement faithfully."""


def _postgres_sha256(node: exp.Expression) -> exp.Expression:
    """PostgreSQL's sha256() takes and returns bytea; DuckDB's takes text and returns hex text."""
    if isinstance(node, exp.SHA2) or (isinstance(node, exp.Anonymous) and node.name.lower() == "sha256"):
        argument = node.this if isinstance(node, exp.SHA2) else node.expressions[0]
        return sqlglot.parse_one(f"encode(sha256(convert_to(({argument.sql('postgres')}), 'UTF8')), 'hex')", read="postgres")
    return node


def _cast_epoch_to_plain_timestamp(node: exp.Expression) -> exp.Expression:
    """DuckDB's epoch_ms() yields a TIMESTAMP (no zone); keep it so on PostgreSQL."""
    if isinstance(node, exp.UnixToTime):
        seconds = exp.Div(this=node.this, expression=exp.Literal.number(1000))
        at_utc = exp.AtTimeZone(this=exp.Anonymous(this="to_timestamp", expressions=[seconds]), zone=exp.Literal.string("UTC"))
        return at_utc
    return node


def _sqlite_epoch_ms(node: exp.Expression) -> exp.Expression:
    """SQLite has no timestamp type: render epoch milliseconds as ISO text with milliseconds."""
    if isinstance(node, exp.UnixToTime):
        seconds = exp.Div(this=node.this, expression=exp.Literal.number("1000.0"))
        return exp.Anonymous(this="strftime", expressions=[
            exp.Literal.string("%Y-%m-%d %H:%M:%f"), seconds, exp.Literal.string("unixepoch")])
    return node


def _postgres_json_from_text(node: exp.Expression) -> exp.Expression:
    """JSON lives in text columns (see docs/decisions); PostgreSQL's JSON operators need a cast."""
    if isinstance(node, (exp.JSONExtract, exp.JSONExtractScalar)) and not isinstance(node.this, exp.Cast):
        node.set("this", exp.Cast(this=node.this, to=exp.DataType.build("json")))
    return node


# Per-target rewrites of the parsed tree, for what sqlglot renders differently from DuckDB's meaning.
_REWRITES = {
    "postgres": (_postgres_sha256, _cast_epoch_to_plain_timestamp, _postgres_json_from_text),
    "sqlite": (_sqlite_epoch_ms,),
}


def transpile_sql(sql: str, target: str, pretty: bool = True) -> str:
    """Translate DuckDB statements (`;`-separated) to `target`; raises TranspileError."""
    if target == "duckdb":
        return sql
    try:
        statements = sqlglot.parse(sql, read="duckdb", error_level=ErrorLevel.RAISE)
        out = []
        for statement in statements:
            if statement is None:
                continue
            for rewrite in _REWRITES[target]:
                statement = statement.transform(rewrite)
            out.append(statement.sql(dialect=target, pretty=pretty, unsupported_level=ErrorLevel.RAISE))
    except sqlglot.errors.SqlglotError as exc:
        raise TranspileError(str(exc)) from exc
    return ";\n\n".join(out)


def transpile_dbt_sql(source: str, target: str) -> str:
    """Translate a dbt model or test (Jinja + DuckDB SQL) to `target`, Jinja intact."""
    config = _CONFIG.match(source)
    header = config.group(0) if config else ""
    body = source[len(header):]
    if _JINJA_STATEMENT.search(body):
        raise TranspileError("Jinja statements ({% %}, {# #}) in a model body cannot be transpiled; use a macro")
    comments = re.match(r"(\s*--[^\n]*\n)*", body).group(0)
    body = body[len(comments):]
    jinja: list[str] = []

    def hide(match: re.Match) -> str:
        jinja.append(match.group(0))
        return _PLACEHOLDER.format(len(jinja) - 1)

    sql = transpile_sql(_JINJA_EXPRESSION.sub(hide, body), target)
    for index, original in enumerate(jinja):
        placeholder = _PLACEHOLDER.format(index)
        if placeholder not in sql:
            raise TranspileError(f"sqlglot dropped the Jinja expression {original!r}")
        sql = sql.replace(placeholder, original)
    return header + comments + sql + "\n"
