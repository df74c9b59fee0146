"""HyperNEAT (`jaxnas.problems.hyperneat`) and the CPPN genes under it: per-node activations that evolve, the
expression threshold and scaling against hand-computed weights, the CPPN query of a known genome, the boxes task's
trials, and the substrate's answers against a plain Python reference built from the exported CPPN."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.common.errors import ConfigError
from jaxnas.problems import hyperneat as hn
from jaxnas.problems.neat_tasks import make_problem
from jaxnas.spaces.neat import NeatSpace
from jaxnas.spaces.neat_export import to_function
from jaxnas.strategies import neat_ops as ops
from jaxnas.strategies.neat import Neat
from test_neat_export import make_genome

pytestmark = pytest.mark.usefixtures("fast_compile")
SIX = ("tanh", "sigmoid", "sin", "gauss", "abs", "identity")  # the six CPPN functions
CPPN_SPACE = NeatSpace(4, 1, max_nodes=10, max_conns=16, activation="sigmoid", output_activation="tanh",
                       activations=SIX)
TANH = SIX.index("tanh")


def _generations(neat: Neat, n: int, seed: int = 0):
    """n generations with random fitness; the genomes of each."""
    ask, tell = jax.jit(neat.ask), jax.jit(neat.tell)
    key = jax.random.key(seed)
    state = neat.init(key)
    out = []
    for i in range(n):
        genomes, state = ask(jax.random.fold_in(key, i), state)
        state, _ = tell(state, genomes, jax.random.uniform(jax.random.fold_in(key, 100 + i), (neat.population_size,)))
        out.append(jax.tree.map(np.asarray, genomes))
    return out


def test_cppn_activation_genes_start_at_the_output_function_draw_new_nodes_at_random_and_mutate():
    fixed = _generations(Neat(CPPN_SPACE, population_size=16, node_add_rate=0.5), 6)
    first, last = fixed[0], fixed[-1]
    assert np.all(first.node_act[:, 4] == TANH)  # node slot 4 is the output
    assert np.all(last.node_act[:, 4] == TANH)  # without activation mutation the outputs keep theirs
    hidden = last.node_act[(last.node_id >= 5) & (last.node_id != np.iinfo(np.int32).max)]
    assert hidden.size >= 8 and len(set(hidden.tolist())) >= 3  # new nodes draw their function at random
    runs = [_generations(Neat(CPPN_SPACE, population_size=16, node_add_rate=0.5, activation_mutate_rate=rate), 6)
            for rate in (0.0, 1.0)]
    assert all(np.all(run[-1].node_act[:, 4] == TANH) for run in runs)  # the signed output is never redrawn
    # a node that exists in two consecutive generations keeps its function without redraws, not with them
    changed = []
    for run in runs:
        before, after = run[-2], run[-1]
        n = 0
        for b_ids, b_act, a_ids, a_act in zip(before.node_id, before.node_act, after.node_id, after.node_act):
            old = {int(i): int(a) for i, a in zip(b_ids, b_act) if 5 <= i < np.iinfo(np.int32).max}
            n += sum(old[int(i)] != int(a) for i, a in zip(a_ids, a_act) if int(i) in old)
        changed.append(n)
    assert changed[1] > changed[0]
    assert set(np.unique(runs[1][-1].node_act).tolist()) <= set(range(len(SIX)))


def test_cppn_distance_counts_a_different_activation_and_crossover_takes_either_parents():
    g = make_genome(CPPN_SPACE, [6], {}, [(0, 4, 1.0, True), (0, 6, 1.0, True), (6, 4, 1.0, True)], {4: TANH, 6: 2})
    h = g.replace(node_act=g.node_act.at[5].set(3))  # slot 5 holds node 6: another function
    # neat-python: node part (c_weight * 1 + 0 disjoint) / 2 nodes; connections identical
    assert float(ops.compatibility_neat_python(g, h, 1.0, 0.5, 4)) == pytest.approx(0.5 * 1 / 2)
    n, c = CPPN_SPACE.max_nodes, CPPN_SPACE.max_conns
    ones, zeros = jnp.ones(n), jnp.zeros(n)
    take = lambda u: ops.crossover_with((jnp.ones(c), jnp.ones(c), ones, u), g, h, 0.75).node_act  # noqa: E731
    assert int(take(zeros)[5]) == 3 and int(take(ones)[5]) == 2


def test_cppn_settings_are_checked_by_name():
    with pytest.raises(ConfigError, match="^activation_mutate_rate"):
        Neat(NeatSpace(2, 1), activation_mutate_rate=0.1)
    with pytest.raises(ConfigError, match="^activations"):
        NeatSpace(4, 1, activations=("tanh", "cosh"))
    with pytest.raises(ConfigError, match="^output_activation"):
        NeatSpace(4, 1, output_activation="relu", activations=("tanh", "sin"))


def test_the_boxes_cppn_uses_the_authors_functions():
    """The authors' code (`NEAT_FastNetwork.cpp`, SignedActivation): sigmoid 1 / (1 + e^-x) - 0.5 doubled, linear
    min(max(x, -3), 3) / 3; the boxes CPPN's output is that signed sigmoid, its hidden functions their four."""
    from jaxnas.spaces.neat import ACTIVATIONS

    x = np.linspace(-8.0, 8.0, 65, dtype=np.float32)
    np.testing.assert_allclose(ACTIVATIONS["signed_sigmoid"](x), (1 / (1 + np.exp(-x.astype(float))) - 0.5) * 2.0,
                               atol=1e-6)
    np.testing.assert_allclose(ACTIVATIONS["clipped_linear"](x), np.minimum(np.maximum(x, -3), 3) / 3, atol=1e-7)
    problem = make_problem("boxes")
    space = problem.space(8, 12)
    assert space.activations == hn.CPPN == ("signed_sigmoid", "sin", "gauss", "clipped_linear")
    assert space.output_activation == "signed_sigmoid"


def test_expression_threshold_and_scaling_are_the_hand_computed_weights():
    v = jnp.array([0.0, 0.1, 0.2, -0.2, 0.6, -1.0, 1.0, -0.5])
    expected = [0.0, 0.0, 0.0, 0.0, 0.4 / 0.8 * 3, -3.0, 3.0, -0.3 / 0.8 * 3]
    np.testing.assert_allclose(np.asarray(hn.express(v)), expected, rtol=1e-6, atol=1e-7)


def test_the_query_of_a_known_cppn_gives_hand_computed_substrate_weights():
    # no hidden node: v = tanh(x1 - x2 + 0.1), on a 3x3 sheet (coordinates -1, 0, 1)
    g = make_genome(CPPN_SPACE, [], {4: 0.1}, [(0, 4, 1.0, True), (2, 4, -1.0, True)], {4: TANH})
    sub = hn.Substrate.sheets(3)
    w = np.asarray(hn.substrate_weights(CPPN_SPACE, g, sub))
    coords = [(x, y) for y in (-1.0, 0.0, 1.0) for x in (-1.0, 0.0, 1.0)]  # row-major, y the row
    for i, (x1, y1) in enumerate(coords):
        for o, (x2, y2) in enumerate(coords):
            v = math.tanh(x1 - x2 + 0.1)
            want = 0.0 if abs(v) <= 0.2 else math.copysign((abs(v) - 0.2) / 0.8 * 3.0, v)
            assert w[i, o] == pytest.approx(want, abs=1e-5), (i, o)
    assert np.sum(w == 0) == 27  # wherever x1 == x2 (3 x 3 x 3 pairs): tanh(0.1) = 0.0997 is below the threshold


def test_the_boxes_trials_follow_the_papers_placement():
    images, targets = hn.boxes_trials()
    assert images.shape == (75, 121) and targets.shape == (75, 2)
    assert np.all(images.sum(1) == 10)  # a 1x1 and a 3x3 box that never overlap
    assert np.all((targets >= 1) & (targets <= 9))  # the large box fully in view
    img0 = images[0].reshape(11, 11)  # small box at (1, 1), the large five to the right: centre (6, 1)
    assert img0[1, 1] == 1 and np.all(img0[0:3, 5:8] == 1) and tuple(targets[0]) == (6, 1)
    assert tuple(targets[1]) == (1, 6) and tuple(targets[2]) == (6, 6)  # below, diagonal
    assert tuple(targets[12]) == (3, 1)  # small at (9, 1): five to the right wraps around to x = 3
    assert tuple(targets[36]) == (9, 5)  # small at (5, 5): x = 10 would leave the field, moved one cell in


def test_a_geometric_substrate_solves_every_trial_and_random_weights_do_not():
    coords = hn.grid(11)
    near = np.max(np.abs(coords[:, None, :] - coords[None, :, :]), -1) < 0.21  # 3x3 neighbourhood
    images, targets = hn.boxes_trials()
    d = hn.answer_distances(jnp.asarray(near, jnp.float32), jnp.asarray(images), jnp.asarray(targets), 11)
    assert np.all(np.asarray(d) == 0)
    rand = jax.random.normal(jax.random.key(0), (121, 121))
    assert float(jnp.mean(hn.answer_distances(rand, jnp.asarray(images), jnp.asarray(targets), 11))) > 2


def test_substrate_answers_equal_a_plain_reference_from_the_exported_cppn():
    g = make_genome(CPPN_SPACE, [5, 6], {4: 0.2, 5: -0.3, 6: 0.5},
                    [(0, 5, 2.0, True), (2, 5, -2.0, True), (1, 6, 1.5, True), (3, 6, -1.5, True),
                     (5, 4, 1.2, True), (6, 4, 0.9, True), (0, 4, 0.1, False)], {4: TANH, 5: 3, 6: 2})
    cppn = to_function(g, CPPN_SPACE)
    coords = hn.grid(11).astype(float)
    weights = np.zeros((121, 121))
    for i, (x1, y1) in enumerate(coords):
        for o, (x2, y2) in enumerate(coords):
            (v,) = cppn(x1, y1, x2, y2)
            weights[i, o] = 0.0 if abs(v) <= 0.2 else math.copysign((abs(v) - 0.2) / 0.8 * 3.0, v)
    images, targets = hn.boxes_trials()
    picks = [int(np.argmax(img @ weights)) for img in images]
    ref = [math.hypot(p % 11 - tx, p // 11 - ty) for p, (tx, ty) in zip(picks, targets)]
    ours = hn.answer_distances(hn.substrate_weights(CPPN_SPACE, g, hn.Substrate.sheets(11)), jnp.asarray(images),
                               jnp.asarray(targets), 11)
    np.testing.assert_allclose(np.asarray(ours), ref, atol=1e-5)
    fitness = float(make_problem("boxes").fitness(CPPN_SPACE, g))
    squares = [(p % 11 - tx) ** 2 + (p // 11 - ty) ** 2 for p, (tx, ty) in zip(picks, targets)]
    assert fitness == 10 + sum(max(0, 30 - d2) for d2 in squares)  # integers: exact
    assert make_problem("boxes").fitness_threshold == 10 + 0.95 * 2250  # the authors' "solved" (their trial sum)


def test_weight_tiles_put_each_input_nodes_outgoing_weights_in_its_own_tile():
    from jaxnas.problems.hyperneat_pictures import weight_tiles

    r = 3
    w = np.arange(r**4, dtype=float).reshape(r * r, r * r)  # w[i, o], i = y * r + x
    tiles = weight_tiles(w, r)
    for iy in range(r):
        for ix in range(r):
            np.testing.assert_array_equal(tiles[iy * r:(iy + 1) * r, ix * r:(ix + 1) * r],
                                          w[iy * r + ix].reshape(r, r))


def test_a_tiny_boxes_run_through_the_entry_point_reports_the_substrate(tmp_path):
    import json
    import os

    from experiments import neat as entry
    from experiments.configs import neat as neat_config

    c = neat_config.get_config("hyperneat")
    c.generations, c.chunk, c.progress, c.neat.population_size, c.max_nodes, c.max_conns = 2, 2, False, 12, 8, 12
    entry.run(c, str(tmp_path))
    res = json.load(open(tmp_path / "results.json"))
    assert res["problem"] == "boxes" and res["generations"] == 2
    assert res["settings"]["neat"]["weight_mutate_power"] == 2.5
    apart = sum(1 for lx in range(1, 10) for ly in range(1, 10) for sx in range(11) for sy in range(11)
                if max(abs(sx - lx), abs(sy - ly)) > 2)  # the small box neither on nor beside the large one
    assert 0 <= res["trials_exact"] <= 75 and res["all_placements"] == apart
    assert res["trials_mean_distance"] >= 0 and res["trials_33x33_mean_distance_cells"] >= 0
    assert all("activation" in n for n in res["winner"]["nodes"])
    for name in ("substrate_weights.png", "boxes_trials.png", "network.png", "winner.py"):
        assert os.path.getsize(tmp_path / name) > 100, name
    assert res["winner"]["activations"] == list(hn.CPPN)
    scope = {}  # the exported CPPN gives the weights the library queries from the winner's genome
    exec(open(tmp_path / "winner.py").read(), scope)
    box_space = NeatSpace(4, 1, max_nodes=8, max_conns=12, output_activation="signed_sigmoid", activations=hn.CPPN)
    winner = make_genome(box_space, [n["id"] for n in res["winner"]["nodes"] if n["id"] >= 5],
                         {n["id"]: n["bias"] for n in res["winner"]["nodes"]},
                         [(c["in"], c["out"], c["weight"], c["enabled"]) for c in res["winner"]["connections"]],
                         {n["id"]: n["activation"] for n in res["winner"]["nodes"]})
    sub = hn.Substrate(hn.grid(3), hn.grid(3))
    raw = np.asarray(hn.query(box_space, winner, sub))
    coords = hn.grid(3).astype(float)
    for i in (0, 4, 8):
        for o in (1, 5, 7):
            assert scope["network"](*coords[i], *coords[o])[0] == pytest.approx(raw[i, o], abs=1e-5)
