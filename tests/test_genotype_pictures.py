"""The best genotype drawn as a picture (issue 23): the NASNet cells and the hierarchical cell with its motifs hold
exactly the nodes, edges and op labels the architecture vector says (counted here straight from the vector, not
through the layout code), edges run left to right, and the report gets a non-empty PNG; other spaces get none."""

from collections import Counter

import jax
import matplotlib.pyplot as plt
import numpy as np
import pytest

from experiments.genotype_pictures import (add_genotype_report, draw_genotype, layout_hierarchical,
                                           layout_nasnet)
from jaxnas.common.report import Report
from jaxnas.spaces import SPACES, hierarchical, nasnet

NASNET = nasnet.SPACE
HIER = hierarchical.SPACE
H = hierarchical.settings_of(HIER)


def _nasnet_archs():
    out = [("amoebanet_a", NASNET, nasnet.AMOEBANET_A)]
    out += [(f"sample{s}", NASNET, np.asarray(NASNET.sample(jax.random.key(s)))) for s in range(3)]
    out.append(("mutated", NASNET, np.asarray(NASNET.mutate(jax.random.key(7), nasnet.AMOEBANET_A))))
    for B in (1, 8):
        sp = nasnet.space(B=B)
        out.append((f"B{B}", sp, np.asarray(sp.sample(jax.random.key(B)))))
    return out


def _expected_nasnet_cell(arch, B, ops, c):
    """(op edges as a Counter of (input, state, op name), states joining the concat), read off the raw vector."""
    v = np.asarray(arch).reshape(-1)[c * 4 * B:(c + 1) * 4 * B]
    edges = Counter((int(v[4 * b + 2 * e]), 2 + b, ops[int(v[4 * b + 2 * e + 1])]) for b in range(B) for e in range(2))
    read = {int(i) for i in v[0::2]}
    return edges, [s for s in range(2, 2 + B) if s not in read]


def _check_geometry(panel):
    x = {n.key: n.x for n in panel.nodes}
    assert len({(n.x, n.y) for n in panel.nodes}) == len(panel.nodes)  # no two nodes on one spot
    assert all(x[e.src] < x[e.dst] for e in panel.edges)  # layered by dependency: every edge runs rightwards


def _check_drawn(fig, panels):
    """Each panel's axes shows its nodes and its labelled edges as text, nothing else."""
    assert fig._genotype_panels == panels
    for ax, p in zip(fig.axes, panels):
        texts = Counter(t.get_text() for t in ax.texts if t.get_text())  # arrows are empty annotations
        assert texts == Counter([n.label for n in p.nodes] + p.labels)
        assert ax.get_title() == p.title


@pytest.mark.parametrize("name,space,arch", _nasnet_archs(), ids=[a[0] for a in _nasnet_archs()])
def test_nasnet_layout_matches_vector(name, space, arch):
    cells = nasnet.cells_of(space)
    B = cells.B
    panels = layout_nasnet(cells, arch)
    assert [p.title for p in panels] == ["normal cell", "reduction cell"]
    for c, p in enumerate(panels):
        want_edges, concat = _expected_nasnet_cell(arch, B, cells.ops, c)
        assert len(p.nodes) == 2 + B + 1
        assert sorted(str(n.key) for n in p.nodes) == sorted([str(k) for k in range(2 + B)] + ["out"])
        assert Counter((e.src, e.dst, e.label) for e in p.edges if e.dst != "out") == want_edges
        assert len(p.labels) == 2 * B and set(p.labels) <= set(cells.ops)
        assert sorted(e.src for e in p.edges if e.dst == "out") == concat and concat  # the last state always joins
        assert all(e.label == "" for e in p.edges if e.dst == "out")
        _check_geometry(p)
    if name in ("amoebanet_a", "B8", "B1"):
        fig = draw_genotype(space, arch)
        try:
            assert len(fig.axes) == 2
            _check_drawn(fig, panels)
        finally:
            plt.close(fig)


def test_amoebanet_a_concat():
    """The published wiring: 3, 4, 6 (normal) and 3, 5, 6 (reduction) join the output, as `describe` says."""
    normal, reduction = layout_nasnet(nasnet.cells_of(NASNET), nasnet.AMOEBANET_A)
    assert sorted(e.src for e in normal.edges if e.dst == "out") == [3, 4, 6]
    assert sorted(e.src for e in reduction.edges if e.dst == "out") == [3, 5, 6]
    assert "out=concat(3,4,6) | reduction" in NASNET.to_string(nasnet.AMOEBANET_A)
    assert Counter(normal.labels)["avg_pool_3x3"] == 3


def _live(n, ops):
    """Nodes on a path from node 0 to node n - 1, by the transitive closure of the raw adjacency matrix."""
    adj = np.zeros((n, n), np.int64)
    for (i, j), op in zip(hierarchical.edges(n), ops):
        adj[i, j] = op != 0
    reach = np.linalg.matrix_power(np.eye(n, dtype=np.int64) + adj, n) > 0
    return {k for k in range(n) if reach[0, k] and reach[k, n - 1]}


def _check_dag(panel, n, ops, name):
    live = _live(n, ops)
    pairs = [(i, j, name(int(op))) for (i, j), op in zip(hierarchical.edges(n), ops) if op != 0]
    assert len(panel.nodes) == n and [n_.key for n_ in panel.nodes] == list(range(n))
    assert len(panel.edges) == np.count_nonzero(ops) == len(panel.labels)  # none edges are not drawn
    assert [(e.src, e.dst, e.label) for e in panel.edges] == pairs
    assert {n_.key for n_ in panel.nodes if n_.active} == live
    assert all(e.active == (e.src in live and e.dst in live) for e in panel.edges)
    _check_geometry(panel)
    return live


def _check_hierarchical(arch):
    motif_ops = np.asarray(arch)[:H.cell_offset].reshape(H.motifs, H.motif_edges)
    cell_ops = np.asarray(arch)[H.cell_offset:]
    panels, unused = layout_hierarchical(H, arch)
    live = _check_dag(panels[0], H.cell_nodes, cell_ops, lambda op: f"m{op}")
    used = sorted({int(op) for (i, j), op in zip(hierarchical.edges(H.cell_nodes), cell_ops)
                   if op and i in live and j in live})
    assert [p.title for p in panels[1:]] == [f"motif m{m} (level 2)" for m in used]
    assert unused == [m for m in range(1, H.motifs + 1) if m not in used]
    for m, p in zip(used, panels[1:]):
        _check_dag(p, H.motif_nodes, motif_ops[m - 1], H.op_name)
        assert set(p.labels) <= set(H.primitives)
    return panels, unused


def test_hierarchical_trivial():
    arch = H.trivial()
    panels, unused = _check_hierarchical(arch)
    assert panels[0].labels == ["m1"] * (H.cell_nodes - 1) and all(n.active for n in panels[0].nodes)
    assert len(panels) == 2 and panels[1].labels == ["identity"] * (H.motif_nodes - 1)
    assert unused == list(range(2, H.motifs + 1))
    fig = draw_genotype(HIER, arch)
    try:
        assert len(fig.axes) == 2
        _check_drawn(fig, panels)
        assert "m2, m3, m4, m5, m6" in fig._suptitle.get_text()
    finally:
        plt.close(fig)


def test_hierarchical_cut_off_nodes_are_grey_and_their_motifs_not_drawn():
    """The chain broken at 2 -> 3, a shortcut 0 -> 4 through motif 2: only 0 and 4 are live, only m2 is drawn."""
    arch = H.trivial()
    arch[H.cell_offset + hierarchical.edge_index(2, 3)] = 0
    arch[H.cell_offset + hierarchical.edge_index(0, 4)] = 2
    panels, unused = _check_hierarchical(arch)
    assert [n.key for n in panels[0].nodes if n.active] == [0, 4]
    assert [e.label for e in panels[0].edges if e.active] == ["m2"]
    assert len(panels) == 2 and unused == [1, 3, 4, 5, 6]


def test_hierarchical_initial_population():
    pop = np.asarray(hierarchical.initial_population(jax.random.key(0), 4, 1000))
    for k, arch in enumerate(pop):
        panels, _ = _check_hierarchical(arch)
        if k == 0:
            fig = draw_genotype(HIER, arch)
            try:
                assert len(fig.axes) == len(panels)
                _check_drawn(fig, panels)
            finally:
                plt.close(fig)


@pytest.mark.parametrize("space,arch", [(NASNET, nasnet.AMOEBANET_A), (HIER, H.trivial())], ids=["nasnet", "hier"])
def test_report_gets_png(tmp_path, space, arch):
    report = Report(tmp_path / "report", "search")
    workdir = tmp_path / "report" / "run"
    before = plt.get_fignums()  # figures other test files left open in this process
    add_genotype_report(report, str(workdir), space, arch, caption_prefix="Best of 3")
    png = workdir / "genotype.png"
    assert png.stat().st_size > 1000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "](run/genotype.png)" in report.markdown() and "Best of 3" in report.markdown()
    assert plt.get_fignums() == before  # the figure was closed


def test_other_spaces_get_nothing(tmp_path):
    space = SPACES.get("nb201")
    arch = np.asarray(space.sample(jax.random.key(0)))
    assert draw_genotype(space, arch) is None
    report = Report(tmp_path, "search")
    before = report.markdown()
    add_genotype_report(report, str(tmp_path), space, arch)
    assert report.markdown() == before and not list(tmp_path.glob("*.png"))
