"""A small report writer: Markdown text, tables and PNG figures in one work directory."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # reports are written headless (CI, servers); notebooks still display figures inline
import matplotlib.pyplot as plt  # noqa: E402


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
