"""Running the op an architecture chose: real branches where candidates run one at a time, one vectorisable
program where they are vmapped. Every space's network uses this, so the engine, not the network, decides.

A candidate network takes its architecture as an *input* (an int array), so one compiled program serves every
architecture. At each edge or layer it must apply the op that the architecture names. Two ways:

* ``"switch"``: `jax.lax.switch(op_id, op_table, ...)` runs only the chosen op. Outside `vmap` this is a real
  branch on every backend, so a candidate costs what its architecture costs (a cell of skips and pools is
  cheap). Under `vmap` JAX turns a switch into computing every branch and selecting, which wastes most of the
  work: so this mode is for candidates run one after another (`lax.map`), the engine's CPU execution.
* ``"select"``: the network's vectorisable form, for vmapped populations (accelerators): every candidate in a
  batch runs the same instructions. The generic form computes every op and keeps one with a one-hot
  (`select`); a network may do better (NAS-Bench-201 folds its conv ops into one kernel per edge,
  `jaxnas.models.nb201`).

The engine (`jaxnas.evaluation.population.PopulationTrainer`, `execution=`) picks the mode and sets it on the
network with `with_dispatch`; both modes compute the same function (tested per network to float tolerance).

Differentiating a traced "switch": JAX's own rule makes every branch return zeros for every other branch's
residuals, which costs writes and copies the size of the activations per edge. Two ways round it here:
`choose_recomputed` keeps only the operands and recomputes the chosen branch in the backward pass (any op table;
a convolution is then computed twice), and `choose_saving` takes each op as a forward pass that returns one
residual of a shape shared by all ops and a backward pass that uses it (NAS-Bench-201's ops: the convolution's
output is kept, nothing is computed twice).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from jaxnas.common.errors import check_choice

DISPATCH_MODES = ("switch", "select")

# execution of a population -> the dispatch its networks need
DISPATCH_FOR_EXECUTION = {"map": "switch", "vmap": "select"}


def choose(op_id: jax.Array, table: Sequence[Callable[..., Any]], *operands: Any, mode: str) -> Any:
    """`table[op_id](*operands)`: a real branch (`"switch"`) or every op then a one-hot selection (`"select"`).

    Every entry of `table` must return the same shapes and dtypes. A concrete `op_id` (a Python or numpy
    int, an architecture known when tracing) calls its op directly in either mode: the plain network of that
    one architecture, what a per-model loop builds.
    """
    check_choice("dispatch", mode, DISPATCH_MODES)
    if isinstance(op_id, (int, np.integer)):
        return table[int(op_id)](*operands)
    if mode == "switch":
        return jax.lax.switch(op_id, list(table), *operands)
    outs = [f(*operands) for f in table]
    hot = jax.nn.one_hot(op_id, len(table))
    return jax.tree.map(lambda *ys: sum(w.astype(y.dtype) * y for w, y in zip(hot, ys)), *outs)


def with_dispatch(model: Any, mode: str) -> Any:
    """`model` with its `dispatch` field set to `mode`, when the network has one (others are returned as they are)."""
    check_choice("dispatch", mode, DISPATCH_MODES)
    if getattr(model, "dispatch", mode) == mode or not hasattr(model, "clone"):
        return model
    return model.clone(dispatch=mode)


def choose_recomputed(op: Any, table: Sequence[Callable[..., Any]], *operands: Any, mode: str) -> Any:
    """`choose(op, table, *operands, mode=mode)`, differentiated, for a traced "switch", by recomputing the chosen
    branch: JAX differentiates `lax.switch` by making every branch return the residuals of every other branch
    (zeros), so a `none` cell edge would write a whole motif's residuals. Here the residuals are the operands and the
    backward pass is `choose` over the branches' VJPs (measured on the paper's cell, batch 32, 16x16: a gradient step
    ~25% faster). The branches must take every value they are differentiated by as an operand, none closed over.
    Reverse mode only (a `custom_vjp`): forward-mode derivatives of a traced "switch" network are refused by JAX."""
    if mode == "switch" and not isinstance(op, (int, np.integer, np.ndarray)):
        return _recomputed(tuple(table), op, *operands)
    return choose(op, table, *operands, mode=mode)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _recomputed(table, op, *operands):
    return choose(op, list(table), *operands, mode="switch")


def _recomputed_fwd(table, op, *operands):
    return choose(op, list(table), *operands, mode="switch"), (op, operands)


def _recomputed_bwd(table, res, g):
    op, operands = res

    def vjp_of(f):
        return lambda g, *xs: jax.vjp(f, *xs)[1](g)

    return (None, *choose(op, [vjp_of(f) for f in table], g, *operands, mode="switch"))


_recomputed.defvjp(_recomputed_fwd, _recomputed_bwd)


def choose_saving(op: Any, forward: Sequence[Callable[..., Any]], backward: Sequence[Callable[..., Any]],
                  *operands: Any, mode: str) -> Any:
    """`choose` over ops given as split forward / backward passes, so that a traced "switch" neither differentiates
    through `lax.switch` (every branch returning zeros for every other branch's residuals) nor recomputes the chosen
    branch (`choose_recomputed`), which for a convolution is a second forward convolution.

    `forward[i](*operands) -> (out, res)`: every entry's `res` has one structure and shape (an op that needs none
    returns any array of that shape); `backward[i](res, operands, g) -> cotangents of operands` (a tuple, one per
    operand, with the operands' structure). Cotangents flow only from the first element of `out` when it is a tuple:
    the others (e.g. running statistics) must not be differentiated, and their cotangents are dropped.
    Reverse mode only, as `choose_recomputed`."""
    if mode == "switch" and not isinstance(op, (int, np.integer, np.ndarray)):
        return _saving(tuple(forward), tuple(backward), op, *operands)
    return choose(op, [lambda *a, f=f: f(*a)[0] for f in forward], *operands, mode=mode)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _saving(forward, backward, op, *operands):
    return jax.lax.switch(op, [lambda *a, f=f: f(*a)[0] for f in forward], *operands)


def _saving_fwd(forward, backward, op, *operands):
    out, res = jax.lax.switch(op, list(forward), *operands)
    return out, (op, operands, res)


def _saving_bwd(forward, backward, saved, g):
    op, operands, res = saved
    g = g[0] if isinstance(g, tuple) else g
    return (None, *jax.lax.switch(op, list(backward), res, operands, g))


_saving.defvjp(_saving_fwd, _saving_bwd)
