"""MetaQNN's layer-by-layer CNN space (Baker, Gupta, Naik & Raskar, "Designing Neural Network Architectures using
Reinforcement Learning", ICLR 2017, Sec. 4.1-4.2 and Appendix B; published code: bowenbaker/metaqnn,
`libs/grammar/state_enumerator.py`, `models/*/state_space_parameters.py`).

A network is a chain of at most `layer_limit` layers followed by a softmax classifier. An architecture is an
int32 array of `layer_limit + 1` layer ids, first layer first: the chain ends at the first `END` (0), and every
position after it is `END` too (padding), so architectures of different depths stack and vmap. The last position
may only be `END` (a chain of `layer_limit` layers then terminates). Layer ids:

* 0 `END`: terminate; a fully connected softmax layer reads whatever the chain produced (Caffe `SM`);
* convolution `C(filters, k, 1)`: SAME padding, stride 1, ReLU, for every filter count x receptive field;
* max pooling `P(size, stride)` for each (size, stride) pair, VALID: the size becomes floor((n - size) / stride) + 1;
* fully connected `FC(width)` with ReLU;
* `GAP`: a 1x1 convolution to the number of classes, ReLU, global average pooling (the published code's layer).

Transition rules (the published `enumerate_state`): `END` is always allowed; nothing but `END` after `END`, after
`GAP` or at the last position; convolution, `GAP` and (where allowed) fully connected layers follow the start, a
convolution or a pooling layer; pooling follows only a convolution (no pooling first or after pooling); a
convolution's receptive field and a pooling size are strictly smaller than the current representation size n;
a fully connected layer follows a convolution, a pooling layer or the start only when n <= `fc_max_size` (4),
and another fully connected layer only up to `max_fc` (2) in a row, with widths non-increasing.

The agent's state (`agent_states`) is the published one: (depth, the previous layer -- type and parameters, the
start at depth 0 --, the representation-size bin of n: (inf, 8], (7, 4], (3, 1] pixels as in the code's
`image_size_bucket`, and the number of fully connected layers in a row). Sampling, mutation and the Q-learning
agent act only through these rules, so every architecture they produce is valid by construction.

Scaled for small images (documented defaults; every one is a setting of `space()`): filters 8, 16, 32, 64 (the
paper's 64-512 divided by 8), receptive fields 1, 3, 5 and pools (5,3), (3,2), (2,2) as published, fully
connected widths 128, 64, 32 (512-128 divided by 4), at most 8 layers (12 for MNIST and 18 for CIFAR-10 in the
code: our images are 8x8-16x16). The pixel thresholds (bins, fully connected at n <= 4) are the published ones.
Deviations: the published networks add dropout every two layers and after each fully connected layer and Caffe's
pooling rounds sizes up; our networks have no dropout (short schedules on small data) and pooling follows the
state's own VALID size formula, which the published enumerator also assumes.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.common.errors import check, check_positive
from jaxnas.spaces.base import AgentStates, CategoricalSpace

END = 0
KINDS = ("end", "conv", "pool", "fc", "gap")
LAYER_TYPES = KINDS[1:]
BINS = 3  # representation-size bins (inf, 8], (7, 4], (3, 1]


@dataclasses.dataclass(frozen=True)
class Layers:
    """The layer vocabulary of one MetaQNN space: what each id means, as static numpy tables."""

    image_size: int = 16
    layer_limit: int = 8
    conv_filters: tuple[int, ...] = (8, 16, 32, 64)
    conv_sizes: tuple[int, ...] = (1, 3, 5)
    pools: tuple[tuple[int, int], ...] = ((5, 3), (3, 2), (2, 2))
    fc_widths: tuple[int, ...] = (128, 64, 32)
    max_fc: int = 2
    fc_max_size: int = 4
    layer_types: tuple[str, ...] = ("conv", "pool", "fc", "gap")  # the kinds offered (END is always there)

    def __post_init__(self):
        check(len(self.layer_types) >= 1 and all(t in LAYER_TYPES for t in self.layer_types)
              and len(set(self.layer_types)) == len(self.layer_types), "layer_types",
              f"got {self.layer_types!r}; allowed: distinct names among {', '.join(LAYER_TYPES)}")
        check_positive("image_size", self.image_size, integer=True)
        check(isinstance(self.layer_limit, int) and self.layer_limit >= 1, "layer_limit",
              f"got {self.layer_limit!r}; allowed: an integer >= 1")
        for field in ("conv_filters", "conv_sizes", "fc_widths"):
            values = getattr(self, field)
            check(len(values) >= 1 and all(isinstance(v, int) and v >= 1 for v in values), field,
                  f"got {values!r}; allowed: one or more integers >= 1")
        check(all(k % 2 == 1 for k in self.conv_sizes), "conv_sizes",
              f"got {self.conv_sizes!r}; allowed: odd receptive fields (SAME padding)")
        check(all(len(p) == 2 and 1 <= p[1] <= p[0] for p in self.pools), "pools",
              f"got {self.pools!r}; allowed: (size, stride) pairs with 1 <= stride <= size")
        check(isinstance(self.max_fc, int) and self.max_fc >= 0, "max_fc", f"got {self.max_fc!r}; allowed: an integer >= 0")

    @functools.cached_property
    def table(self) -> list[tuple[str, tuple[int, ...]]]:
        """(kind, parameters) of every id: END, the convolutions, the pools, the fully connected layers, GAP."""
        rows: list[tuple[str, tuple[int, ...]]] = [("end", ())]
        offered = {"conv": [(f, k) for f in self.conv_filters for k in self.conv_sizes], "pool": [tuple(p) for p in self.pools],
                   "fc": [(w,) for w in self.fc_widths], "gap": [()]}
        for kind in LAYER_TYPES:
            if kind in self.layer_types:
                rows += [(kind, params) for params in offered[kind]]
        return rows

    @property
    def num_choices(self) -> int:
        return len(self.table)

    def column(self, fn) -> np.ndarray:
        return np.array([fn(kind, params) for kind, params in self.table], np.int32)

    @functools.cached_property
    def kind(self) -> np.ndarray:
        return self.column(lambda k, p: KINDS.index(k))

    @functools.cached_property
    def size(self) -> np.ndarray:
        """Receptive field of a convolution, window of a pooling layer (0 otherwise)."""
        return self.column(lambda k, p: p[1] if k == "conv" else p[0] if k == "pool" else 0)

    @functools.cached_property
    def stride(self) -> np.ndarray:
        return self.column(lambda k, p: p[1] if k == "pool" else 1)

    @functools.cached_property
    def width(self) -> np.ndarray:
        """Output channels of a convolution, units of a fully connected layer (0 otherwise)."""
        return self.column(lambda k, p: p[0] if k in ("conv", "fc") else 0)

    def name(self, layer_id: int) -> str:
        kind, p = self.table[int(layer_id)]
        return {"end": "SM", "conv": "C({},{},1)", "pool": "P({},{})", "fc": "FC({})", "gap": "GAP"}[kind].format(*p)


@dataclasses.dataclass
class Walk:
    """What the rules need to know about a prefix (every field (...) int32 or bool)."""

    n: jax.Array  # representation size (pixels); 0 after a fully connected layer
    prev: jax.Array  # previous layer id; -1 at the start
    fc_run: jax.Array  # fully connected layers in a row ending at the previous layer
    ended: jax.Array  # an END or a GAP came before


def walk(layers: Layers, arch: jax.Array, position: int) -> Walk:
    """Folds `arch[..., :position]` into the state the rules and the agent read."""
    arch = jnp.asarray(arch, jnp.int32)
    batch = arch.shape[:-1]
    kind, size, stride = (jnp.asarray(a) for a in (layers.kind, layers.size, layers.stride))
    w = Walk(n=jnp.full(batch, layers.image_size, jnp.int32), prev=jnp.full(batch, -1, jnp.int32),
             fc_run=jnp.zeros(batch, jnp.int32), ended=jnp.zeros(batch, bool))
    for p in range(position):
        a = arch[..., p]
        k = kind[a]
        pooled = (w.n - size[a]) // stride[a] + 1
        n = jnp.where(k == KINDS.index("pool"), pooled, w.n)
        n = jnp.where(k == KINDS.index("fc"), 0, jnp.where(k == KINDS.index("gap"), 1, n))
        is_fc = k == KINDS.index("fc")
        w = Walk(n=jnp.where(w.ended, w.n, n), prev=jnp.where(w.ended, w.prev, a),
                 fc_run=jnp.where(w.ended, w.fc_run, jnp.where(is_fc, w.fc_run + 1, 0)),
                 ended=w.ended | (k == KINDS.index("end")) | (k == KINDS.index("gap")))
    return w


def allowed(layers: Layers, arch: jax.Array, position: int) -> jax.Array:
    """(..., num_choices) bool: the ids allowed at `position` given `arch[..., :position]`."""
    w = walk(layers, arch, position)
    kind, size, width = (jnp.asarray(a) for a in (layers.kind, layers.size, layers.width))
    prev_kind = jnp.where(w.prev < 0, -1, kind[jnp.maximum(w.prev, 0)])[..., None]  # -1: the start
    prev_width = jnp.where(w.prev < 0, 0, width[jnp.maximum(w.prev, 0)])[..., None]
    n = w.n[..., None]
    spatial_prev = (prev_kind == -1) | (prev_kind == KINDS.index("conv")) | (prev_kind == KINDS.index("pool"))
    conv = (kind == KINDS.index("conv")) & spatial_prev & (size < n)
    pool = (kind == KINDS.index("pool")) & (prev_kind == KINDS.index("conv")) & (size < n)
    fc_first = spatial_prev & (n <= layers.fc_max_size) & (layers.max_fc >= 1)
    fc_more = (prev_kind == KINDS.index("fc")) & (w.fc_run[..., None] < layers.max_fc) & (width <= prev_width)
    fc = (kind == KINDS.index("fc")) & (fc_first | fc_more)
    gap = (kind == KINDS.index("gap")) & spatial_prev
    layer_ok = (conv | pool | fc | gap) & ~w.ended[..., None] & (position < layers.layer_limit)
    return layer_ok | (jnp.arange(layers.num_choices) == END)


def size_bin(n: jax.Array) -> jax.Array:
    """The published `image_size_bucket`: n > 7 -> bin 0 (8), n > 3 -> 1 (4), else 2 (1)."""
    return jnp.where(n > 7, 0, jnp.where(n > 3, 1, 2)).astype(jnp.int32)


def agent_states(layers: Layers) -> AgentStates:
    """The published Q-learning state: (depth, previous layer or start, size bin, fully connected run)."""
    c = layers.num_choices
    runs = max(layers.max_fc, 1)

    def index(arch: jax.Array, position: int) -> jax.Array:
        w = walk(layers, arch, position)
        prev = jnp.where(w.prev < 0, c, w.prev)  # id c: the start state
        run = jnp.clip(w.fc_run - 1, 0, runs - 1)
        return (((position * (c + 1) + prev) * BINS + size_bin(w.n)) * runs + run).astype(jnp.int32)

    def decisions(arch: jax.Array) -> jax.Array:
        arch = jnp.asarray(arch, jnp.int32)
        return (jnp.argmax(arch == END, axis=-1) + 1).astype(jnp.int32)  # the last position is always END

    return AgentStates(num_states=(layers.layer_limit + 1) * (c + 1) * BINS * runs, index=index, decisions=decisions)


def depth(arch: Any) -> int:
    """Layers before the softmax."""
    ids = np.asarray(arch).reshape(-1)
    return int(np.argmax(ids == END))


def describe(layers: Layers, arch: Any) -> str:
    """The published string form: `[C(32,3,1), P(2,2), FC(64), SM]`."""
    ids = np.asarray(arch).reshape(-1)
    return "[" + ", ".join(layers.name(i) for i in ids[:depth(ids) + 1]) + "]"


def network(layers: Layers, num_classes: int = 10, **options: Any) -> Any:
    """The padded chain network of this space (`jaxnas.models.chain.ChainNetwork`)."""
    from jaxnas.models.chain import ChainNetwork  # the network imports this module: import late

    return ChainNetwork(layers=layers, num_classes=num_classes, **options)


@functools.lru_cache(maxsize=64)
def _space(layers: Layers) -> CategoricalSpace:
    return CategoricalSpace(
        name="metaqnn", num_positions=layers.layer_limit + 1, num_choices=layers.num_choices,
        rule=functools.partial(allowed, layers), printer=functools.partial(describe, layers),
        network=functools.partial(network, layers), agent_states=agent_states(layers),
        factory=space)


def space(image_size: int = 16, layer_limit: int = 8, conv_filters: Sequence[int] = (8, 16, 32, 64),
          conv_sizes: Sequence[int] = (1, 3, 5), pools: Sequence[Sequence[int]] = ((5, 3), (3, 2), (2, 2)),
          fc_widths: Sequence[int] = (128, 64, 32), max_fc: int = 2, fc_max_size: int = 4,
          layer_types: Sequence[str] = ("conv", "pool", "fc", "gap")) -> CategoricalSpace:
    """The MetaQNN space for `image_size` x `image_size` inputs (the same settings give the same object)."""
    layers = Layers(image_size, layer_limit, tuple(conv_filters), tuple(conv_sizes),
                    tuple(tuple(p) for p in pools), tuple(fc_widths), max_fc, fc_max_size, tuple(layer_types))
    return _space(layers)


def layers_of(s: CategoricalSpace) -> Layers:
    """The `Layers` a MetaQNN space was built from."""
    return s.rule.args[0]


SPACE = space()
