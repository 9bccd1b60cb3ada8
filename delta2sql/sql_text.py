"""Quoting for SQL the package writes itself: names and text from a log or a catalog, never
trusted to be free of quotes."""

from __future__ import annotations


def sql_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
