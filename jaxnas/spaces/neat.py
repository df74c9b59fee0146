"""NEAT genomes as padded arrays, their decoding into layered networks, and batched evaluation.

Stanley & Miikkulainen, "Evolving Neural Networks through Augmenting Topologies", Evolutionary
Computation 10(2), 2002 (Sec. 3.1, Fig. 2): a genome is a list of node genes and a list of connection
genes; each connection gene has an in-node, an out-node, a weight, an enable bit and an innovation number.

Here a genome is a fixed-shape pytree so that a population stacks and vmaps:

* node genes: `node_id (N,)`, `node_bias (N,)`, and in a CPPN space (`NeatSpace.activations`, HyperNEAT) `node_act
  (N,)`, each node's activation as an index into `activations`. Slots hold ids in increasing order: inputs
  `0..I-1`, outputs `I..I+O-1`, then hidden nodes (ids from a global counter), then `EMPTY`.
* connection genes: `conn_in, conn_out (C,)` (node ids), `conn_weight (C,)`, `conn_enabled (C,)`,
  `conn_innov (C,)`, sorted by innovation number with `EMPTY` slots last.

Keeping both lists sorted makes gene alignment (crossover, compatibility distance) a `searchsorted`.

Deviation from the paper: every non-input node has a bias gene (as in neat-python and as the issue asks
for bias mutation) instead of a bias *input* node. Feed-forward spaces (the default): structural mutations
never close a cycle over the genome's connection genes (enabled or not), so re-enabling a gene stays acyclic.
Recurrent spaces (`recurrent=True`, the paper's double pole without velocities): any connection may be
added, loops and self-loops included, and a network is run one time step at a time with `step`.

Decoding (`decode`) turns one genome into a dense weight matrix and a level per node (the longest path
from any node without enabled inputs); evaluation (`forward`) then computes the levels in order, all
nodes of one level at once. The activation is the paper's steepened sigmoid 1 / (1 + exp(-4.9 x)) by default
(`activation`, `output_activation`), or each node's own in a CPPN space.

Recurrent networks (`step`) update every node at once from the previous time step's activations, one
update per time step: each node's input sum reads the activations its in-nodes had after the last step
(inputs: the current observation). This is the synchronous update of Stanley's NEAT C++ `Network::activate`
and of neat-python's `RecurrentNetwork`. One difference from the C++ code: on the very first step of an
episode it repeats the update until every output has been reached; here outputs lag their inputs by their
distance from the inputs from the start.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxnas.common.errors import check, check_positive

EMPTY = np.iinfo(np.int32).max  # id / innovation of an empty slot: sorts after every real gene


@struct.dataclass
class Genome:
    """One genome (or a population with leading axes). Shapes below are for one genome."""

    node_id: jax.Array  # (N,) int32, ascending, EMPTY-padded
    node_bias: jax.Array  # (N,) float32 (inputs: unused, 0)
    conn_in: jax.Array  # (C,) int32 node id
    conn_out: jax.Array  # (C,) int32 node id
    conn_weight: jax.Array  # (C,) float32
    conn_enabled: jax.Array  # (C,) bool
    conn_innov: jax.Array  # (C,) int32, ascending, EMPTY-padded
    # (N,) int32: each node's activation, an index into `NeatSpace.activations` (a CPPN's genes, HyperNEAT);
    # None in a space with one activation for all nodes
    node_act: jax.Array | None = None

    @property
    def node_valid(self) -> jax.Array:
        return self.node_id != EMPTY

    @property
    def conn_valid(self) -> jax.Array:
        return self.conn_innov != EMPTY


@struct.dataclass
class Network:
    """A decoded genome: what evaluation needs and nothing else."""

    weights: jax.Array  # (N, N) float32: weights[src_slot, dst_slot], enabled genes summed
    bias: jax.Array  # (N,) float32
    level: jax.Array  # (N,) int32: evaluation level; -1 for inputs and empty slots
    num_levels: jax.Array  # () int32: 1 + the largest level
    act: jax.Array | None = None  # (N,) int32 activation index per node (`NeatSpace.activations`), or None


def sigmoid(x: jax.Array) -> jax.Array:
    """The paper's steepened sigmoid, 1 / (1 + exp(-4.9 x))."""
    return jax.nn.sigmoid(4.9 * x)


def sigmoid5(x: jax.Array) -> jax.Array:
    """neat-python's sigmoid (`activations.sigmoid_activation`), 1 / (1 + exp(-5 x))."""
    return jax.nn.sigmoid(5.0 * x)


def gauss(x: jax.Array) -> jax.Array:
    """The Gaussian of CPPNs (Stanley 2007), exp(-x^2): symmetric, a bump at 0."""
    return jnp.exp(-jnp.square(x))


def signed_sigmoid(x: jax.Array) -> jax.Array:
    """HyperNEAT's signed sigmoid (the authors' code, SignedActivation): 2 / (1 + exp(-x)) - 1 = tanh(x / 2)."""
    return jnp.tanh(0.5 * x)


def clipped_linear(x: jax.Array) -> jax.Array:
    """HyperNEAT's linear function (the authors' code): min(max(x, -3), 3) / 3, in [-1, 1]."""
    return jnp.clip(x, -3.0, 3.0) / 3.0


ACTIVATIONS = {"sigmoid": sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu, "identity": lambda x: x,
               # the CPPN functions of HyperNEAT (Stanley, D'Ambrosio & Gauci 2009): repetition, symmetry
               "sin": jnp.sin, "gauss": gauss, "abs": jnp.abs, "signed_sigmoid": signed_sigmoid,
               "clipped_linear": clipped_linear,
               "sigmoid5": sigmoid5}  # neat-python's sigmoid, for reproducing its runs


@dataclasses.dataclass(frozen=True)
class NeatSpace:
    """Static shape of the genomes: inputs, outputs, and the padded capacities."""

    num_inputs: int
    num_outputs: int
    max_nodes: int = 32  # N: inputs + outputs + hidden
    max_conns: int = 64  # C
    activation: str = "sigmoid"  # hidden and output nodes
    output_activation: str | None = None  # None: same as `activation`
    recurrent: bool = False  # True: cycles allowed, networks run with `step`
    # Per-node activation genes (a CPPN, HyperNEAT): the functions a node may have. The outputs keep
    # `output_activation` (or `activation`), new hidden nodes draw one at random, `Neat.activation_mutate_rate`
    # redraws hidden nodes' functions. None: every hidden node has `activation`, every output `output_activation`.
    activations: tuple[str, ...] | None = None

    def __post_init__(self):
        for field in ("num_inputs", "num_outputs", "max_nodes", "max_conns"):
            check_positive(field, getattr(self, field), integer=True)
        check(self.max_nodes >= self.num_inputs + self.num_outputs, "max_nodes",
              f"got {self.max_nodes}; allowed: >= num_inputs + num_outputs ({self.num_inputs + self.num_outputs})")
        check(self.max_conns >= self.num_inputs * self.num_outputs, "max_conns",
              f"got {self.max_conns}; allowed: >= num_inputs * num_outputs ({self.num_inputs * self.num_outputs}) "
              "for the fully connected initial genome")
        check(isinstance(self.recurrent, bool), "recurrent", f"got {self.recurrent!r}; allowed: True or False")
        for field in ("activation", "output_activation"):
            value = getattr(self, field)
            if value is not None:
                check(value in ACTIVATIONS, field, f"got {value!r}; allowed: {', '.join(ACTIVATIONS)}")
        if self.activations is not None:
            acts = self.activations
            check(isinstance(acts, tuple) and len(acts) > 0 and len(set(acts)) == len(acts)
                  and all(a in ACTIVATIONS for a in acts), "activations",
                  f"got {acts!r}; allowed: None or a tuple of distinct names among {', '.join(ACTIVATIONS)}")
            field = "output_activation" if self.output_activation is not None else "activation"
            start = getattr(self, field)
            check(start in acts, field, f"got {start!r}: the outputs' activation must be one of activations "
                  f"({', '.join(acts)})")

    @property
    def num_io(self) -> int:
        return self.num_inputs + self.num_outputs

    def initial_genome(self, weights: jax.Array, biases: jax.Array) -> Genome:
        """The paper's starting point: every input connected to every output, no hidden nodes.

        Args:
          weights: (I * O,) initial weights, input-major (innovation k connects input k // O to output k % O).
          biases: (O,) output biases.
        """
        n, c, io = self.max_nodes, self.max_conns, self.num_io
        k = np.arange(self.num_inputs * self.num_outputs)
        node_id = np.full(n, EMPTY, np.int32)
        node_id[:io] = np.arange(io)
        pad_c = c - k.size
        return Genome(
            node_id=jnp.asarray(node_id),
            node_bias=jnp.zeros(n, jnp.float32).at[self.num_inputs:io].set(biases),
            conn_in=jnp.asarray(np.pad(k // self.num_outputs, (0, pad_c), constant_values=EMPTY), jnp.int32),
            conn_out=jnp.asarray(np.pad(self.num_inputs + k % self.num_outputs, (0, pad_c), constant_values=EMPTY),
                                 jnp.int32),
            conn_weight=jnp.pad(jnp.asarray(weights, jnp.float32), (0, pad_c)),
            conn_enabled=jnp.asarray(np.pad(np.ones(k.size, bool), (0, pad_c))),
            conn_innov=jnp.asarray(np.pad(k, (0, pad_c), constant_values=EMPTY), jnp.int32),
            node_act=None if self.activations is None else jnp.zeros(n, jnp.int32).at[self.num_inputs:io].set(
                self.activations.index(self.output_activation or self.activation)),
        )

    @property
    def first_hidden_id(self) -> int:
        return self.num_io

    @property
    def first_free_innov(self) -> int:
        return self.num_inputs * self.num_outputs

    # --- decoding and evaluation (one genome; vmap for a population) ---

    def slots(self, genome: Genome) -> tuple[jax.Array, jax.Array]:
        """Node slot of each connection's in- and out-node (garbage for empty connection slots)."""
        last = self.max_nodes - 1
        src = jnp.minimum(jnp.searchsorted(genome.node_id, genome.conn_in, method="compare_all"), last)
        dst = jnp.minimum(jnp.searchsorted(genome.node_id, genome.conn_out, method="compare_all"), last)
        return src, dst

    def decode(self, genome: Genome) -> Network:
        """Dense weights and the topological level of each node (longest path from a source)."""
        n = self.max_nodes
        src, dst = self.slots(genome)
        active = genome.conn_valid & genome.conn_enabled
        # One scatter builds the weights and the adjacency (as a count, so a gene of weight 0 still counts).
        dense = jnp.zeros((n, n, 2), jnp.float32).at[src, dst].add(
            jnp.stack([jnp.where(active, genome.conn_weight, 0.0), active.astype(jnp.float32)], -1))
        weights, adjacent = dense[..., 0], dense[..., 1] > 0
        is_input = jnp.arange(n) < self.num_inputs
        if self.recurrent:  # no topological order: `step` updates every node at once
            level = jnp.where(is_input | ~genome.node_valid, -1, 0)
            return Network(weights=weights, bias=genome.node_bias, level=level, num_levels=jnp.int32(1),
                           act=genome.node_act)

        def relax(depth):  # elementwise over the (N, N) adjacency: XLA CPU runs this faster than a scatter-max
            return jnp.maximum(depth, jnp.max(jnp.where(adjacent, depth[:, None] + 1, 0), axis=0))

        def cond(carry):
            depth, prev, i = carry
            return jnp.any(depth != prev) & (i < n)  # converges within N sweeps on an acyclic genome

        def body(carry):
            depth, _, i = carry
            return relax(depth), depth, i + 1

        # Inputs sit at depth 0 and are not computed; every other node has depth >= 1 (a node without enabled
        # inputs is the constant act(bias), computed at level 0) and is computed at level depth - 1.
        depth0 = jnp.where(is_input, 0, 1)
        depth, _, _ = jax.lax.while_loop(cond, body, (relax(depth0), depth0, jnp.int32(1)))
        level = jnp.where(is_input | ~genome.node_valid, -1, depth - 1)
        return Network(weights=weights, bias=genome.node_bias, level=level, num_levels=jnp.max(level) + 1,
                       act=genome.node_act)

    def forward(self, net: Network, inputs: jax.Array, num_levels: jax.Array | None = None) -> jax.Array:
        """Outputs (B, O) of a decoded network for inputs (B, I).

        `num_levels` (default: the network's own) may be a population-wide bound when vmapped, so the level
        loop runs once for the whole population; extra levels change nothing.
        """
        if self.recurrent:
            raise ValueError("NeatSpace.recurrent: a recurrent network has state between time steps; evaluate it "
                             "with `step` (one time step) instead of `forward`")
        b = inputs.shape[0]
        values = jnp.zeros((b, self.max_nodes), jnp.float32).at[:, :self.num_inputs].set(inputs)  # (B, N)

        def body(lvl, values):
            pre = values @ net.weights + net.bias  # (B, N)
            return jnp.where(net.level == lvl, self._activate(pre, net.act), values)

        values = jax.lax.fori_loop(0, net.num_levels if num_levels is None else num_levels, body, values)
        return values[:, self.num_inputs:self.num_io]

    def initial_values(self, batch: int = 1) -> jax.Array:
        """(batch, N) activations of a recurrent network before its first step (all zero, a flushed network)."""
        return jnp.zeros((batch, self.max_nodes), jnp.float32)

    def step(self, net: Network, values: jax.Array, inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """One time step of a decoded network: every non-input node is computed at once from the activations
        `values` (B, N) of the previous step, with the inputs (B, I) of this step. Returns the new
        activations (B, N) and the outputs (B, O). Works for feed-forward genomes too (they then need as many
        steps as their depth to respond to an input)."""
        values = jnp.concatenate([inputs.astype(jnp.float32), values[:, self.num_inputs:]], axis=1)
        pre = values @ net.weights + net.bias  # (B, N)
        new = jnp.where(net.level >= 0, self._activate(pre, net.act), 0.0)  # inputs, empty slots: 0
        values = jnp.where(jnp.arange(self.max_nodes) < self.num_inputs, values, new)
        return values, values[:, self.num_inputs:self.num_io]

    def _activate(self, pre: jax.Array, act: jax.Array | None = None) -> jax.Array:
        """Activations (B, N) of every slot from its input sum: each node's own function (`act`, a CPPN) or
        `output_activation` on outputs and `activation` elsewhere."""
        if self.activations is not None:
            if act is None:
                raise ValueError("genome: a space with per-node activations (NeatSpace.activations) needs genomes "
                                 "with node_act; build them with this space (initial_genome, Neat.init)")
            out = ACTIVATIONS[self.activations[0]](pre)
            for k, name in enumerate(self.activations[1:], 1):
                out = jnp.where(act == k, ACTIVATIONS[name](pre), out)
            return out
        is_output = (jnp.arange(self.max_nodes) >= self.num_inputs) & (jnp.arange(self.max_nodes) < self.num_io)
        out_act = ACTIVATIONS[self.output_activation or self.activation]
        return jnp.where(is_output, out_act(pre), ACTIVATIONS[self.activation](pre))

    def apply(self, genome: Genome, inputs: jax.Array) -> jax.Array:
        """decode + forward for one genome: (B, I) -> (B, O)."""
        return self.forward(self.decode(genome), inputs)


def to_host(genome: Genome) -> dict[str, Any]:
    """One genome as plain Python lists (JSON-able): nodes and connection genes without the padding; a CPPN's
    nodes with their "activation" (an index into the space's `activations`)."""
    g = jax.tree.map(np.asarray, genome)
    acts = g.node_act if g.node_act is not None else [None] * len(g.node_id)
    nodes = [{"id": int(i), "bias": float(b), **({} if a is None else {"activation": int(a)})}
             for i, b, a in zip(g.node_id, g.node_bias, acts) if i != EMPTY]
    conns = [{"innovation": int(k), "in": int(a), "out": int(o), "weight": float(w), "enabled": bool(e)}
             for k, a, o, w, e in zip(g.conn_innov, g.conn_in, g.conn_out, g.conn_weight, g.conn_enabled)
             if k != EMPTY]
    return {"nodes": nodes, "connections": conns}

