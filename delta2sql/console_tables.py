"""Tables for people that never break a word, whatever the terminal's width.

Rich shrinks a table to the terminal by folding cells, which splits names, versions and
timestamps mid-word at 80 columns. Here a table is drawn only when every column can be as wide
as its longest word; otherwise each row is stacked as `label: value` lines, and a word longer
than the whole line is cut with an ellipsis instead of folded.
"""

from __future__ import annotations

import datetime as dt

from rich.console import Console
from rich.table import Table
from rich.text import Text


def timestamp(value) -> str:
    """A timestamp as one word (`2026-11-26T18:05:17`), so it never wraps across lines."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(microsecond=0).isoformat()


def _longest_word(text: str) -> int:
    return max((len(word) for word in text.split()), default=0)


def fits(console: Console, headers: list[str], rows: list[list[str]]) -> bool:
    """Whether a bordered table with every column at least as wide as its longest word fits."""
    widths = [max([_longest_word(h)] + [_longest_word(r[i]) for r in rows]) for i, h in enumerate(headers)]
    return sum(widths) + 3 * len(headers) + 1 <= console.width  # 2 spaces of padding and 1 border per column


def print_table(console: Console, title: str, headers: list[str], rows: list[list[str]],
                styles: list[list[str]] | None = None) -> None:
    """`rows` of plain strings (no markup: names are printed as they are); `styles` per cell."""
    styles = styles or [[""] * len(headers) for _ in rows]
    if fits(console, headers, rows):
        table = Table(title=title)
        for header in headers:
            table.add_column(header, overflow="fold")
        for row, row_styles in zip(rows, styles):
            table.add_row(*(Text(cell, style=style) for cell, style in zip(row, row_styles)))
        console.print(table)
        return
    console.print(Text(title, style="italic"))
    label_width = max(len(h) for h in headers[1:]) if len(headers) > 1 else 0
    for row, row_styles in zip(rows, styles):
        console.print(Text(row[0], style="bold " + row_styles[0]), overflow="ellipsis")
        for header, cell, style in zip(headers[1:], row[1:], row_styles[1:]):
            if cell:
                line = Text.assemble(f"  {header:<{label_width}}  ", (cell, style))
                console.print(line, overflow="ellipsis")
