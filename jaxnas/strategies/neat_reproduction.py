"""NEAT reproduction (paper Sec. 3.3, 4.1): offspring quotas, parent selection, crossover and mutation.

Stanley & Miikkulainen, "Evolving Neural Networks through Augmenting Topologies", Evolutionary
Computation 10(2):99-127, 2002. Offspring are allotted in proportion to each species' summed adjusted
fitness (explicit fitness sharing) with largest-remainder rounding; stagnant species get none; the top
`survival_threshold` of a species may reproduce; species champions are copied unchanged; children come
from crossover (`neat_ops.crossover_with`) or mutation alone, then weight, bias and structural mutation
(`neat_ops.perturb`, `neat_ops.structural_with`), with new genes numbered once per generation
(`neat_ops.assign_innovations`).

Deviations (documented with the others in `jaxnas.strategies.neat`): fitness below 0 is shifted so the worst
genome has 0; the best species is never removed for stagnation (`species_elitism`); there is no minimum
species size; the interspecies partner is drawn from the top `survival_threshold` of the whole population;
optional node/connection deletion (neat-python extensions, off by default).

`NeatReproduction` is a mixin of `jaxnas.strategies.neat.Neat`: its methods read the settings of the `Neat`
they are called on.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxnas.spaces.neat import EMPTY, Genome
from jaxnas.strategies import neat_ops as ops
from jaxnas.strategies.neat_python_mutation import mutate_in_sequence
from jaxnas.strategies.neat_state import BIG, NeatState


class NeatReproduction:
    """Reproduction methods of `Neat` (its settings: population size, selection and mutation rates)."""

    def offspring(self, state: NeatState) -> jax.Array:
        """(S,) offspring per species: proportional to the summed adjusted fitness f_i / |species| (`spawn=
        "shared"`), or by neat-python's rule (`spawn="neat-python"`, `_neat_python_spawn`)."""
        p, s = self.population_size, self.max_species
        f = state.fitness
        finite = jnp.isfinite(f)
        low = jnp.minimum(jnp.min(jnp.where(finite, f, jnp.inf)), 0.0)
        f0 = jnp.where(finite, f - low, 0.0)
        n = jnp.bincount(state.species, length=s)
        adjusted = jax.ops.segment_sum(f0, state.species, num_segments=s) / jnp.maximum(n, 1)
        # rank of each live species by its best fitness ever (0 = best; dead slots rank after every live one)
        # protects the top ones from stagnation
        rank = jnp.argsort(jnp.lexsort((-state.sp_best, ~state.alive)))
        live = state.alive & (n > 0)
        eligible = live & ((state.sp_since < self.max_stagnation) | (rank < self.species_elitism))
        if self.population_stagnation:  # the paper: only the two best species reproduce, refocusing the search
            refocus = state.pop_since >= self.population_stagnation
            eligible = jnp.where(refocus, live & (rank < 2), eligible)
        eligible = jnp.where(jnp.any(eligible), eligible, live & (rank == 0))  # never let the population die out
        if self.spawn == "neat-python":
            return self._neat_python_spawn(state, n, eligible)
        share = jnp.where(eligible, adjusted, 0.0)
        share = jnp.where(jnp.sum(share) > 0, share, jnp.where(eligible, n, 0).astype(jnp.float32))
        quota = p * share / jnp.sum(share)
        base = jnp.floor(quota).astype(jnp.int32)
        extra = p - jnp.sum(base)
        frac_rank = jnp.argsort(jnp.argsort(-jnp.where(eligible, quota - base, -1.0)))
        return base + (frac_rank < extra).astype(jnp.int32)

    def _neat_python_spawn(self, state: NeatState, n: jax.Array, eligible: jax.Array) -> jax.Array:
        """neat-python 2.0's offspring counts (`DefaultReproduction.reproduce`, `compute_spawn`,
        `_adjust_spawn_exact`) for the `eligible` (not stagnant) species of sizes `n`: each species' mean fitness
        scaled to [0, 1] over the eligible species' members (range at least 1); a target in proportion to it, at
        least m = max(`min_species_size`, `elitism`); each species moves half way from its size towards its target
        (rounded half to even, at least one step); the counts are scaled to the population size, rounded, held
        at m, then made to sum exactly to it: round robin, +1 from the smallest species or -1 from the largest
        above m (ties: lower species fitness first, neat-python's order). Where neat-python raises (one pass of
        -1 from each species above m does not reach the population size), we go on: more passes, then below m,
        largest first."""
        p, s = self.population_size, self.max_species
        f = state.fitness
        m = max(self.min_species_size, self.elitism)
        member = eligible[state.species] & jnp.isfinite(f)
        lo = jnp.min(jnp.where(member, f, jnp.inf))
        hi = jnp.max(jnp.where(member, f, -jnp.inf))
        mean = jax.ops.segment_sum(jnp.where(member, f, 0.0), state.species, num_segments=s) / jnp.maximum(n, 1)
        af = jnp.where(eligible, (mean - lo) / jnp.maximum(1.0, hi - lo), 0.0)
        total = jnp.sum(af)
        target = jnp.where(total > 0, jnp.maximum(m, af / total * p), m)  # the unselected branch's NaN is dropped
        d = (target - n) * 0.5
        c = jnp.round(d)
        spawn = jnp.where(eligible, n + jnp.where(c != 0, c, jnp.sign(d)), 0.0)
        spawn = jnp.where(eligible, jnp.maximum(m, jnp.round(spawn * (p / jnp.sum(spawn)))), 0).astype(jnp.int32)
        sp_fit = jax.ops.segment_max(jnp.where(member, f, -jnp.inf), state.species, num_segments=s)
        diff = p - jnp.sum(spawn)
        k = jnp.sum(eligible)
        up = jnp.argsort(jnp.lexsort((sp_fit, spawn, ~eligible)))  # rank: smallest first, ties lower fitness
        short = jnp.maximum(diff, 0)
        spawn = spawn + jnp.where(eligible, short // k + (up < short % k), 0)
        order = jnp.lexsort((sp_fit, -spawn, ~eligible))  # largest first, ties lower fitness; fixed, as neat-python's

        def shrink(floor):
            def body(carry):
                spawn, extra = carry
                can = (eligible & (spawn > floor))[order]
                take = can & (jnp.cumsum(can) <= extra)
                return spawn.at[order].add(-take.astype(jnp.int32)), extra - jnp.sum(take)

            return lambda spawn: jax.lax.while_loop(
                lambda c: (c[1] > 0) & jnp.any(eligible & (c[0] > floor)), body, (spawn, jnp.sum(spawn) - p))[0]

        return shrink(0)(shrink(m)(spawn))

    def _next_generation(self, key: jax.Array, state: NeatState) -> NeatState:
        p, s = self.population_size, self.max_species
        k_rep, k_par, k_cross, k_mut = jax.random.split(key, 4)
        offspring = self.offspring(state)  # (S,)
        if self.population_stagnation:
            state = state.replace(pop_since=jnp.where(state.pop_since >= self.population_stagnation, 0, state.pop_since))
        f, species = state.fitness, state.species
        n = jnp.bincount(species, length=s)
        order = jnp.lexsort((-f, species))  # members grouped by species, fittest first
        m_start = jnp.cumsum(n) - n
        pool = jnp.ceil(self.survival_threshold * n).astype(jnp.int32)
        pool = jnp.clip(jnp.maximum(pool, self.min_parents), 1, jnp.maximum(n, 1))
        elites = jnp.where(n >= self.elitism_min_species_size, jnp.minimum(jnp.minimum(self.elitism, n), offspring), 0)
        if self.keep_champion:  # the authors' HyperNEAT code (ForceCopyGenerationChampion): copied in any species
            champion_sp = jnp.arange(s) == species[jnp.argmax(f)]
            elites = jnp.where(champion_sp, jnp.maximum(elites, jnp.minimum(1, offspring)), elites)
        ends = jnp.cumsum(offspring)
        child_sp = jnp.minimum(jnp.searchsorted(ends, jnp.arange(p), side="right", method="compare_all"), s - 1)  # (P,)
        rank_in = jnp.arange(p) - (ends - offspring)[child_sp]
        k1, k2, k3, k4 = jax.random.split(k_par, 4)
        pick1 = jax.random.randint(k1, (p,), 0, BIG) % pool[child_sp]
        pick2 = jax.random.randint(k2, (p,), 0, BIG) % pool[child_sp]
        is_elite = rank_in < elites[child_sp]
        parent1 = order[m_start[child_sp] + jnp.where(is_elite, rank_in, pick1)]
        parent2 = order[m_start[child_sp] + pick2]
        if self.interspecies_rate:
            by_fitness = jnp.argsort(-f)
            global_pool = max(1, math.ceil(self.survival_threshold * p))
            other = by_fitness[jax.random.randint(k3, (p,), 0, global_pool)]
            parent2 = jnp.where(jax.random.bernoulli(k4, self.interspecies_rate, (p,)), other, parent2)
        do_cross = jax.random.bernoulli(jax.random.fold_in(k_cross, 1), self.crossover_rate, (p,)) & ~is_elite
        # A child without crossover (or an elite) is its own fitter parent: g1 below is then parent1 itself.
        parent2 = jnp.where(do_cross, parent2, parent1)
        swap = f[parent2] > f[parent1]
        fitter, weaker = jnp.where(swap, parent2, parent1), jnp.where(swap, parent1, parent2)
        g1 = jax.tree.map(lambda x: x[fitter], state.genomes)
        g2 = jax.tree.map(lambda x: x[weaker], state.genomes)
        sp = self.space
        draws = ops.crossover_draws(k_cross, (p,), sp.max_conns, sp.max_nodes, sp.activations is not None)
        crossed = jax.vmap(ops.crossover_with, in_axes=(0, 0, 0, None))(draws, g1, g2, self.disabled_gene_rate)
        children = ops.tree_select(do_cross, crossed, g1)
        draws = self.mutation_draws(k_mut, p)
        if self.structure_first:  # neat-python: add node, delete node, add connection, delete connection in turn,
            # then the weights and biases of every gene, new ones too
            children, next_node, next_innov = mutate_in_sequence(self, draws, children, is_elite, state.next_node,
                                                                 state.next_innov)
            children = jax.vmap(self._attributes)(draws, children)
        else:
            children, proposal = jax.vmap(self._mutate)(draws, children)
            no_new = lambda x: jnp.where(is_elite, EMPTY, x)  # noqa: E731  (elites are copied: they propose nothing)
            proposal = (no_new(proposal[0]), *proposal[1:3], no_new(proposal[3]), no_new(proposal[4]), *proposal[5:])
            children, next_node, next_innov = ops.assign_innovations(
                children, proposal, state.next_node, state.next_innov, draws.get("new_act"), self.split_ids == "unique")
        children = ops.tree_select(is_elite, g1, children)  # elites are copied unchanged
        keep = state.alive & (offspring > 0)
        if self.speciation == "first":  # new representatives: a random member of each species (paper Sec. 3.3)
            u = jax.random.uniform(k_rep, (p,))
            best_u = jax.ops.segment_max(u, species, num_segments=s)
            member = jnp.argmax((species[None, :] == jnp.arange(s)[:, None]) & (u[None, :] == best_u[:, None]), 1)
            rep = jax.tree.map(lambda old, x: jnp.where(keep.reshape((-1,) + (1,) * (x.ndim - 1)), x[member], old),
                               state.rep, state.genomes)
        else:  # neat-python: the old representative stays, to pick its successor among the children
            rep = state.rep
        state = state.replace(rep=rep, alive=keep, next_node=next_node, next_innov=next_innov)
        return self._speciate(state, children)[0]

    def mutation_draws(self, key: jax.Array, p: int) -> dict[str, jax.Array]:
        """Every random number `_mutate` consumes, for `p` genomes, drawn population-wide (on the CPU one
        large draw costs several times less than many small ones from split keys)."""
        sp = self.space
        k = jax.random.split(key, 9)
        draws = {"u": jax.random.uniform(k[0], (p, 11)), "z": jax.random.normal(k[1], (p,)),
                 "u_w": jax.random.uniform(k[2], (p, sp.max_conns)), "z_w": jax.random.normal(k[3], (p, sp.max_conns)),
                 "u_b": jax.random.uniform(k[4], (p, sp.max_nodes)), "z_b": jax.random.normal(k[5], (p, sp.max_nodes))}
        if self.enable_mutate_rate:
            draws["u_e"] = jax.random.uniform(k[6], (p, sp.max_conns))
        if self.weight_perturbation == "uniform":  # the steps; Gaussian steps reuse z_w / z_b
            draws["s_w"] = jax.random.uniform(k[7], (p, sp.max_conns), minval=-1.0, maxval=1.0)
            draws["s_b"] = jax.random.uniform(k[8], (p, sp.max_nodes), minval=-1.0, maxval=1.0)
        if sp.activations is not None:  # a CPPN: new nodes' functions, and the redraws
            ka = jax.random.split(jax.random.fold_in(key, 9), 3)
            n_acts = len(sp.activations)
            draws["new_act"] = jax.random.randint(ka[0], (p,), 0, n_acts)
            draws["u_a"] = jax.random.uniform(ka[1], (p, sp.max_nodes))
            draws["k_a"] = jax.random.randint(ka[2], (p, sp.max_nodes), 0, n_acts)
        return draws

    def _mutate(self, r: dict[str, jax.Array], g: Genome) -> tuple[Genome, tuple[jax.Array, ...]]:
        """The paper's order: weight, bias and enable-bit mutation, optional deletions, then the structural
        proposals (`structure_first`, neat-python's order, is `neat_python_mutation.mutate_in_sequence`).

        `r`: one genome's slice of `mutation_draws`; `r["u"]` columns: weights on, biases on, delete node
        on, which node, delete connection on, which connection, then the five of `ops.structural_with`.
        """
        g = self._deletions(r, self._attributes(r, g))
        return ops.structural_with(r["u"][6:], r["z"], g, self.space, self.node_add_rate, self.conn_add_rate,
                                   self.weight_init_std, self.split_disabled, self.conn_from_outputs)

    def _attributes(self, r: dict[str, jax.Array], g: Genome) -> Genome:
        """Weight, bias and enable-bit mutation (`_mutate`'s draws)."""
        u = r["u"]
        weight = ops.perturb(g.conn_weight, g.conn_valid, u[0], r["u_w"], r["z_w"], self.weight_mutate_rate,
                             self.weight_replace_rate, self.weight_mutate_power, self.weight_init_std,
                             self.weight_clamp, self.per_gene_mutation, r.get("s_w"))
        hidden_or_out = g.node_valid & (jnp.arange(self.space.max_nodes) >= self.space.num_inputs)
        bias = ops.perturb(g.node_bias, hidden_or_out, u[1], r["u_b"], r["z_b"], self.bias_mutate_rate,
                           self.bias_replace_rate, self.bias_mutate_power, self.bias_init_std, self.weight_clamp,
                           self.per_gene_mutation, r.get("s_b"))
        g = g.replace(conn_weight=weight, node_bias=bias)
        if self.activation_mutate_rate:  # each hidden node's function redrawn (perhaps the same) at the rate; the
            # outputs keep theirs (HyperNEAT's signed output; neat-python would redraw them too)
            hidden = g.node_valid & (g.node_id >= self.space.first_hidden_id)
            g = g.replace(node_act=jnp.where(hidden & (r["u_a"] < self.activation_mutate_rate), r["k_a"], g.node_act))
        if self.enable_mutate_rate:
            g = g.replace(conn_enabled=g.conn_enabled ^ (g.conn_valid & (r["u_e"] < self.enable_mutate_rate)))
        return g

    def _deletions(self, r: dict[str, jax.Array], g: Genome) -> Genome:
        """The optional node and connection deletions (neat-python's), then the genes compacted."""
        u = r["u"]
        if self.node_delete_rate or self.conn_delete_rate:
            g = ops.tree_select(u[2] < self.node_delete_rate, ops.delete_node(u[3], g, self.space), g)
            g = ops.tree_select(u[4] < self.conn_delete_rate, ops.delete_conn(u[5], g), g)
            g = ops.compact(g)
        return g
