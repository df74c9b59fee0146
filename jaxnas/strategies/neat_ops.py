"""The genetic operators of NEAT on padded genomes: alignment, distance, crossover, mutation, innovations.

Stanley & Miikkulainen, "Evolving Neural Networks through Augmenting Topologies", Evolutionary
Computation 10(2), 2002, Sec. 3.1-3.3. Every function here acts on one genome (or a pair) and is vmapped by
`jaxnas.strategies.neat`; see that module for the settings and for the documented deviations.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnas.spaces.neat import EMPTY, Genome, NeatSpace


def align(g: Genome, h: Genome) -> tuple[jax.Array, jax.Array]:
    """For each connection gene of `g`: the index of the gene with the same innovation in `h`, and whether
    there is one. Both genomes are sorted by innovation, so this is a binary search."""
    c = g.conn_innov.shape[-1]
    idx = jnp.minimum(jnp.searchsorted(h.conn_innov, g.conn_innov, method="compare_all"), c - 1)  # (C,)
    match = g.conn_valid & (h.conn_innov[idx] == g.conn_innov)
    return idx, match


def compatibility(g: Genome, h: Genome, c1: float, c2: float, c3: float, min_genes: int) -> jax.Array:
    """The paper's compatibility distance delta = c1 E / N + c2 D / N + c3 W (Eq. 1).

    E: excess genes (innovations beyond the other genome's largest), D: disjoint genes (the other
    unmatched ones), W: mean absolute weight difference of matching genes (disabled ones included),
    N: the larger genome's number of connection genes, set to 1 when both have fewer than `min_genes`.
    """
    idx, match = align(g, h)
    m = jnp.sum(match)
    w = jnp.sum(jnp.where(match, jnp.abs(g.conn_weight - h.conn_weight[idx]), 0.0)) / jnp.maximum(m, 1)
    ng, nh = jnp.sum(g.conn_valid), jnp.sum(h.conn_valid)
    max_g = jnp.max(jnp.where(g.conn_valid, g.conn_innov, -1))
    max_h = jnp.max(jnp.where(h.conn_valid, h.conn_innov, -1))
    excess = jnp.sum(g.conn_valid & (g.conn_innov > max_h)) + jnp.sum(h.conn_valid & (h.conn_innov > max_g))
    disjoint = ng + nh - 2 * m - excess
    n = jnp.maximum(ng, nh)
    n = jnp.where(n < min_genes, 1, n).astype(jnp.float32)
    return c1 * excess / n + c2 * disjoint / n + c3 * w


def compatibility_neat_python(g: Genome, h: Genome, c_disjoint: float, c_weight: float, num_inputs: int) -> jax.Array:
    """neat-python's distance (`DefaultGenome.distance`): a node part plus a connection part.

    Connections: (c_weight * sum over matching genes of (|dw| + [enable bits differ]) + c_disjoint * unmatched)
    / the larger connection count. Nodes (outputs and hidden): (c_weight * sum of |d bias| over matching
    nodes, plus 1 per matching node whose activation differs in a CPPN, + c_disjoint * unmatched) / the larger
    node count. Connection genes match by their (in, out) key, as neat-python's genes are keyed (a connection
    deleted and added again later has a new innovation number but the same key); a genome holds each key once.
    """
    g_in, h_in = jnp.where(g.conn_valid, g.conn_in, -1), jnp.where(h.conn_valid, h.conn_in, -2)  # empty: no match
    same = (g_in[:, None] == h_in[None, :]) & (g.conn_out[:, None] == h.conn_out[None, :])  # (C, C)
    # the one match's index as a masked sum (several times faster on XLA:CPU than an argmax over rows)
    idx, match = jnp.sum(jnp.where(same, jnp.arange(same.shape[-1]), 0), -1), jnp.any(same, -1)
    m = jnp.sum(match)
    ng, nh = jnp.sum(g.conn_valid), jnp.sum(h.conn_valid)
    diff = jnp.abs(g.conn_weight - h.conn_weight[idx]) + (g.conn_enabled != h.conn_enabled[idx])
    conn = (c_weight * jnp.sum(jnp.where(match, diff, 0.0)) + c_disjoint * (ng + nh - 2 * m)) / jnp.maximum(
        jnp.maximum(ng, nh), 1)
    n = g.node_id.shape[-1]
    g_nodes = g.node_valid & (g.node_id >= num_inputs)
    h_nodes = h.node_valid & (h.node_id >= num_inputs)
    nidx = jnp.minimum(jnp.searchsorted(h.node_id, g.node_id, method="compare_all"), n - 1)
    nmatch = g_nodes & (h.node_id[nidx] == g.node_id)
    kg, kh, km = jnp.sum(g_nodes), jnp.sum(h_nodes), jnp.sum(nmatch)
    node_diff = jnp.abs(g.node_bias - h.node_bias[nidx])
    if g.node_act is not None:  # a CPPN: a different activation adds 1 (neat-python's DefaultNodeGene.distance)
        node_diff = node_diff + (g.node_act != h.node_act[nidx])
    node = (c_weight * jnp.sum(jnp.where(nmatch, node_diff, 0.0))
            + c_disjoint * (kg + kh - 2 * km)) / jnp.maximum(jnp.maximum(kg, kh), 1)
    return conn + node


def crossover(key: jax.Array, fitter: Genome, other: Genome, disabled_rate: float) -> Genome:
    """Matching genes from either parent at random; disjoint and excess genes from the fitter parent, unchanged.

    The enable bit (paper Sec. 4.1: "a 75% chance that an inherited gene was disabled if it was disabled in
    either parent"), as NEAT's C++ `Genome::mate_multipoint` and neat-python 2.0 apply it: only to matching
    genes. A matching gene takes its weight and enable bit from the parent it is drawn from, then, if either
    parent has it disabled, is disabled with probability `disabled_rate` (0.75). With one parent disabled the
    child's gene is therefore disabled with probability 0.75 + 0.25 / 2 = 0.875, with both disabled always.
    Disjoint and excess genes are copied from the fitter parent with their enable bit: a disabled one is
    never re-enabled by crossover. Node genes follow the fitter parent; a bias present in both parents comes
    from either at random, and so, independently, does a CPPN node's activation.
    """
    return crossover_with(crossover_draws(key, (), fitter.conn_innov.shape[-1], fitter.node_id.shape[-1],
                                          fitter.node_act is not None), fitter, other, disabled_rate)


def crossover_draws(key: jax.Array, lead: tuple[int, ...], c: int, n: int, acts: bool = False
                    ) -> tuple[jax.Array, ...]:
    """The uniforms one crossover consumes, for `lead` crossovers at once (drawn population-wide: on CPU one
    large draw is several times cheaper than many small ones from split keys); `acts`: one more per node for the
    activation genes of a CPPN."""
    k1, k2, k3 = jax.random.split(key, 3)
    draws = (jax.random.uniform(k1, lead + (c,)), jax.random.uniform(k2, lead + (c,)),
             jax.random.uniform(k3, lead + (n,)))
    return draws + (jax.random.uniform(jax.random.fold_in(key, 4), lead + (n,)),) if acts else draws


def crossover_with(draws: tuple[jax.Array, ...], fitter: Genome, other: Genome, disabled_rate: float) -> Genome:
    """`crossover` with its random numbers given (see `crossover_draws`)."""
    u_parent, u_enable, u_bias = draws[:3]
    idx, match = align(fitter, other)
    take_other = match & (u_parent < 0.5)
    weight = jnp.where(take_other, other.conn_weight[idx], fitter.conn_weight)
    inherited = jnp.where(take_other, other.conn_enabled[idx], fitter.conn_enabled)  # (C,) unmatched: the fitter's
    either_disabled = match & ~(fitter.conn_enabled & other.conn_enabled[idx])
    enabled = inherited & ~(either_disabled & (u_enable < disabled_rate)) & fitter.conn_valid
    n = fitter.node_id.shape[-1]
    nidx = jnp.minimum(jnp.searchsorted(other.node_id, fitter.node_id, method="compare_all"), n - 1)
    nmatch = fitter.node_valid & (other.node_id[nidx] == fitter.node_id)
    bias = jnp.where(nmatch & (u_bias < 0.5), other.node_bias[nidx], fitter.node_bias)
    child = fitter.replace(conn_weight=weight, conn_enabled=enabled, node_bias=bias)
    if fitter.node_act is not None:
        child = child.replace(node_act=jnp.where(nmatch & (draws[3] < 0.5), other.node_act[nidx], fitter.node_act))
    return child


def perturb(values: jax.Array, mask: jax.Array, u_on: jax.Array, u: jax.Array, z: jax.Array, rate: float,
            replace_rate: float, power: float, init_std: float, clamp: float, per_gene: bool = False,
            step: jax.Array | None = None) -> jax.Array:
    """Weight (or bias) mutation from given random numbers (`u_on` () and `u` uniform, `z` standard normal,
    `u` and `z` shaped like `values`), then clamping to [-clamp, clamp].

    The paper's rule (`per_gene=False`): with probability `rate` the genome's values are mutated, each one
    then replaced by a fresh N(0, init_std) draw with probability `replace_rate` and perturbed by
    `power * step` otherwise. neat-python's rule (`per_gene=True`): each value on its own is perturbed with
    probability `rate`, else replaced with probability `replace_rate`, else left alone.
    `step` (shaped like `values`): the perturbation's standardized draws; None: `z`, i.e. a Gaussian
    N(0, power) step (neat-python's; a value is either replaced or perturbed, so one normal draw serves both);
    uniforms in [-1, 1) give the paper's uniform step U(-power, power) (C++: randposneg()*randfloat()*power).
    """
    fresh, stepped = init_std * z, values + power * (z if step is None else step)
    if per_gene:
        new = jnp.where(u < rate, stepped, jnp.where(u < rate + replace_rate, fresh, values))
        return jnp.where(mask, jnp.clip(new, -clamp, clamp), values)
    new = jnp.clip(jnp.where(u < replace_rate, fresh, stepped), -clamp, clamp)
    return jnp.where((u_on < rate) & mask, new, values)


def pick(u: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A uniformly random index where `mask` holds (from one uniform `u`), and whether there was any."""
    count = jnp.sum(mask)
    k = jnp.minimum(jnp.floor(u * count), count - 1)
    return jnp.argmax(jnp.cumsum(mask) > k), count > 0


def _compaction_source(valid: jax.Array) -> jax.Array:
    """For each output slot j, the index of the (j+1)-th valid slot (or the last slot once they run out)."""
    rank = jnp.cumsum(valid)  # (C,) valid slots up to and including each one
    return jnp.minimum(jnp.searchsorted(rank, jnp.arange(1, valid.shape[0] + 1), method="compare_all"),
                       valid.shape[0] - 1)


def compact(g: Genome) -> Genome:
    """Moves empty slots to the end, keeping the genes' order (so the lists stay sorted).

    Genes only ever leave a sorted genome by deletion, and new ones come with ids larger than every
    existing id, appended in increasing order, so a stable compaction replaces a sort (sorting is slow on
    XLA CPU); it is a gather whose indices come from a vectorised search.
    """
    n_nodes, n_conns = jnp.sum(g.node_valid), jnp.sum(g.conn_valid)
    ns, cs = _compaction_source(g.node_valid), _compaction_source(g.conn_valid)
    keep_n = jnp.arange(ns.shape[0]) < n_nodes
    keep_c = jnp.arange(cs.shape[0]) < n_conns
    return Genome(node_id=jnp.where(keep_n, g.node_id[ns], EMPTY), node_bias=g.node_bias[ns],
                  conn_in=g.conn_in[cs], conn_out=g.conn_out[cs], conn_weight=g.conn_weight[cs],
                  conn_enabled=g.conn_enabled[cs] & keep_c, conn_innov=jnp.where(keep_c, g.conn_innov[cs], EMPTY),
                  node_act=None if g.node_act is None else g.node_act[ns])


def delete_node(u: jax.Array, g: Genome, space: NeatSpace) -> Genome:
    """neat-python's node deletion (not in the paper): a random hidden node (picked with uniform `u`) and its
    connections go."""
    hidden = g.node_valid & (g.node_id >= space.first_hidden_id)
    slot, ok = pick(u, hidden)
    gone = g.node_id[slot]
    drop = ok & g.conn_valid & ((g.conn_in == gone) | (g.conn_out == gone))
    return g.replace(node_id=g.node_id.at[slot].set(jnp.where(ok, EMPTY, gone)),
                     conn_innov=jnp.where(drop, EMPTY, g.conn_innov))


def delete_conn(u: jax.Array, g: Genome) -> Genome:
    """neat-python's connection deletion (not in the paper): a random connection gene (picked with `u`) goes."""
    slot, ok = pick(u, g.conn_valid)
    return g.replace(conn_innov=g.conn_innov.at[slot].set(jnp.where(ok, EMPTY, g.conn_innov[slot])))


def reaches(g: Genome, space: NeatSpace, start: jax.Array) -> jax.Array:
    """(N,) bool: nodes reachable from node slot `start` over all connection genes (enabled or not)."""
    src, dst = space.slots(g)
    # (C, N): connection gene c ends at node slot n. A dense test per step instead of a scatter-max: the same
    # booleans, about 1.7x faster vmapped over 10,000 genomes on XLA:CPU (scatters are slow there)
    into = g.conn_valid[:, None] & (dst[:, None] == jnp.arange(space.max_nodes)[None, :])

    def body(carry):
        r, _ = carry
        hit = jnp.any(into & r[src][:, None], axis=0)
        return r | hit, r

    r0 = jnp.arange(space.max_nodes) == start
    r, _ = jax.lax.while_loop(lambda c: jnp.any(c[0] != c[1]), body, (body((r0, r0))[0], r0))
    return r


def set_where(arr: jax.Array, idx: jax.Array, value: jax.Array, on: jax.Array) -> jax.Array:
    """`arr` with `arr[idx] = value` if `on` (an index past the end changes nothing)."""
    return jnp.where(on & (jnp.arange(arr.shape[-1]) == idx), value, arr)  # elementwise: no scatter


def structural(key: jax.Array, g: Genome, space: NeatSpace, node_rate: float, conn_rate: float,
               init_std: float) -> tuple[Genome, tuple[jax.Array, ...]]:
    """`structural_with` drawing its own random numbers."""
    k_u, k_z = jax.random.split(key)
    return structural_with(jax.random.uniform(k_u, (5,)), jax.random.normal(k_z, ()), g, space, node_rate,
                           conn_rate, init_std)


def structural_with(u: jax.Array, z: jax.Array, g: Genome, space: NeatSpace, node_rate: float, conn_rate: float,
                    init_std: float, split_disabled: bool = False, from_outputs: bool = True
                    ) -> tuple[Genome, tuple[jax.Array, ...]]:
    """Add-node and add-connection on a compacted genome; new ids are left for `assign_innovations`.

    Add node (paper): a random enabled connection a->b is disabled and replaced by a->new (weight 1) and
    new->b (the old weight); the new node's bias is 0. Add connection: a random node a (any) and a random
    non-input node b, kept only if no gene a->b exists and, in a feed-forward space, a != b and b does not
    reach a (no cycle; a recurrent space allows loops and self-loops); weight N(0, init_std). One attempt
    each (as in neat-python); a mutation that finds no room is skipped. neat-python's variants: `split_disabled`
    (add node may split a disabled connection too) and `from_outputs=False` (an output is never the source a).
    Random numbers: `u` (5,) uniforms (add node?, which gene, add connection?, a, b), `z` () a standard normal.
    Returns the genome with weights and enable bits written, and the proposal
    (split_innov, split_in, split_out, add_in, add_out, node_slot, conn_slot_in, conn_slot_out, conn_slot_add).
    """
    n_nodes, n_conns = jnp.sum(g.node_valid), jnp.sum(g.conn_valid)
    # add node
    split, has_enabled = pick(u[1], g.conn_valid & (True if split_disabled else g.conn_enabled))
    do_node = (u[0] < node_rate) & has_enabled & (n_nodes < space.max_nodes) & (
        n_conns + 2 <= space.max_conns)
    c_in, c_out = n_conns, n_conns + 1
    # add connection (among the nodes that existed before this mutation)
    index = jnp.arange(space.max_nodes)
    a, _ = pick(u[3], g.node_valid & (from_outputs | (index < space.num_inputs) | (index >= space.num_io)))
    b, _ = pick(u[4], g.node_valid & (jnp.arange(space.max_nodes) >= space.num_inputs))
    a_id, b_id = g.node_id[a], g.node_id[b]
    exists = jnp.any(g.conn_valid & (g.conn_in == a_id) & (g.conn_out == b_id))
    c_new = n_conns + jnp.where(do_node, 2, 0)
    do_conn = (u[2] < conn_rate) & ~exists & (c_new < space.max_conns)
    if not space.recurrent:
        do_conn = do_conn & (a != b) & ~reaches(g, space, b)[a]
    weight = set_where(g.conn_weight, c_in, 1.0, do_node)
    weight = set_where(weight, c_out, g.conn_weight[split], do_node)
    weight = set_where(weight, c_new, init_std * z, do_conn)
    enabled = set_where(g.conn_enabled, split, False, do_node)
    enabled = set_where(set_where(enabled, c_in, True, do_node), c_out, True, do_node)
    enabled = set_where(enabled, c_new, True, do_conn)
    proposal = (jnp.where(do_node, g.conn_innov[split], EMPTY), g.conn_in[split], g.conn_out[split],
                jnp.where(do_conn, a_id, EMPTY), jnp.where(do_conn, b_id, EMPTY), n_nodes, c_in, c_out, c_new)
    return g.replace(conn_weight=weight, conn_enabled=enabled), proposal


def group_ids(keys: tuple[jax.Array, ...], valid: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Dense ids for the distinct key tuples among `valid` rows (in sorted-key order), and their count."""
    order = jnp.lexsort(tuple(reversed(keys)) + (~valid,))
    skeys = [k[order] for k in keys]
    svalid = valid[order]
    differs = jnp.zeros_like(svalid)
    for k in skeys:
        differs = differs | (k != jnp.roll(k, 1))
    first = svalid & (differs | (jnp.arange(valid.shape[0]) == 0))
    gid_sorted = jnp.cumsum(first) - 1
    gid = jnp.zeros_like(gid_sorted).at[order].set(gid_sorted)
    return gid, jnp.sum(first)


def split_numbers(split_innov: jax.Array, do_node: jax.Array, unique: bool) -> tuple[jax.Array, jax.Array]:
    """Dense numbers for the population's splits (P,) and their count: one per distinct split gene (the paper),
    or one per split (`unique`, neat-python's node counter)."""
    if unique:
        return jnp.cumsum(do_node) - 1, jnp.sum(do_node)
    return group_ids((split_innov,), do_node)


def assign_innovations(g: Genome, proposal: tuple[jax.Array, ...], next_node: jax.Array,
                       next_innov: jax.Array, new_act: jax.Array | None = None,
                       unique_splits: bool = False) -> tuple[Genome, jax.Array, jax.Array]:
    """Gives the population's structural mutations their node ids and innovation numbers.

    Within one generation, the same mutation gets the same numbers everywhere (paper Sec. 3.2): splits of
    the same connection gene share the new node id and both new innovations; additions of the same a->b
    share one innovation. `unique_splits` (neat-python: `get_new_node_key` counts every new node) gives every
    split its own node id and innovations instead. A CPPN's new node gets its genome's `new_act` (P,) activation (a random one: each
    genome draws its own, as neat-python's `activation_default = random` does). Returns the population and the
    advanced counters.
    """
    split_innov, split_in, split_out, add_a, add_b, node_slot, c_in, c_out, c_new = proposal  # each (P,)
    do_node, do_conn = split_innov != EMPTY, add_a != EMPTY
    nid, n_new_nodes = split_numbers(split_innov, do_node, unique_splits)
    cid, n_new_conns = group_ids((add_a, add_b), do_conn)
    node_id = next_node + nid
    innov_in = next_innov + 2 * nid
    innov_out = innov_in + 1
    innov_add = next_innov + 2 * n_new_nodes + cid

    def put(arr, cols, vals, on):
        """Row i gets arr[i, cols[i]] = vals[i] where on[i]; elementwise (a scatter is slower on XLA CPU)."""
        hit = on[:, None] & (jnp.arange(arr.shape[-1])[None, :] == cols[:, None])  # (P, C)
        return jnp.where(hit, jnp.broadcast_to(jnp.asarray(vals, arr.dtype), on.shape)[:, None], arr)

    g = g.replace(
        node_id=put(g.node_id, node_slot, node_id, do_node),
        node_bias=put(g.node_bias, node_slot, 0.0, do_node),
        conn_in=put(put(put(g.conn_in, c_in, split_in, do_node), c_out, node_id, do_node),
                    c_new, add_a, do_conn),
        conn_out=put(put(put(g.conn_out, c_in, node_id, do_node), c_out, split_out, do_node),
                     c_new, add_b, do_conn),
        conn_innov=put(put(put(g.conn_innov, c_in, innov_in, do_node), c_out, innov_out, do_node),
                       c_new, innov_add, do_conn),
    )
    if g.node_act is not None:
        if new_act is None:
            raise ValueError("new_act: a CPPN population (genomes with node_act) needs each genome's activation for "
                             "a new node")
        g = g.replace(node_act=put(g.node_act, node_slot, new_act, do_node))
    # New ids exceed every existing one and fill the first free slots in increasing order: still sorted.
    return g, next_node + n_new_nodes, next_innov + 2 * n_new_nodes + n_new_conns


def prefix(g: Genome, conns: int, nodes: int) -> Genome:
    """The first `conns` connection slots and `nodes` node slots of `g` (leading axes kept).

    Genomes keep their genes first and their empty slots last, so a prefix at least as long as a genome's gene
    count holds every gene: alignment, distance and evaluation on it equal those on the whole genome, with
    fewer empty slots to compare (see `Neat.size_tiers`)."""
    cut_c, cut_n = lambda x: x[..., :conns], lambda x: x[..., :nodes]  # noqa: E731
    return Genome(node_id=cut_n(g.node_id), node_bias=cut_n(g.node_bias), conn_in=cut_c(g.conn_in),
                  conn_out=cut_c(g.conn_out), conn_weight=cut_c(g.conn_weight), conn_enabled=cut_c(g.conn_enabled),
                  conn_innov=cut_c(g.conn_innov), node_act=None if g.node_act is None else cut_n(g.node_act))


def tree_select(on: jax.Array, a: Genome, b: Genome) -> Genome:
    """Row-wise `a if on else b` for genomes with leading axes matching `on`'s shape (a scalar for one genome)."""
    return jax.tree.map(lambda x, y: jnp.where(on.reshape(on.shape + (1,) * (x.ndim - on.ndim)), x, y), a, b)
