"""neat-python 2.0's structural mutation order (`DefaultGenome.mutate`), for `Neat(structure_first=True)`.

neat-python mutates one genome in sequence, each step seeing the previous one's result: add node, delete node,
add connection, delete connection, then every gene's attributes (weights, biases, enable bits, new genes
included). So a new connection may start or end at the node added just before, and a node deleted before it
cannot be used. The paper's order (`neat_ops.structural_with`: both additions proposed on the same genome, after
the attributes) is the default; this module is the population-wide version of neat-python's sequence:

1. every genome picks the connection it splits (`propose_split`);
2. the splits get node ids and innovations population-wide (`Neat.split_ids`: shared by identical splits as in
   the paper, or one per split as neat-python's node counter gives) and are written (`apply_split`);
3. node deletion; every genome proposes a connection on its updated genome (`propose_conn`);
4. the new connections get innovations population-wide (the same a->b in one generation: one number, as
   neat-python's innovation tracker) and are written (`finish_conn`); connection deletion.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnas.spaces.neat import EMPTY, Genome, NeatSpace
from jaxnas.strategies import neat_ops as ops


def propose_split(u: jax.Array, g: Genome, space: NeatSpace, node_rate: float, split_disabled: bool
                  ) -> tuple[jax.Array, jax.Array]:
    """Add node's decision and the connection slot it splits (`u`: add node?, which connection)."""
    n_nodes, n_conns = jnp.sum(g.node_valid), jnp.sum(g.conn_valid)
    split, has = ops.pick(u[1], g.conn_valid & (True if split_disabled else g.conn_enabled))
    do = (u[0] < node_rate) & has & (n_nodes < space.max_nodes) & (n_conns + 2 <= space.max_conns)
    return do, split


def apply_split(g: Genome, do: jax.Array, split: jax.Array, node_id: jax.Array, innov_in: jax.Array,
                new_act: jax.Array | None = None) -> Genome:
    """The split of connection `split` a->b written where `do`: node `node_id` (bias 0), a->node (weight 1,
    innovation `innov_in`) and node->b (the old weight, `innov_in + 1`) appended; a->b disabled."""
    n_nodes, n_conns = jnp.sum(g.node_valid), jnp.sum(g.conn_valid)
    c_in, c_out = n_conns, n_conns + 1
    put = lambda arr, idx, val: ops.set_where(arr, idx, val, do)  # noqa: E731
    g = g.replace(
        node_id=put(g.node_id, n_nodes, node_id), node_bias=put(g.node_bias, n_nodes, 0.0),
        conn_in=put(put(g.conn_in, c_in, g.conn_in[split]), c_out, node_id),
        conn_out=put(put(g.conn_out, c_in, node_id), c_out, g.conn_out[split]),
        conn_weight=put(put(g.conn_weight, c_in, 1.0), c_out, g.conn_weight[split]),
        conn_enabled=put(put(put(g.conn_enabled, split, False), c_in, True), c_out, True),
        conn_innov=put(put(g.conn_innov, c_in, innov_in), c_out, innov_in + 1))
    if g.node_act is not None:
        g = g.replace(node_act=put(g.node_act, n_nodes, new_act))
    return g


def propose_conn(u: jax.Array, z: jax.Array, g: Genome, space: NeatSpace, conn_rate: float, init_std: float,
                 from_outputs: bool) -> tuple[Genome, jax.Array, jax.Array]:
    """Add connection on the genome as it is now (`u`: add?, source, target; `z` the weight's normal): a random
    source (an output too unless `from_outputs` is False) and a random non-input target, kept if a->b is new and,
    feed-forward, a != b and b does not reach a. Writes the gene's endpoints, weight N(0, init_std) and enable
    bit in the first free slot, its innovation left empty for `finish_conn`; returns the source and target ids
    (EMPTY: none)."""
    index = jnp.arange(space.max_nodes)
    a, _ = ops.pick(u[1], g.node_valid & (from_outputs | (index < space.num_inputs) | (index >= space.num_io)))
    b, _ = ops.pick(u[2], g.node_valid & (index >= space.num_inputs))
    a_id, b_id = g.node_id[a], g.node_id[b]
    exists = jnp.any(g.conn_valid & (g.conn_in == a_id) & (g.conn_out == b_id))
    slot = jnp.sum(g.conn_valid)
    do = (u[0] < conn_rate) & ~exists & (slot < space.max_conns)
    if not space.recurrent:
        do = do & (a != b) & ~ops.reaches(g, space, b)[a]
    put = lambda arr, val: ops.set_where(arr, slot, val, do)  # noqa: E731
    g = g.replace(conn_in=put(g.conn_in, a_id), conn_out=put(g.conn_out, b_id),
                  conn_weight=put(g.conn_weight, init_std * z), conn_enabled=put(g.conn_enabled, True))
    return g, jnp.where(do, a_id, EMPTY), jnp.where(do, b_id, EMPTY)


def finish_conn(g: Genome, do: jax.Array, innov: jax.Array) -> Genome:
    """The connection `propose_conn` wrote gets its innovation (it becomes a gene) where `do`."""
    return g.replace(conn_innov=ops.set_where(g.conn_innov, jnp.sum(g.conn_valid), innov, do))


def mutate_in_sequence(neat, draws: dict[str, jax.Array], children: Genome, is_elite: jax.Array,
                       next_node: jax.Array, next_innov: jax.Array) -> tuple[Genome, jax.Array, jax.Array]:
    """neat-python's sequence on a population of children (elites propose nothing; they are copied later).
    `draws` as `Neat.mutation_draws`; `draws["u"]` columns 2-5 the deletions, 6-10 add node (on, which) and add
    connection (on, source, target). Returns the children and the advanced node and innovation counters."""
    sp, u = neat.space, draws["u"]
    do_node, split = jax.vmap(lambda r, g: propose_split(r, g, sp, neat.node_add_rate, neat.split_disabled))(
        u[:, 6:8], children)
    do_node = do_node & ~is_elite
    split_innov = jnp.where(do_node, jnp.take_along_axis(children.conn_innov, split[:, None], 1)[:, 0], EMPTY)
    nid, n_nodes = ops.split_numbers(split_innov, do_node, neat.split_ids == "unique")
    new_act = draws.get("new_act")
    children = jax.vmap(apply_split, in_axes=(0, 0, 0, 0, 0, None if new_act is None else 0))(
        children, do_node, split, next_node + nid, next_innov + 2 * nid, new_act)
    if neat.node_delete_rate:
        gone = jax.vmap(lambda r, g: ops.delete_node(r, g, sp))(u[:, 3], children)
        children = jax.vmap(ops.compact)(ops.tree_select(u[:, 2] < neat.node_delete_rate, gone, children))
    children, a_id, b_id = jax.vmap(lambda r, z, g: propose_conn(r, z, g, sp, neat.conn_add_rate,
                                                                 neat.weight_init_std, neat.conn_from_outputs))(
        u[:, 8:11], draws["z"], children)
    do_conn = (a_id != EMPTY) & ~is_elite
    cid, n_conns = ops.group_ids((a_id, b_id), do_conn)
    children = jax.vmap(finish_conn)(children, do_conn, next_innov + 2 * n_nodes + cid)
    if neat.conn_delete_rate:
        gone = jax.vmap(ops.delete_conn)(u[:, 5], children)
        children = jax.vmap(ops.compact)(ops.tree_select(u[:, 4] < neat.conn_delete_rate, gone, children))
    return children, next_node + n_nodes, next_innov + 2 * n_nodes + n_conns
