"""Hierarchical NAS (Liu et al., ICLR 2018; issue 23): the genotype encoding, the paper's level-wise mutation, the
initial population of mutated trivial genotypes, and the network whose every genotype equals its plain network
(outputs and gradients, both dispatch modes) written separately in `jaxnas.models.hierarchical_reference`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.common.errors import ConfigError
from jaxnas.evaluation.population import PopulationTrainer, TrainSettings
from jaxnas.models.hierarchical import Cell, HierarchicalNetwork, depthwise3x3, slot_counts
from jaxnas.models.hierarchical_reference import reference_logits
from jaxnas.spaces import SPACES, hierarchical
from jaxnas.spaces.hierarchical import edge_index, edges

pytestmark = pytest.mark.usefixtures("fast_compile")

PAPER = hierarchical.SPACE
HIER = hierarchical.settings_of(PAPER)
SMALL = hierarchical.space(motifs=2, motif_nodes=3, cell_nodes=3)
SMALL_H = hierarchical.settings_of(SMALL)
mutate = jax.jit(PAPER.mutate)


def test_encoding_follows_the_paper():
    assert HIER.primitives == ("conv1x1", "dwconv3x3", "sepconv3x3", "maxpool3x3", "avgpool3x3", "identity")
    assert (HIER.motifs, HIER.motif_nodes, HIER.cell_nodes) == (6, 4, 5)  # M2 = 6, |G(2)| = 4, |G(3)| = 5
    assert PAPER.num_positions == 6 * 6 + 10 and PAPER.counts == (7,) * 36 + (7,) * 10
    assert [edge_index(i, j) for i, j in edges(4)] == list(range(6)) and edges(3) == [(0, 1), (0, 2), (1, 2)]
    trivial = HIER.trivial()
    chain = "(0>1:identity 1>2:identity 2>3:identity)"
    cell = " cell(0>1:m1 1>2:m1 2>3:m1 3>4:m1)"
    assert PAPER.to_string(trivial) == " ".join(f"m{m}{chain}" for m in range(1, 7)) + cell
    arch = np.r_[[0, 0, 0], [1, 0, 6], [0, 0, 2]]
    assert SMALL.to_string(arch) == "m1(-) m2(0>1:conv1x1 1>2:identity) cell(1>2:m2)"
    assert SPACES.get("hierarchical") is PAPER and PAPER.factory(motifs=2, motif_nodes=3, cell_nodes=3) is SMALL


def test_every_mutation_changes_exactly_one_edge_to_another_op():
    parents = jnp.asarray(hierarchical.initial_population(jax.random.key(0), 20000, 30))
    children = np.asarray(mutate(jax.random.key(1), parents))
    parents = np.asarray(parents)
    changed = children != parents
    assert (changed.sum(1) == 1).all()
    assert np.asarray(PAPER.is_valid(children)).all()
    pos = changed.argmax(1)
    # the level (motifs or cell) is uniform, then the successor node, then the predecessor (Sec. 3.1)
    cell = pos >= HIER.cell_offset
    assert abs(cell.mean() - 0.5) < 0.02
    e = pos[cell] - HIER.cell_offset
    expected = np.array([1 / 4 / j for j in range(1, 5) for _ in range(j)])  # edge (i, j): 1/(G-1) * 1/j
    np.testing.assert_allclose(np.bincount(e, minlength=10) / cell.sum(), expected, atol=0.01)
    motif_edge = pos[~cell] % HIER.motif_edges
    np.testing.assert_allclose(np.bincount(motif_edge, minlength=6) / (~cell).sum(),
                               [1 / 3, 1 / 6, 1 / 6, 1 / 9, 1 / 9, 1 / 9], atol=0.01)
    # the new op is uniform over the other 6 of 7 (none included)
    rows = np.arange(len(pos))
    step = (children[rows, pos] - parents[rows, pos]) % 7
    np.testing.assert_allclose(np.bincount(step, minlength=7)[1:] / len(pos), 1 / 6, atol=0.01)


def test_none_removes_an_edge_and_a_later_mutation_restores_it():
    trivial = jnp.asarray(np.broadcast_to(HIER.trivial(), (4000, PAPER.num_positions)))
    children = np.asarray(mutate(jax.random.key(2), trivial))
    removed = (children == 0) & (np.asarray(trivial) != 0)
    added = (children != 0) & (np.asarray(trivial) == 0)
    assert removed.any(1).sum() > 50 and added.any(1).sum() > 1000
    # one genotype with the cell's first chain edge removed: mutations that touch that edge always restore it
    pos = HIER.cell_offset + edge_index(0, 1)
    gone = HIER.trivial().copy()
    gone[pos] = 0
    again = np.asarray(mutate(jax.random.key(3), jnp.asarray(np.broadcast_to(gone, (4000, len(gone))))))
    touched = again[:, pos] != 0
    assert 0.08 < touched.mean() < 0.17  # 1/2 x 1/4 x 1
    assert ((again != gone).sum(1) == 1).all()


def test_initial_population_is_diverse_and_reproducible(key_reuse_check):
    pop = np.asarray(jax.jit(hierarchical.initial_population, static_argnums=1)(jax.random.key(0), 200, 1000))
    assert pop.shape == (200, PAPER.num_positions) and np.asarray(PAPER.is_valid(pop)).all()
    assert len({tuple(a) for a in pop}) == 200
    assert (pop != HIER.trivial()).sum(1).min() > 10
    for p in range(PAPER.num_positions):  # every position takes most of its values across the population
        assert len(set(pop[:, p])) >= 5
    same = np.asarray(hierarchical.initial_population(jax.random.key(0), 200, 1000))
    other = np.asarray(hierarchical.initial_population(jax.random.key(1), 200, 1000))
    assert (same == pop).all() and (other != pop).any(1).mean() > 0.9
    zero = np.asarray(hierarchical.initial_population(jax.random.key(0), 3, 0, space=SMALL))
    assert (zero == SMALL_H.trivial()).all()
    sampler = hierarchical.initial_sampler(SMALL, 10)
    assert sampler(jax.random.key(0), (2, 3)).shape == (2, 3, SMALL.num_positions)


def _identity_projections(hier, params, c):
    """Each cell edge's projection set to map a chain-of-identities motif's output back to its input: the chain moves
    input slot s to the sink slot s + the offsets of the blocks it passes (the documented slot layout)."""
    counts = slot_counts(hier.cell_nodes, 1)
    for e, (i, _) in enumerate(edges(hier.cell_nodes)):
        inner = slot_counts(hier.motif_nodes, counts[i])
        proj = np.zeros(params[f"edge{e}"]["proj"].shape, np.float32)
        for s in range(counts[i]):
            at = s + sum(sum(inner[:k - 1]) for k in range(1, hier.motif_nodes))
            proj[at * c:(at + 1) * c, s * c:(s + 1) * c] = np.eye(c)
        params[f"edge{e}"]["proj"] = jnp.asarray(proj)
    return params


@pytest.mark.parametrize("space", [SMALL, PAPER], ids=["small", "paper"])
def test_trivial_genotype_decodes_to_the_identity_cell(space):
    hier, c = hierarchical.settings_of(space), 3
    x = jax.random.normal(jax.random.key(0), (2, 4, 4, c))
    cell = Cell(hier, c)
    arch = hier.trivial()
    variables = cell.init(jax.random.key(1), x, arch, True)
    params = _identity_projections(hier, jax.tree.map(lambda a: a, variables["params"]), c)
    (y, mask), _ = cell.apply({**variables, "params": params}, x, arch, True, mutable=["batch_stats"])
    filled = np.flatnonzero(np.asarray(mask))
    assert len(filled) == 1  # the chain reaches the output once, through the last block
    np.testing.assert_allclose(y[..., filled[0] * c:(filled[0] + 1) * c], x, atol=1e-6)
    assert float(jnp.abs(y).sum()) == pytest.approx(float(jnp.abs(x).sum()), rel=1e-6)


@pytest.fixture(scope="module")
def genotypes():
    """Six genotypes of the small space covering every primitive, none at both levels, and the trivial one."""
    archs = np.asarray(hierarchical.initial_population(jax.random.key(5), 5, 40, space=SMALL))
    archs = np.concatenate([SMALL_H.trivial()[None], archs])
    motif_ops = archs[:, :SMALL_H.cell_offset]
    assert set(np.unique(motif_ops)) == set(range(7)) and (archs[:, SMALL_H.cell_offset:] == 0).any()
    return archs


X = jax.random.normal(jax.random.key(1), (4, 8, 8, 2))
Y = jnp.array([0, 3, 9, 1])


def _loss(logits):
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(4), Y])


def _network(dispatch):
    return HierarchicalNetwork(SMALL_H, num_classes=10, channels=3, stages=1, dispatch=dispatch)


@pytest.fixture(scope="module")
def references(genotypes):
    """Per genotype: its initial parameters, and the plain network's logits and parameter gradients (computed once)."""
    net = _network("switch")
    init = jax.jit(lambda k, a: net.init(k, X, a, train=True))
    out = []
    for i, arch in enumerate(genotypes):
        v = init(jax.random.key(i), arch)
        plain = jax.jit(lambda p, arch=arch: reference_logits(SMALL_H, p, X, arch, 3, stages=1))
        grads = jax.jit(jax.grad(lambda p, arch=arch: _loss(reference_logits(SMALL_H, p, X, arch, 3, stages=1))))
        out.append((v, plain(v["params"]), grads(v["params"])))
    return out


@pytest.mark.parametrize("dispatch", ["switch", "select"])
def test_network_equals_the_plain_network_of_each_genotype(dispatch, genotypes, references):
    """Logits and every parameter gradient equal the reference's, built from the same parameters (one stage: stem,
    cell, the separable convolution reading the cell's variable-width output, head), with the genotype a traced
    argument of one compiled program."""
    net = _network(dispatch)

    @jax.jit
    def padded(params, stats, arch):
        def f(p):
            logits = net.apply({"params": p, "batch_stats": stats}, X, arch, train=True, mutable=["batch_stats"])[0]
            return _loss(logits), logits
        return jax.value_and_grad(f, has_aux=True)(params)

    for arch, (v, ref_logits, ref_grads) in zip(genotypes, references):
        (_, logits), grads = padded(v["params"], v["batch_stats"], arch)
        np.testing.assert_allclose(logits, ref_logits, atol=2e-5, rtol=1e-4)
        jax.tree.map_with_path(lambda path, a, b: np.testing.assert_allclose(
            a, b, atol=2e-5, rtol=1e-4, err_msg=f"{SMALL.to_string(arch)} {jax.tree_util.keystr(path)}"),
            grads, ref_grads)
    assert padded._cache_size() == 1


@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_convolution_and_its_gradients_equal_xla(stride):
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 5))
    k = jax.random.normal(jax.random.key(1), (3, 3, 5))
    w = jax.random.normal(jax.random.key(2), (2, 8 // stride, 8 // stride, 5))
    xla = lambda x, k: jax.lax.conv_general_dilated(x, k[:, :, None, :], (stride, stride), ((1, 1), (1, 1)),
                                                    dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=5)
    np.testing.assert_allclose(depthwise3x3(x, k, stride), xla(x, k), atol=1e-5)
    ours = jax.grad(lambda x, k: jnp.sum(w * depthwise3x3(x, k, stride)), argnums=(0, 1))(x, k)
    theirs = jax.grad(lambda x, k: jnp.sum(w * xla(x, k)), argnums=(0, 1))(x, k)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_map_and_vmap_train_the_same_genotypes(digits_8x8):
    sp = hierarchical.space(motifs=2, motif_nodes=2, cell_nodes=3)
    archs = np.asarray(hierarchical.initial_population(jax.random.key(3), 4, 20, space=sp))
    net = sp.network(num_classes=digits_8x8.num_classes, channels=3, stages=1)
    st = TrainSettings(steps=3, batch_size=16, learning_rate=0.05)
    a = PopulationTrainer(net, digits_8x8, st, chunk_size=8, execution="map").score(archs)
    b = PopulationTrainer(net, digits_8x8, st, chunk_size=8, execution="vmap").score(archs)
    assert np.isfinite(a.train_loss).all()
    np.testing.assert_allclose(a.train_loss, b.train_loss, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(a.valid_acc, b.valid_acc, atol=0.003)  # one image of 359


def test_bad_settings_name_the_field():
    cases = [(dict(motifs=0), "motifs"), (dict(motif_nodes=1), "motif_nodes"), (dict(cell_nodes=True), "cell_nodes"),
             (dict(primitives=("conv1x1", "dense")), "primitives"), (dict(primitives=("conv1x1",)), "primitives"),
             (dict(primitives="identity"), "primitives")]
    for kwargs, field in cases:
        with pytest.raises(ConfigError, match=f"^{field}: got .*; allowed: ") as err:
            hierarchical.space(**kwargs)
        assert err.value.field == field and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="^channels: got 0; allowed: "):
        PAPER.network(channels=0)
    with pytest.raises(ConfigError, match="^motif_nodes, cell_nodes: got 6 and 6"):
        hierarchical.space(motif_nodes=6, cell_nodes=6).network()
    net = SMALL.network(channels=2, stages=3)
    with pytest.raises(ConfigError, match="^image_size: .*divisible by 4"):
        net.init(jax.random.key(0), jnp.zeros((1, 6, 6, 1)), SMALL_H.trivial())
