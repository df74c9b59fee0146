"""The NASNet / AmoebaNet evaluation network, built from an architecture array so that one compiled program trains
every architecture of `jaxnas.spaces.nasnet` and a population stacks and vmaps.

Real, Aggarwal, Huang & Le, "Regularized Evolution for Image Classifier Architecture Search" (AAAI 2019), Fig. 1 and
Methods Details, on the NASNet CIFAR layout (Zoph, Vasudevan, Shlens & Le, CVPR 2018, Fig. 2): a stem, then three
stacks of N normal cells with a reduction cell between stacks; F filters in the first stack, doubled at each
reduction cell ("F always refers to the number of filters of convolutions in the first stack; after each reduction
cell, this number is doubled"); ReLU, global average pooling and a linear classifier. The stem is NASNet's CIFAR
stem, a 3x3 convolution to `stem_multiplier` * F = 3F channels and BN (tensorflow/models slim `nasnet.py`,
`cifar_config`: stem_multiplier=3.0). The first cell reads the stem output twice
("the very first cell takes two copies"), every later cell the outputs of the two cells before it. A cell brings
each input to F channels at its own size (ReLU-conv1x1-BN, or NASNet's factorized reduction for the skip input
right after a reduction cell), runs its B combinations (ops in `jaxnas.models.nasnet_ops`; a reduction cell applies
stride 2 to the ops that read its inputs 0 and 1, NASNet Sec. 3) and concatenates its unused combinations.

Fixed shapes: a cell's output always has B * F channels, the concatenation of every combination times a 0/1 mask of
the unused ones (`jaxnas.spaces.nasnet.unused`). Everything that reads a cell output is linear in it after a ReLU
(the next cells' 1x1 / factorized-reduction projections, the classifier after average pooling), and ReLU(0) = 0,
so the masked blocks contribute exactly nothing: the network equals the plain network with the variable-width
concatenation of the unused states whose projections use the rows of the unused blocks
(`jaxnas.models.nasnet_reference`, checked in tests/test_nasnet.py for outputs and every parameter gradient).
Every slot (cell, combination, element) owns the parameters of every op, so all architectures share one
parameter shape.

Dispatch: each element reads its input hidden state by index from a buffer of the cell's states, then runs its op.
``"switch"`` runs only the chosen op (the engine's `lax.map` on a CPU) through `dispatch.choose_recomputed`, a
`lax.switch` whose gradient runs only the chosen op's VJP (autodiff of a plain switch moves every op's residuals: an
identity-only architecture trained at 213 ms per step instead of 32 ms, 2-core CPU, F=8, 16x16, batch 32);
``"select"`` computes every op and keeps one with a one-hot (`jaxnas.models.dispatch.choose`, vmapped populations). The four separable convolutions share one dispatch branch
(one tap loop whose kernel size and dilation are read from the op id). A concrete (numpy) architecture calls each
chosen op directly: the plain network of that one architecture (and what `init` traces: the parameters do not
depend on the architecture, so initialisation never compiles the dispatch).

Defaults: F = 8, N = 1, the paper's small-compute scale ("on CPU, F=8, N=1", Discussion) for 8x8 - 16x16 inputs
on the 2-core CPU; `GPU_OPTIONS` is the paper's search-phase size (N = 3, F = 24). `stages` (default 3, NASNet's
CIFAR layout) sets the number of stacks; inputs need sizes divisible by 2**(stages - 1). Deviations: no auxiliary head,
no dropout or ScheduledDropPath (short searches; the paper's search phase trained 25 epochs, the final models used
both); the skip input always gets its 1x1 projection (the published code skips it when the widths already match,
which the fixed width B * F never does); the op-level deviations are listed in `jaxnas.models.nasnet_ops`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.common.errors import check, check_choice
from jaxnas.models import nasnet_ops as ops
from jaxnas.models.dispatch import DISPATCH_MODES, choose_recomputed
from jaxnas.models.layers import BatchNorm, Conv
from jaxnas.spaces.nasnet import Cells, as_cells, output_mask

CPU_OPTIONS = {"channels": 8, "cells_per_stage": 1}  # the paper's CPU scale (Discussion: "F=8, N=1")
GPU_OPTIONS = {"channels": 24, "cells_per_stage": 3}  # the paper's search phase (Methods Details: "N=3/F=24")
STAGES = 3  # NASNet's CIFAR layout: three stacks of N normal cells, two reduction cells


def _is_concrete(a: Any) -> bool:
    return isinstance(a, (int, np.integer, np.ndarray, list, tuple))


def _store(var: Any, value: Any, module: nn.Module) -> None:
    """Writes new BatchNorm statistics (not while initialising, and only when they are mutable)."""
    if module.is_mutable_collection("batch_stats") and not module.is_initializing():
        var.value = value


def _row(tree: Any, i: Any) -> Any:
    return jax.tree.map(lambda a: a[i], tree)


class Cell(nn.Module):
    """A normal or reduction cell with F = `filters`: (previous output, the one before, the cell's (B, 2, 2) ids,
    its (B,) unused mask) -> (batch, H', W', B * F), the masked concatenation of its combinations.

    Its 2B elements (combination b, element e: element 2b + e) own every op's parameters, stacked along a leading
    axis of length 2B. A concrete architecture runs them in a Python loop, calling each chosen op directly; a traced
    one runs them in a `lax.scan` over the elements (one compiled element body per cell, whatever B) that keeps the
    hidden states in a buffer, reads each element's input by index and adds its op's output into its combination."""

    ops: tuple[str, ...]
    reduction: bool
    filters: int
    num_combinations: int
    dispatch: str

    def _pre(self, name: str, x: jax.Array, factorized: bool, train: bool) -> jax.Array:
        p = self.param(name, lambda k: ops.init_preprocess(k, x.shape[-1], self.filters, factorized))
        v = self.variable("batch_stats", name, lambda: {"bn": ops._bn_stats(self.filters)})
        y, new = ops.preprocess(x, p, v.value, train)
        _store(v, new, self)
        return y

    def _branch(self, name: str, stride: int, operand: int, train: bool):
        """Op `name` as a function of (op id, inputs..., params of every op, statistics of every op) -> (y, statistics);
        it reads input `operand` and ignores the op id."""
        def run(*args):
            x, p, s = args[1 + operand], args[-2], args[-1]
            y, new = ops.apply(name, x, p.get(name, {}), s.get(name, {}), stride, train)
            return y, ({**s, name: new} if name in s else s)
        return run

    def _families(self) -> list[str]:
        """The dispatch branches: one per op, except that the separable convolutions share one (`_family`)."""
        fams = ["separable" if n in ops.SEPARABLE else n for n in self.ops]
        return list(dict.fromkeys(fams))

    def _family(self, fam: str, stride: int, operand: int, train: bool):
        """Dispatch branch `fam` over (op id, inputs..., params, statistics). The separable convolutions share one
        branch: their parameters (kernels padded to 7x7) and statistics are picked by a one-hot of the op, the tap
        loop runs k*k taps of the op's own k and dilation, and only that op's statistics change."""
        if fam != "separable":
            return self._branch(fam, stride, operand, train)
        names = [n for n in self.ops if n in ops.SEPARABLE]
        sub = np.array([names.index(n) if n in names else 0 for n in self.ops], np.int32)
        size = np.array([ops.SEPARABLE.get(n, (1, 1))[0] for n in self.ops], np.int32)
        dil = np.array([ops.SEPARABLE.get(n, (1, 1))[1] for n in self.ops], np.int32)

        def run(*args):
            op, x, p, s = args[0], args[1 + operand], args[-2], args[-1]
            hot = jax.nn.one_hot(jnp.asarray(sub)[op], len(names), dtype=x.dtype)

            def mix(*trees):
                return jax.tree.map(lambda *leaves: sum(h * leaf for h, leaf in zip(hot, leaves)), *trees)

            y, new = ops.separable(x, mix(*[ops.padded(p[n]) for n in names]), mix(*[s[n] for n in names]),
                                   jnp.asarray(size)[op], jnp.asarray(dil)[op], stride, train)
            keep = {n: jax.tree.map(lambda old, upd, h=hot[i]: jnp.where(h > 0, upd, old), s[n], new)
                    for i, n in enumerate(names)}
            return y, {**s, **keep}
        return run

    @nn.compact
    def __call__(self, s0: jax.Array, s1: jax.Array, genes: Any, mask: Any, train: bool) -> jax.Array:
        check(s1.shape[1] in (s0.shape[1], 2 * s0.shape[1]), "image_size",
              f"got cell inputs of sizes {s1.shape[1]} and {s0.shape[1]}; allowed: the same size or twice the size")
        f, nb = self.filters, self.num_combinations
        h0 = self._pre("pre0", s0, False, train)
        h1 = self._pre("pre1", s1, s1.shape[1] != s0.shape[1], train)
        named = [n for n in self.ops if ops.has_params(n, self.reduction)]
        params = {n: self.param(n, lambda k, n=n: jax.vmap(lambda kk: ops.init_params(n, kk, f))(
            jax.random.split(k, 2 * nb))) for n in named}
        stats_var = self.variable("batch_stats", "ops", lambda: {
            n: jax.tree.map(lambda a: jnp.broadcast_to(a, (2 * nb,) + a.shape), ops.init_stats(n, f)) for n in named})
        stats = stats_var.value
        if _is_concrete(mask):
            combos, stats = self._plain(h0, h1, genes, params, stats, train)
        else:
            combos, stats = self._scanned(h0, h1, genes, params, stats, train)
        _store(stats_var, stats, self)
        out = combos * jnp.asarray(mask, combos.dtype)[:, None, None, None, None]  # (B, batch, H, W, F)
        return jnp.moveaxis(out, 0, 3).reshape(out.shape[1:4] + (nb * f,))

    def _plain(self, h0, h1, genes, params, stats, train):
        """The network of one concrete architecture: each element's op called directly on its input."""
        states = [h0, h1]
        for b in range(self.num_combinations):
            total = None
            for e in range(2):
                el, (i, o) = 2 * b + e, genes[b][e]
                name = self.ops[o]
                p, s = _row(params, el), _row(stats, el)
                y, s = self._branch(name, 2 if self.reduction and i < 2 else 1, 0, train)(o, states[i], p, s)
                stats = jax.tree.map(lambda a, v: a.at[el].set(v), stats, s)
                total = y if total is None else total + y
            states.append(total)
        return jnp.stack(states[2:]), stats

    def _scanned(self, h0, h1, genes, params, stats, train):
        """Every element in one `lax.scan`; each reads its input hidden state by index, then dispatches its op."""
        nb = self.num_combinations
        g = jnp.asarray(genes, jnp.int32).reshape(2 * nb, 2)
        inputs = jnp.stack([h0, h1])  # (2, batch, H, W, F)
        if not self.reduction:  # one buffer of every hidden state: inputs 0, 1, then the combinations
            first = jnp.concatenate([inputs, jnp.zeros((nb,) + h0.shape, h0.dtype)])
        else:  # the combinations only, at half the size of the inputs
            first = jnp.zeros((nb, h0.shape[0], h0.shape[1] // 2, h0.shape[2] // 2, h0.shape[3]), h0.dtype)
        offset = 0 if self.reduction else 2  # where combination 0 sits in the buffer

        def read(buf, i):
            return jax.lax.dynamic_index_in_dim(buf, i, keepdims=False)

        fams = self._families()
        fam_of = jnp.asarray([fams.index("separable" if n in ops.SEPARABLE else n) for n in self.ops], jnp.int32)

        def dispatch(index, table, *operands):  # "switch": only the chosen branch's VJP runs in the backward pass
            return choose_recomputed(index, table, *operands, mode=self.dispatch)

        def step(buf, xs):
            el, (inp, op), p, s = xs
            if not self.reduction:
                table = [self._family(f, 1, 0, train) for f in fams]
                y, s = dispatch(fam_of[op], table, op, read(buf, inp), p, s)
            else:  # the cell inputs are read with stride 2
                table = [self._family(f, 1, 1, train) for f in fams] + [self._family(f, 2, 0, train) for f in fams]
                x_in, x_comb = read(inputs, jnp.minimum(inp, 1)), read(buf, jnp.clip(inp - 2, 0, nb - 1))
                index = fam_of[op] + len(fams) * (inp < 2).astype(jnp.int32)
                y, s = dispatch(index, table, op, x_in, x_comb, p, s)
            target = offset + el // 2
            return jax.lax.dynamic_update_index_in_dim(buf, read(buf, target) + y, target, 0), s

        buf, stats = jax.lax.scan(step, first, (jnp.arange(2 * nb), (g[:, 0], g[:, 1]), params, stats))
        return buf[offset:], stats


class NASNetNetwork(nn.Module):
    """`apply(variables, images (B, H, W, C), arch (8B,), train)` -> logits (B, num_classes); H and W divisible by
    2**(stages - 1) (4 in the NASNet layout)."""

    cells: Cells
    num_classes: int = 10
    channels: int = CPU_OPTIONS["channels"]
    cells_per_stage: int = CPU_OPTIONS["cells_per_stage"]
    stem_multiplier: int = 3
    stages: int = STAGES
    image_size: int | None = None
    dispatch: str = "switch"  # "select" for vmapped populations (`jaxnas.models.dispatch`; set by the engine)
    cell_type: ClassVar[type] = Cell  # the cell module (the masked supernet substitutes its own)

    def layout(self) -> list[tuple[bool, int]]:
        """(is a reduction cell, filters) of every cell, input first: N normal, reduction, N normal, reduction, ..."""
        out = []
        for stage in range(self.stages):
            f = self.channels * 2**stage
            if stage > 0:
                out.append((True, f))
            out += [(False, f)] * self.cells_per_stage
        return out

    @nn.compact
    def __call__(self, x: jax.Array, arch: Any, train: bool = False) -> jax.Array:
        div = 2 ** (self.stages - 1)
        check(x.ndim == 4 and x.shape[1] % div == 0 and x.shape[2] % div == 0, "image_size",
              f"got images of shape {tuple(x.shape[1:])}; allowed: (H, W, C) with H and W divisible by {div}")
        if self.image_size is not None:
            check(x.shape[1] == x.shape[2] == self.image_size, "image_size",
                  f"got images of shape {tuple(x.shape[1:])}; this network is for {self.image_size}x{self.image_size}")
        cells = self.cells
        concrete = _is_concrete(arch)
        arch = np.asarray(arch, np.int32) if concrete else jnp.asarray(arch, jnp.int32)
        check(arch.shape == (cells.num_positions,), "arch",
              f"got shape {tuple(arch.shape)}; allowed: ({cells.num_positions},) for B={cells.B}")
        if self.is_initializing() and not concrete:  # parameters do not depend on the architecture: initialise
            concrete, arch = True, np.zeros(cells.num_positions, np.int32)  # through a plain, switch-free network
        if concrete:
            genes, masks = as_cells(arch, cells.B).tolist(), output_mask(cells, arch).astype(np.float32).tolist()
        else:
            genes, masks = as_cells(arch, cells.B), output_mask(cells, arch)
        stem = BatchNorm(name="stem_bn")(Conv(self.stem_multiplier * self.channels, 3, name="stem")(
            x.astype(jnp.float32)), train)
        s0 = s1 = stem
        for i, (reduction, f) in enumerate(self.layout()):
            c = int(reduction)
            cell = self.cell_type(cells.ops, reduction, f, cells.B, self.dispatch, name=f"cell{i}")
            s0, s1 = cell(s0, s1, genes[c], masks[c], train), s0
        return nn.Dense(self.num_classes, name="head")(jax.nn.relu(s0).mean(axis=(1, 2)))


def network(cells: Cells, num_classes: int = 10, **options: Any) -> NASNetNetwork:
    """The network of a NASNet space's `cells`; options: `channels` (F), `cells_per_stage` (N), `stem_multiplier`,
    `stages` (stacks of normal cells, a reduction cell between two), `image_size` (checked against the inputs when
    given), `dispatch`. Bad values are refused naming the option."""
    known = ("channels", "cells_per_stage", "stem_multiplier", "stages", "image_size", "dispatch")
    for name in options:
        check(name in known, name, f"got an unknown network option; allowed: {', '.join(known)}")
    for name in ("channels", "cells_per_stage", "stem_multiplier", "stages"):
        if name in options:
            v = options[name]
            check(isinstance(v, int) and not isinstance(v, bool) and v >= 1, name,
                  f"got {v!r}; allowed: an integer >= 1")
    size, div = options.get("image_size"), 2 ** (options.get("stages", STAGES) - 1)
    check(size is None or (isinstance(size, int) and size >= div and size % div == 0), "image_size",
          f"got {size!r}; allowed: an integer divisible by {div} (one halving per reduction cell)")
    if "dispatch" in options:
        check_choice("dispatch", options["dispatch"], DISPATCH_MODES)
    check(isinstance(num_classes, int) and num_classes >= 1, "num_classes", f"got {num_classes!r}; allowed: >= 1")
    return NASNetNetwork(cells=cells, num_classes=num_classes, **options)
