"""Table names: any Unicode text, stored in NFC, with three refusals.

A table's catalog name (`--name`, a manifest's `name:`, or the folder's name by default) is
normalized to Unicode NFC, so that a folder name written decomposed (as macOS does) and the same
name typed composed are one table. It is then refused, with the rule it breaks, when it is

- empty;
- not text: control characters (Unicode category Cc: tab, newline, NUL, DEL, C1 controls),
  line or paragraph separators (U+2028, U+2029), or lone surrogates (undecodable bytes of a
  folder name);
- longer than MAX_NAME_LENGTH characters (code points, after NFC).

Everything else works on all three engines: quotes, spaces, dots, `%`, emoji, names that differ
only in case (two tables: every catalog query compares with `=` and parameters, case-sensitive on
DuckDB, PostgreSQL and SQLite alike). 255 characters keep the widest name (4 bytes of UTF-8 each)
far below PostgreSQL's limit on an index entry (about 2,700 bytes) in the catalog's keys.
"""

from __future__ import annotations

import unicodedata

from delta2sql.errors import Delta2SqlError

MAX_NAME_LENGTH = 255
_REFUSED_CATEGORIES = {"Cc": "a control character", "Zl": "a line separator", "Zp": "a paragraph separator",
                       "Cs": "an undecodable byte (lone surrogate)"}


def table_name(name: str) -> str:
    """`name` in NFC; Delta2SqlError naming the rule when it is not a valid table name."""
    if not isinstance(name, str):
        raise Delta2SqlError(f"table name {name!r} must be text")
    normalized = unicodedata.normalize("NFC", name)
    if not normalized:
        raise Delta2SqlError("table name is empty: give one with --name (or `name:` in the manifest)")
    for position, character in enumerate(normalized, start=1):
        what = _REFUSED_CATEGORIES.get(unicodedata.category(character))
        if what:
            raise Delta2SqlError(f"table name {normalized!r} contains {what} (U+{ord(character):04X}) at "
                                 f"position {position}: table names may not contain control characters, line "
                                 "breaks or undecodable bytes")
    if len(normalized) > MAX_NAME_LENGTH:
        raise Delta2SqlError(f"table name {normalized[:40]!r}... is {len(normalized)} characters long: "
                             f"table names are at most {MAX_NAME_LENGTH} characters")
    return normalized
