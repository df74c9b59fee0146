"""How README's generated tables print numbers, tables and their sources (shared by the table modules)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Table:
    """A generated README block: the results it reads and how it renders them (Markdown, ending in a newline)."""

    sources: tuple[str, ...]
    render: Callable[[dict[str, dict[str, Any]]], str]


def fmt(x: float | None, digits: int = 3, pct: bool = False) -> str:
    """A number as the README prints it; `None` (a figure the run could not measure) as 'n/a'."""
    if x is None:
        return "n/a"
    return f"{100 * x:.{digits}f}%" if pct else f"{x:,.{digits}f}"


def percent(x: Any) -> Any:
    """Accuracies (fractions in [0, 1], as every API and results file holds them) in percent, for printing only:
    100 x rounded to 10 decimals, so that a figure converted from percent (p / 100) prints as p did (100 * (p / 100)
    can land a hair below a last printed digit's boundary). A number, a sequence or an array (as an array); `None`
    stays `None`, NaN stays NaN."""
    if x is None:
        return None
    if isinstance(x, (int, float, np.floating, np.integer)):
        return round(100 * float(x), 10)
    return np.round(100 * np.asarray(x, np.float64), 10)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def sources_line(results: dict[str, dict[str, Any]]) -> str:
    """One line under a table: which files hold its figures and the device they were measured on."""
    devices = sorted({device_label(r) for r in results.values()})
    files = ", ".join(f"`results/{n}.json`" for n in results)
    return f"\nSource: {files} ({'; '.join(devices)}; each file names the command that wrote it).\n"


def device_label(result: dict[str, Any]) -> str:
    dev = result.get("provenance", {}).get("device", {})
    kind = dev.get("jax_device_kind") or "?"
    if dev.get("jax_backend", "cpu") == "cpu":
        return f"{dev.get('cores', '?')}-core {dev.get('cpu', 'CPU')}"
    return kind


def load_note(result: dict[str, Any]) -> str:
    """The run's wall time, with the machine's load average when it was recorded."""
    load = result["provenance"]["device"].get("loadavg_1m")
    return f"{result['wall_s']:,.0f} s" + (f" at load average {load:g}" if load is not None else "")
