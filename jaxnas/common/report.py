"""A small report writer: Markdown text, tables and PNG figures in one work directory."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt  # the backend is the caller's: command-line entry points choose Agg (experiments.cli)


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")  # a `|` inside a cell (NAS-Bench-201's cell strings) would end it


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, digits: int = 2) -> str:
    """Formats `rows` (dicts with the same keys) as a Markdown table."""
    if not rows:
        return ""
    columns = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c, ""), digits) for c in columns) + " |")
    return "\n".join(lines)


class Report:
    """Collects Markdown blocks and figures, then writes `<workdir>/<filename>`.

    Figures are saved as PNG files next to the Markdown file and linked relatively, so the work
    directory can be copied or zipped as a whole.
    """

    def __init__(self, workdir: str | os.PathLike[str], title: str, filename: str = "report.md"):
        self.workdir = os.fspath(workdir)
        self.path = os.path.join(self.workdir, filename)
        self._blocks: list[str] = [f"# {title}"]
        os.makedirs(self.workdir, exist_ok=True)

    def heading(self, text: str, level: int = 2) -> None:
        self._blocks.append("#" * level + " " + text)

    def text(self, paragraph: str) -> None:
        self._blocks.append(paragraph.strip())

    def table(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, digits: int = 2) -> None:
        self._blocks.append(markdown_table(rows, columns, digits))

    def figure(self, fig: "plt.Figure", name: str, caption: str = "") -> str:
        """Saves `fig` as `<workdir>/<name>` (PNG), closes it, links it; returns the file path."""
        path = os.path.join(self.workdir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        self.image(path, caption)
        return path

    def image(self, path: str | os.PathLike[str], caption: str = "") -> None:
        """Links an existing image file (path absolute or relative to the cwd)."""
        rel = os.path.relpath(os.fspath(path), self.workdir)
        self._blocks.append(f"![{caption}]({rel})" + (f"\n\n*{caption}*" if caption else ""))

    def markdown(self) -> str:
        return "\n\n".join(self._blocks) + "\n"

    def write(self) -> str:
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(self.markdown())
        return self.path


_FIGURE = re.compile(r"!\[[^\]]*\]\(([^)\s]+\.(?:png|jpg|jpeg|gif))\)")


def report_parts(path: str) -> list[tuple[str, str]]:
    """A written report split for display: ("markdown", text) and ("image", file path) in order, each `![...](f.png)`
    a separate image (relative paths resolved against the report's folder)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    folder, parts, pos = os.path.dirname(os.path.abspath(path)), [], 0
    for m in _FIGURE.finditer(text):
        if text[pos:m.start()].strip():
            parts.append(("markdown", text[pos:m.start()]))
        parts.append(("image", os.path.join(folder, m.group(1))))
        pos = m.end()
    if text[pos:].strip():
        parts.append(("markdown", text[pos:]))
    return parts


def show_report(path: str) -> None:
    """Displays a written report in a notebook with its figures inline (a Markdown link to a local file shows nothing
    on Colab): the text as Markdown, each figure as an image output."""
    from IPython.display import Image, Markdown, display

    for kind, value in report_parts(path):
        display(Markdown(value) if kind == "markdown" else Image(filename=value))
