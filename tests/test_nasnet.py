"""The NASNet / AmoebaNet space, its mutation and its network (issue 23): every mutation does what the paper says
and nothing else, at the published frequencies; the fixed-shape network (masked concatenation, dispatched inputs and
ops, stacked parameters) equals a separately written plain network of the same architecture with the real
variable-width concatenation, in outputs and every parameter gradient, in both dispatch modes; map and vmap
populations train alike."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.common.errors import ConfigError
from jaxnas.evaluation.population import PopulationTrainer, TrainSettings
from jaxnas.models.nasnet import network
from jaxnas.models.nasnet_reference import reference_logits
from jaxnas.spaces import SPACES, nasnet

pytestmark = pytest.mark.usefixtures("fast_compile")  # exact checks and tiny runs: compile-bound (conftest)

SMALL = nasnet.space(B=3)  # every op, three combinations: inputs of combination 2 range over 0..3
CELLS = nasnet.cells_of(SMALL)
N_OPS = len(nasnet.OPS)


def _decode(position: int, B: int) -> tuple[int, int, int, int]:
    """(cell, combination, element, 0 input / 1 op) of a position."""
    rest, what = divmod(position, 2)
    rest, elem = divmod(rest, 2)
    cell, comb = divmod(rest, B)
    return cell, comb, elem, what


def test_layout_registry_and_printing():
    assert SPACES.get("nasnet") is nasnet.SPACE and SMALL.factory(image_size=16) is nasnet.SPACE
    assert nasnet.space(B=3) is SMALL and SMALL.num_positions == 24
    for p, count in enumerate(SMALL.counts):
        cell, comb, elem, what = _decode(p, 3)
        assert count == (2 + comb if what == 0 else N_OPS)
        assert CELLS.position(cell, comb, elem, what) == p
    # AmoebaNet-A (tensorflow/tpu model_specs) in the default space: its wiring and this space's output rule
    text = nasnet.SPACE.to_string(nasnet.AMOEBANET_A)
    assert text.startswith("normal: 2=avg_pool_3x3(0)+max_pool_3x3(0) 3=sep_conv_3x3(1)+identity(1) ")
    assert "6=avg_pool_3x3(5)+sep_conv_3x3(0) out=concat(3,4,6) | reduction:" in text
    assert text.endswith("6=avg_pool_3x3(1)+sep_conv_7x7(0) out=concat(3,5,6)")
    drawn = np.asarray(SMALL.sample(jax.random.key(0), (4000,)))
    assert bool(SMALL.is_valid(jnp.asarray(drawn)).all())
    for p, count in enumerate(SMALL.counts):  # every option of every position is drawn, about uniformly
        freq = np.bincount(drawn[:, p], minlength=count) / len(drawn)
        assert len(freq) == count and np.abs(freq - 1 / count).max() < 0.04


def test_unused_states_hand_case():
    # normal: 2 = f(0) + f(1); 3 = f(2) + f(2); 4 = f(0) + f(1) -> 2 is read, 3 and 4 are not
    # reduction: 2 = f(1) + f(0); 3 = f(0) + f(1); 4 = f(3) + f(2) -> 2, 3 read; only 4 is the output
    normal = [(0, "identity", 1, "max_pool_3x3"), (2, "sep_conv_3x3", 2, "avg_pool_3x3"),
              (0, "conv_1x7_7x1", 1, "dil_sep_conv_3x3")]
    reduction = [(1, "sep_conv_5x5", 0, "sep_conv_7x7"), (0, "identity", 1, "identity"),
                 (3, "max_pool_3x3", 2, "avg_pool_3x3")]
    arch = nasnet.encode_genotype(CELLS, normal, reduction)
    np.testing.assert_array_equal(nasnet.unused(arch, 3), [[False, True, True], [False, False, True]])
    np.testing.assert_array_equal(nasnet.unused(jnp.asarray(arch), 3), nasnet.unused(arch, 3))
    assert SMALL.to_string(arch) == (
        "normal: 2=identity(0)+max_pool_3x3(1) 3=sep_conv_3x3(2)+avg_pool_3x3(2) "
        "4=conv_1x7_7x1(0)+dil_sep_conv_3x3(1) out=concat(3,4) | "
        "reduction: 2=sep_conv_5x5(1)+sep_conv_7x7(0) 3=identity(0)+identity(1) "
        "4=max_pool_3x3(3)+avg_pool_3x3(2) out=concat(4)")
    with pytest.raises(ConfigError, match="genotype"):
        nasnet.encode_genotype(CELLS, [(2, "identity", 0, "identity")] + normal[1:], reduction)  # a loop


def test_mutation_changes_exactly_what_it_claims_at_the_published_rates():
    n = 40000
    parents = np.asarray(SMALL.sample(jax.random.key(1), (n,)))
    mutate = jax.jit(SMALL.mutate)
    children = np.asarray(mutate(jax.random.key(2), jnp.asarray(parents)))
    assert bool(SMALL.is_valid(jnp.asarray(children)).all())
    changed = children != parents
    assert changed.sum(-1).max() == 1  # a mutation touches one position at most
    hit = changed.any(-1)
    rows = np.flatnonzero(hit)
    pos = np.argmax(changed[rows], -1)
    cell, comb, elem, what = (np.array(v) for v in zip(*(_decode(int(p), 3) for p in pos)))
    old, new = parents[rows, pos], children[rows, pos]
    assert (new != old).all()
    hidden = what == 0
    assert ((new >= 0) & (new < 2 + comb))[hidden].all()  # another state of the cell made before the combination
    assert ((new >= 0) & (new < N_OPS))[~hidden].all()
    # AmoebaNet: identity with probability 0.05 (Methods Details), the other two "uniform"; 3-sigma bounds
    assert abs(1 - hit.mean() - 0.05) < 3 * np.sqrt(0.05 * 0.95 / n)
    for count in (hidden.sum(), (~hidden).sum()):
        assert abs(count / n - 0.475) < 3 * np.sqrt(0.475 * 0.525 / n)
    for values, k in ((cell, 2), (elem, 2), (comb, 3)):  # cell, combination and element uniform
        assert np.abs(np.bincount(values, minlength=k) / len(rows) - 1 / k).max() < 0.02
    # the new op is uniform among the 7 others: from op 0 every other op appears about equally often
    from_zero = new[~hidden & (old == 0)]
    freq = np.bincount(from_zero, minlength=N_OPS)[1:] / len(from_zero)
    assert np.abs(freq - 1 / 7).max() < 0.04
    # a new input is uniform among the others: combination 2 from input 0 goes to 1, 2, 3 about equally often
    moved = new[hidden & (comb == 2) & (old == 0)]
    assert np.abs(np.bincount(moved, minlength=4)[1:] / len(moved) - 1 / 3).max() < 0.05
    # identity only: nothing changes; never identity: every child differs; leading batch axes; determinism
    always = nasnet.space(B=3, identity_prob=1.0)
    never = nasnet.space(B=3, identity_prob=0.0)
    np.testing.assert_array_equal(always.mutate(jax.random.key(3), parents[:500]), parents[:500])
    assert (np.asarray(never.mutate(jax.random.key(3), parents[:2000])) != parents[:2000]).any(-1).all()
    batched = np.asarray(mutate(jax.random.key(4), jnp.asarray(parents[:60].reshape(3, 20, -1))))
    assert batched.shape == (3, 20, 24) and (batched != parents[:60].reshape(3, 20, -1)).sum(-1).max() == 1
    np.testing.assert_array_equal(mutate(jax.random.key(2), jnp.asarray(parents)), children)
    assert (np.asarray(mutate(jax.random.key(5), jnp.asarray(parents))) != children).any()


def test_bad_settings_name_the_field():
    with pytest.raises(ConfigError, match=r"^B: got 0; allowed: an integer >= 1$"):
        nasnet.space(B=0)
    with pytest.raises(ConfigError, match="^B: "):
        nasnet.space(B="5")
    with pytest.raises(ConfigError, match=r"^ops: got \('identity', 'conv_3x3'\); allowed: "):
        nasnet.space(ops=("identity", "conv_3x3"))
    with pytest.raises(ConfigError, match="^ops: "):
        nasnet.space(ops=("identity",))  # an op mutation needs another op
    with pytest.raises(ConfigError, match="^identity_prob: "):
        nasnet.space(identity_prob=1.5)
    for option, value in [("channels", 0), ("cells_per_stage", 1.5), ("image_size", 6), ("dispatch", "gather"),
                          ("width", 8)]:
        with pytest.raises(ConfigError, match=f"^{option}: "):
            SMALL.network(num_classes=10, **{option: value})
    net = SMALL.network(num_classes=10, channels=4, image_size=8)
    with pytest.raises(ConfigError, match="^image_size: "):
        net.init(jax.random.key(0), jnp.zeros((1, 12, 12, 1)), np.zeros(24, np.int32))
    with pytest.raises(ConfigError, match="^arch: "):
        net.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)), np.zeros(40, np.int32))


X = jax.random.normal(jax.random.key(11), (4, 8, 8, 2))
Y = jnp.array([0, 3, 1, 4])
SIZE = {"channels": 4, "cells_per_stage": 1, "stages": 2}  # normal, reduction, normal: every mechanism, 3 cells


def _loss(logits):
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(4), Y])


def every_op_archs() -> np.ndarray:
    """Three hand-made architectures that together use every op in each cell, and in the reduction cell every op at
    stride 2 (reading a cell input) and at stride 1 (reading a combination); then one drawn at random."""
    o = nasnet.OPS
    hand = [nasnet.encode_genotype(CELLS, normal, reduction) for normal, reduction in [
        ([(0, o[0], 1, o[1]), (2, o[2], 0, o[3]), (1, o[4], 3, o[5])],
         [(0, o[0], 1, o[1]), (2, o[2], 0, o[3]), (3, o[4], 2, o[5])]),
        ([(1, o[6], 0, o[7]), (0, o[3], 2, o[1]), (2, o[0], 2, o[5])],
         [(1, o[2], 0, o[4]), (2, o[6], 2, o[7]), (0, o[5], 1, o[6])]),
        ([(1, o[5], 1, o[2]), (0, o[7], 2, o[6]), (3, o[4], 0, o[0])],
         [(0, o[7], 1, o[3]), (2, o[0], 1, o[2]), (2, o[1], 3, o[3])])]]
    genes = nasnet.as_cells(np.stack(hand), 3)  # (A, 2, B, 2, 2)
    for stride_two in (True, False):  # every op read at both strides in the reduction cell
        assert set(genes[:, 1][(genes[:, 1, :, :, 0] < 2) == stride_two][:, 1]) == set(range(len(nasnet.OPS)))
    return np.stack(hand + [np.asarray(SMALL.sample(jax.random.key(8), ()))])


@pytest.fixture(scope="module")
def setup():
    """Variables shared by both dispatch modes (with running statistics moved off their initial values, so
    evaluation mode is checked too), and a few architectures that together use every op in both cells."""
    archs = every_op_archs()
    net = network(CELLS, num_classes=5, **SIZE)
    init = jax.jit(lambda a: net.init(jax.random.key(0), X, a, train=True))
    variables = init(archs[0])
    other = init(archs[1])  # parameters do not depend on the architecture the network is initialised with
    jax.tree.map(np.testing.assert_array_equal, variables, other)
    noise = jax.random.uniform(jax.random.key(3), (), minval=0.5, maxval=1.5)
    variables = {"params": variables["params"],
                 "batch_stats": jax.tree.map(lambda a: a * noise + 0.1, variables["batch_stats"])}
    genes = nasnet.as_cells(archs[:3], 3)  # (A, 2, B, 2, 2)
    for cell in range(2):
        assert set(genes[:, cell, :, :, 1].ravel()) == set(range(N_OPS))
    for stride_two in (True, False):
        assert set(genes[:, 1][(genes[:, 1, :, :, 0] < 2) == stride_two][:, 1]) == set(range(N_OPS))
    refs = []
    for a in archs:
        def plain(v, a=a, train=True):
            return reference_logits(CELLS, v, X, a, **SIZE, train=train)
        grads = jax.grad(lambda p: _loss(plain({**variables, "params": p})))(variables["params"])
        refs.append((plain(variables), plain(variables, train=False), grads))
    return archs, variables, refs


@pytest.mark.parametrize("dispatch", ["switch", "select"])
def test_network_equals_the_plain_network_of_the_architecture(setup, dispatch):
    archs, variables, refs = setup
    net = network(CELLS, num_classes=5, dispatch=dispatch, **SIZE)

    def run(v, a):
        def loss(p):
            logits, updates = net.apply({**v, "params": p}, X, a, train=True, mutable=["batch_stats"])
            return _loss(logits), (logits, updates["batch_stats"])
        (_, (logits, stats)), grads = jax.value_and_grad(loss, has_aux=True)(v["params"])
        return logits, net.apply(v, X, a, train=False), grads, stats

    run = jax.jit(run)
    for a, (train_ref, eval_ref, grad_ref) in zip(archs, refs):
        logits, eval_logits, grads, stats = run(variables, jnp.asarray(a))
        np.testing.assert_allclose(logits, train_ref, atol=3e-5, rtol=1e-4)
        np.testing.assert_allclose(eval_logits, eval_ref, atol=3e-5, rtol=1e-4)
        flat_ref = dict(jax.tree_util.tree_flatten_with_path(grad_ref)[0])
        for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]:
            np.testing.assert_allclose(g, flat_ref[path], atol=3e-5, rtol=1e-3,
                                       err_msg=f"{SMALL.to_string(a)} {jax.tree_util.keystr(path)}")
        # running statistics move only for the op each element chose (its row of the stacked statistics), and not
        # for an identity that reads a combination (only the strided identity has a BatchNorm)
        genes = nasnet.as_cells(a, 3)
        for i, (reduction, _) in enumerate(net.layout()):
            old, new = variables["batch_stats"][f"cell{i}"]["ops"], stats[f"cell{i}"]["ops"]
            for name in old:
                for el in range(6):
                    inp, op = genes[int(reduction), el // 2, el % 2]
                    moved = CELLS.ops[op] == name and (name != "identity" or inp < 2)
                    same = jax.tree.map(lambda o, n: bool(jnp.all(o[el] == n[el])), old[name], new[name])
                    assert all(jax.tree.leaves(same)) != moved, (i, name, el)
    # the concrete path (a numpy architecture: the plain network traced directly) agrees as well
    concrete = net.apply(variables, X, archs[0], train=False)
    np.testing.assert_allclose(concrete, refs[0][1], atol=3e-5, rtol=1e-4)


def test_map_and_vmap_train_the_same_candidates(digits_8x8):
    """A few SGD steps of two candidates through the engine, one after another (switch) and vmapped (select)."""
    space = nasnet.space(B=2, ops=("identity", "avg_pool_3x3"))  # a small program (the ops are checked above)
    archs = np.asarray(space.sample(jax.random.key(21), (2,)))
    net = space.network(num_classes=digits_8x8.num_classes, **SIZE)
    st = TrainSettings(steps=3, batch_size=16, learning_rate=0.05)
    one = jax.local_devices()[:1]
    a = PopulationTrainer(net, digits_8x8, st, chunk_size=2, devices=one, execution="map").score(archs)
    b = PopulationTrainer(net, digits_8x8, st, chunk_size=2, devices=one, execution="vmap").score(archs)
    assert np.isfinite(a.train_loss).all() and not a.diverged.any()
    np.testing.assert_allclose(a.train_loss, b.train_loss, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(a.valid_loss, b.valid_loss, rtol=2e-4, atol=2e-5)
    assert not np.allclose(a.train_loss[0], a.train_loss[1])  # two different networks
