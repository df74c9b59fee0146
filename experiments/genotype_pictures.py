"""The best genotype drawn as a picture, for search reports (issue 23: "the best genotype drawn as a picture (both
cells; the motif hierarchy)").

NASNet (`jaxnas.spaces.nasnet`): the normal and the reduction cell, each a DAG from the two cell inputs (hidden
state 0 = h[i-1], the previous cell; 1 = h[i-2], the one before it) through the B combinations (each the sum of
its two elements; an edge per element, labelled by its op) to `concat`, fed by the combinations no later one reads.
Hierarchical (`jaxnas.spaces.hierarchical`): the level-3 cell (edges labelled by motif), then one panel per motif
the cell uses (edges labelled by primitive); `none` edges are not drawn, and nodes cut off from the input or the
output (absent in the network) are grey, as are the edges that touch them.

`layout_nasnet` / `layout_hierarchical` give the panels as data (nodes, positions, labelled edges), which the
`draw_*` functions render with matplotlib alone and attach to the figure as `fig._genotype_panels`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from jaxnas.spaces import hierarchical, nasnet

GREY = "#bdbdbd"
DX, DY = 3.0, 1.2  # column and row spacing, in node widths of ~0.9
NODE_COLORS = {"input": "#9ecae1", "node": "#fdd0a2", "output": "#a1d99b"}


@dataclasses.dataclass(frozen=True)
class Node:
    key: int | str  # hidden-state / node number, or "out"
    label: str
    kind: str  # "input", "node" or "output"
    x: float = 0.0
    y: float = 0.0
    active: bool = True


@dataclasses.dataclass(frozen=True)
class Edge:
    src: int | str
    dst: int | str
    label: str  # op name; "" for an edge into concat
    active: bool = True


@dataclasses.dataclass(frozen=True)
class Panel:
    title: str
    nodes: list[Node]
    edges: list[Edge]

    @property
    def labels(self) -> list[str]:
        """The labels of the labelled edges, in drawing order."""
        return [e.label for e in self.edges if e.label]


def _place(nodes: list[Node], edges: list[Edge]) -> list[Node]:
    """Columns by dependency depth (longest path from a node without inputs), rows centred within a column."""
    preds: dict[Any, list[Any]] = {n.key: [] for n in nodes}
    for e in edges:
        preds[e.dst].append(e.src)
    depth: dict[Any, int] = {}
    for n in nodes:  # nodes are listed in a topological order
        depth[n.key] = 1 + max((depth[p] for p in preds[n.key]), default=-1)
    for n in nodes:  # the output in the last column, even when nodes cut off from it run deeper
        if n.kind == "output":
            depth[n.key] = max(depth.values())
    columns: dict[int, list[Node]] = {}
    for n in nodes:
        columns.setdefault(depth[n.key], []).append(n)
    placed = {}
    for d in sorted(columns):  # a column in the mean order of its nodes' inputs (fewer crossings), then by number
        col = sorted(columns[d], key=lambda n: -np.mean([placed[p].y for p in preds[n.key]]) if preds[n.key] else 0)
        for r, n in enumerate(col):
            placed[n.key] = dataclasses.replace(n, x=float(d), y=(len(col) - 1) / 2 - r)
    return [placed[n.key] for n in nodes]


def _reach(n: int, pairs: list[tuple[int, int]], start: int, forward: bool) -> set[int]:
    seen, todo = {start}, [start]
    while todo:
        v = todo.pop()
        for i, j in pairs:
            a, b = (i, j) if forward else (j, i)
            if a == v and b not in seen:
                seen.add(b)
                todo.append(b)
    return seen


def layout_nasnet(cells: nasnet.Cells, arch: Any) -> list[Panel]:
    """The normal and the reduction cell of `arch` (8B,) as panels: nodes 0, 1 (inputs), 2..B+1, "out"."""
    a = nasnet.as_cells(np.asarray(arch).reshape(-1), cells.B)
    free = nasnet.output_mask(cells, np.asarray(arch).reshape(-1))
    panels = []
    for c, name in enumerate(nasnet.CELLS):
        nodes = [Node(0, "0: h[i-1]", "input"), Node(1, "1: h[i-2]", "input")]
        nodes += [Node(2 + b, f"{2 + b}: +", "node") for b in range(cells.B)]
        nodes.append(Node("out", "concat", "output"))
        edges = [Edge(int(a[c, b, e, 0]), 2 + b, cells.ops[int(a[c, b, e, 1])])
                 for b in range(cells.B) for e in range(2)]
        edges += [Edge(2 + b, "out", "") for b in range(cells.B) if free[c, b]]
        panels.append(Panel(f"{name} cell", _place(nodes, edges), edges))
    return panels


def _dag_panel(title: str, n: int, ops: np.ndarray, name) -> Panel:
    pairs = [(i, j) for (i, j), op in zip(hierarchical.edges(n), ops) if op != hierarchical.NONE]
    live = _reach(n, pairs, 0, True) & _reach(n, pairs, n - 1, False)
    nodes = [Node(k, str(k), "input" if k == 0 else "output" if k == n - 1 else "node", active=k in live)
             for k in range(n)]
    edges = [Edge(i, j, name(int(op)), i in live and j in live)
             for (i, j), op in zip(hierarchical.edges(n), ops) if op != hierarchical.NONE]
    return Panel(title, _place(nodes, edges), edges)


def layout_hierarchical(hier: hierarchical.Hierarchy, arch: Any) -> tuple[list[Panel], list[int]]:
    """(panels, unused motifs): the cell, then each motif (1-based) on an active cell edge, in number order."""
    motif_ops, cell_ops = hier.split(arch)
    cell = _dag_panel("cell (level 3)", hier.cell_nodes, cell_ops, lambda op: f"m{op}")
    used = sorted({int(e.label[1:]) for e in cell.edges if e.active})
    panels = [cell] + [_dag_panel(f"motif m{m} (level 2)", hier.motif_nodes, motif_ops[m - 1], hier.op_name)
                       for m in used]
    return panels, [m for m in range(1, hier.motifs + 1) if m not in used]


def _draw_panel(ax, panel: Panel) -> None:
    import matplotlib.patches as mpatches

    pos = {n.key: (n.x * DX, n.y * DY) for n in panel.nodes}
    boxes = {}
    for n in panel.nodes:
        x, y = pos[n.key]
        boxes[n.key] = ax.add_patch(mpatches.FancyBboxPatch(
            (x - 0.45, y - 0.2), 0.9, 0.4, boxstyle="round,pad=0.06", fc=NODE_COLORS[n.kind] if n.active else
            "#f0f0f0", ec="black" if n.active else GREY, lw=0.8, zorder=4))
        ax.text(x, y, n.label, ha="center", va="center", fontsize=8, zorder=5, color="black" if n.active else
                "#969696")
    doubles, seen, bent, placed = _doubles(panel), set(), 0, []
    xs, ys = [p[0] for p in pos.values()], [p[1] for p in pos.values()]
    for e in panel.edges:
        (x1, y1), (x2, y2) = pos[e.src], pos[e.dst]
        if (e.src, e.dst) in doubles:  # the two elements of a combination read the same state: bend both apart
            rad = -0.25 if (e.src, e.dst) in seen else 0.25
            seen.add((e.src, e.dst))
        elif abs(x2 - x1) > 1.5 * DX:  # over a column: bowed outwards, away from the nodes (alternating at the middle)
            mid = (y1 + y2) / 2
            rad = -0.25 if mid > 0 or (mid == 0 and bent % 2 == 0) else 0.25
            bent += mid == 0
        else:
            rad = 0.0
        color = "black" if e.active else GREY
        ax.annotate("", (x2, y2), (x1, y1), zorder=2, arrowprops={
            "arrowstyle": "-|>,head_length=0.5,head_width=0.2", "color": color, "lw": 0.9,
            "patchA": boxes[e.src], "patchB": boxes[e.dst], "shrinkA": 1, "shrinkB": 1,
            "connectionstyle": f"arc3,rad={rad}"})
        # arc3 draws a quadratic Bezier whose control point is rad * (dy, -dx) off the chord's middle
        cx, cy = (x1 + x2) / 2 + rad * (y2 - y1), (y1 + y2) / 2 - rad * (x2 - x1)
        at = lambda t: tuple((1 - t) ** 2 * a + 2 * t * (1 - t) * c + t ** 2 * b  # noqa: E731
                             for a, c, b in ((x1, cx, x2), (y1, cy, y2)))
        xs.append(at(0.5)[0])
        ys.append(at(0.5)[1])
        if e.label:  # in the gap before the end's column, where in-edges come apart (out of an input they crowd);
            # moved along the edge while it would cover a label already placed
            length = np.hypot(x2 - x1, y2 - y1)
            spots = [at(min(0.95, max(0.3, 1 - d / length))) for d in (1.3, 2.1, 0.95, 1.7, 2.5)]
            free = [p for p in spots if all(abs(p[0] - q[0]) > 1.2 or abs(p[1] - q[1]) > 0.32 for q in placed)]
            lx, ly = (free or spots)[0]
            placed.append((lx, ly))
            ax.text(lx, ly, e.label, ha="center", va="center", fontsize=7, color=color, zorder=3,
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.85})
    ax.set_xlim(min(xs) - 0.7, max(xs) + 0.7)
    ax.set_ylim(min(ys) - 0.5, max(ys) + 0.5)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(panel.title, fontsize=10)


def _doubles(panel: Panel) -> set[tuple[Any, Any]]:
    """Endpoint pairs with two edges (a combination whose two elements read the same state)."""
    pairs = [(e.src, e.dst) for e in panel.edges]
    return {p for p in pairs if pairs.count(p) > 1}


def _extent(panel: Panel) -> tuple[float, float]:
    return max(n.x for n in panel.nodes) * DX + 1.4, max(n.y for n in panel.nodes) * 2 * DY + 2.2


def draw_nasnet(space, arch: Any):
    """The normal cell above the reduction cell of `arch`, a NASNet-space genotype (8B,)."""
    import matplotlib.pyplot as plt

    panels = layout_nasnet(nasnet.cells_of(space), arch)
    w = max(_extent(p)[0] for p in panels)
    hs = [_extent(p)[1] for p in panels]
    fig, axes = plt.subplots(2, 1, figsize=(max(4.0, w * 0.75), sum(hs) * 0.75 + 0.4),
                             gridspec_kw={"height_ratios": hs})
    for ax, p in zip(axes, panels):
        _draw_panel(ax, p)
    fig._genotype_panels = panels
    return fig


def draw_hierarchical(space, arch: Any):
    """The level-3 cell on top, below it one panel per motif the cell uses (reachable from input to output)."""
    import matplotlib.pyplot as plt

    panels, unused_motifs = layout_hierarchical(hierarchical.settings_of(space), arch)
    cell, motifs = panels[0], panels[1:]
    cw, ch = _extent(cell)
    mw = max((_extent(p)[0] for p in motifs), default=0.0)
    mh = max((_extent(p)[1] for p in motifs), default=0.0)
    cols = min(3, max(1, len(motifs)))
    rows = -(-len(motifs) // cols)
    fig = plt.figure(figsize=(max(cw, mw * cols, 4.0) * 0.75, (ch + mh * rows) * 0.75 + 0.8))
    grid = fig.add_gridspec(1 + rows, cols, height_ratios=[ch] + [mh] * rows)
    _draw_panel(fig.add_subplot(grid[0, :]), cell)
    for k, p in enumerate(motifs):
        _draw_panel(fig.add_subplot(grid[1 + k // cols, k % cols]), p)
    note = ("motifs not used by the cell (not drawn): " + ", ".join(f"m{m}" for m in unused_motifs)
            if unused_motifs else "every motif is used by the cell")
    fig.suptitle(note, fontsize=9, y=0.01, va="bottom")
    fig._genotype_panels = panels
    return fig


def draw_genotype(space, arch: Any):
    """The picture of `arch` for a NASNet or hierarchical space; None for other spaces."""
    draw = {"nasnet": draw_nasnet, "hierarchical": draw_hierarchical}.get(space.name)
    return draw(space, arch) if draw is not None else None


def add_genotype_report(report, workdir: str, space, arch: Any, caption_prefix: str = "Best genotype") -> None:
    """Adds `<workdir>/genotype.png` (the picture of `arch`) to `report`; nothing for spaces without a picture."""
    import matplotlib.pyplot as plt

    fig = draw_genotype(space, arch)
    if fig is None:
        return
    what = ("normal cell (top) and reduction cell (bottom); edges are ops, concat joins the unused combinations"
            if space.name == "nasnet" else "the cell (edges are motifs) and the motifs it uses (edges are primitives);"
            " grey: cut off from the input or the output")
    rel = os.path.relpath(os.path.join(workdir, "genotype.png"), report.workdir)
    report.figure(fig, rel, f"{caption_prefix}: {what}.")
    plt.close(fig)
