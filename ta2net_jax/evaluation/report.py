"""Markdown reports: tables of pooled and per-video metrics with the plots, for `ta2net eval` (report.md in
the workdir) and `ta2net eval-videos` (report.md in the output folder). Images are linked by paths
relative to the report, so the folder can be moved or viewed on GitHub as it is."""
from __future__ import annotations

import os
from collections.abc import Sequence

__all__ = ["fmt", "table", "Report"]


def fmt(value, digits: int = 3) -> str:
    """A table cell: floats to ``digits`` decimals, None as "n/a", bools as yes/no."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value).replace("|", "\\|")


def table(rows: Sequence[dict], columns: Sequence[tuple[str, str]], digits: int = 3) -> str:
    """Markdown table; ``columns``: (key, header) pairs; a missing key is "n/a"."""
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(k), digits) for k, _ in columns) + " |")
    return "\n".join(lines)


class Report:
    """Accumulates Markdown sections; ``write()`` saves ``path``."""

    def __init__(self, path: str, title: str):
        self.path = path
        self.parts = [f"# {title}", ""]

    def heading(self, text: str, level: int = 2) -> None:
        self.parts += ["#" * level + " " + text, ""]

    def text(self, text: str) -> None:
        self.parts += [text, ""]

    def table(self, rows: Sequence[dict], columns: Sequence[tuple[str, str]], digits: int = 3) -> None:
        self.parts += [table(rows, columns, digits), ""]

    def image(self, path: str, caption: str) -> None:
        rel = os.path.relpath(os.path.abspath(path), os.path.dirname(os.path.abspath(self.path)))
        self.parts += [f"![{caption}]({rel})", ""]

    def write(self) -> str:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path, "w") as f:
            f.write("\n".join(self.parts).rstrip() + "\n")
        return self.path
