"""NEAT speciation (paper Sec. 3.3): compatibility distance, and assigning each genome to a species.

Stanley & Miikkulainen, "Evolving Neural Networks through Augmenting Topologies", Evolutionary
Computation 10(2):99-127, 2002. The distance is the paper's Eq. 1 (or neat-python's, `compatibility=
"neat-python"`), computed on padded genomes by `neat_ops`; a genome joins the first (oldest) species whose
representative is within the threshold, exactly as the paper's sequential rule, run as one loop over
species on the smallest size tier that holds every gene.

Deviation (documented with the others in `jaxnas.strategies.neat`): species live in `max_species` slots;
when all are taken, a genome compatible with none joins the nearest species (counted as `overflow`).

`NeatSpeciation` is a mixin of `jaxnas.strategies.neat.Neat`: its methods read the settings of the `Neat`
they are called on.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxnas.spaces.neat import Genome
from jaxnas.strategies import neat_ops as ops
from jaxnas.strategies.neat_state import BIG, NeatState


class NeatSpeciation:
    """Speciation methods of `Neat` (its settings: `space`, `max_species`, the compatibility coefficients)."""

    def distance(self, g: Genome, h: Genome) -> jax.Array:
        """Compatibility distance between two genomes (paper Eq. 1) with this strategy's coefficients."""
        if self.compatibility == "neat-python":
            return ops.compatibility_neat_python(g, h, self.disjoint_coefficient, self.weight_coefficient,
                                                 self.space.num_inputs)
        return ops.compatibility(g, h, self.excess_coefficient, self.disjoint_coefficient, self.weight_coefficient,
                                 self.normalize_min_genes)

    def size_tiers(self) -> tuple[tuple[int, int], ...]:
        """(connection, node) slot counts the population-wide distance computations may be cut to: 8, 16, 32, ...
        up to the capacities.

        Speciation runs on the smallest tier holding every gene of every genome and live representative (picked
        at run time with `lax.switch`; genes come first in a genome, so the cut loses none and the distances
        are unchanged). Alignment compares every slot with every slot, so genomes much smaller than their
        capacity would otherwise pay mostly for comparing empty slots."""
        sp, out, k = self.space, [], 8
        while not out or out[-1] != (sp.max_conns, sp.max_nodes):
            out.append((min(sp.max_conns, k), min(sp.max_nodes, k)))
            k *= 2
        return tuple(out)

    def size_tier(self, genomes: Genome, rep: Genome, alive: jax.Array) -> jax.Array:
        """Index into `size_tiers` of the smallest tier holding every gene of `genomes` and of the live `rep`s."""
        most_c = jnp.maximum(jnp.max(jnp.sum(genomes.conn_valid, -1)),
                             jnp.max(jnp.where(alive, jnp.sum(rep.conn_valid, -1), 0)))
        most_n = jnp.maximum(jnp.max(jnp.sum(genomes.node_valid, -1)),
                             jnp.max(jnp.where(alive, jnp.sum(rep.node_valid, -1), 0)))
        return sum(((c < most_c) | (n < most_n)).astype(jnp.int32) for c, n in self.size_tiers()[:-1])

    def _batch_max(self, x: jax.Array) -> jax.Array:
        """`x`, or its maximum over the runs batched along `batch_axis`. Under `vmap` a `lax.switch` or `lax.cond`
        on a per-run value becomes a select that computes every branch; on a value shared by the batch it
        stays one branch. Taking the larger size tier for every run changes no result (see `size_tiers`)."""
        return x if self.batch_axis is None else jax.lax.pmax(x, self.batch_axis)

    def _threshold(self, state: NeatState) -> jax.Array | float:
        """The compatibility threshold of this speciation: the setting, or the state's moving one."""
        return state.threshold if self.target_species else self.compatibility_threshold

    def _steer_threshold(self, threshold: jax.Array, alive: jax.Array) -> jax.Array:
        """The next generation's threshold: one `threshold_step` towards `target_species` species (more species
        than the target raise it, fewer lower it), at least `threshold_step`."""
        if not self.target_species:
            return threshold
        n = jnp.sum(alive)
        move = jnp.where(n > self.target_species, 1.0, jnp.where(n < self.target_species, -1.0, 0.0))
        return jnp.maximum(threshold + self.threshold_step * move, self.threshold_step).astype(jnp.float32)

    def _speciate(self, state: NeatState, genomes: Genome) -> tuple[NeatState, jax.Array]:
        """Each genome joins the first (oldest) species whose representative is within the threshold; the
        others found new species in population order, exactly as the paper's sequential rule would.

        One loop: the existing species are visited oldest first, each taking every still unassigned genome
        within the threshold of its representative; then the first unassigned genome founds a new species
        and takes its compatible unassigned genomes, and so on. A genome therefore joins the first
        compatible species in creation order, as in the sequential rule (a later leader is never compatible
        with an earlier one, or it would have joined it). Cost: one pass over the population per species,
        on the smallest `size_tiers` entry that holds every gene.
        """
        s, p = self.max_species, self.population_size
        assign = self._assign_species if self.speciation == "first" else self._assign_closest
        branches = [functools.partial(assign, tier=tier) for tier in self.size_tiers()]
        if len(branches) == 1:
            species, alive, rep, order, nxt = branches[0](state, genomes)
        else:
            tier = self._batch_max(self.size_tier(genomes, state.rep, state.alive))
            species, alive, rep, order, nxt = jax.lax.switch(tier, branches, state, genomes)
        overflow = species < 0  # no free slot was left for them: they join the nearest species (see below)
        species = jax.lax.cond(self._batch_max(jnp.any(overflow).astype(jnp.int32)) > 0,
                               lambda: jnp.where(overflow, self._nearest_species(genomes, rep, alive), species),
                               lambda: species)
        counts = jnp.bincount(species, length=s)
        alive = alive & (counts > 0)
        born = alive & ~state.alive
        state = state.replace(
            genomes=genomes, species=species, fitness=jnp.full(p, -jnp.inf, jnp.float32), told=jnp.array(False), rep=rep,
            alive=alive, sp_order=jnp.where(alive, order, BIG), sp_best=jnp.where(born | ~alive, -jnp.inf, state.sp_best),
            sp_since=jnp.where(born | ~alive, 0, state.sp_since), next_species=nxt,
            threshold=self._steer_threshold(state.threshold, alive))
        return state, jnp.sum(overflow)

    def _assign_species(self, state: NeatState, genomes: Genome, tier: tuple[int, int]) -> tuple[jax.Array, ...]:
        """The loop of `_speciate`, its distances computed on the first `tier` (connection, node) slots.
        Returns species (-1: left over when every slot is taken), alive, rep, order, next species number."""
        s, t, p = self.max_species, self._threshold(state), self.population_size
        cut = lambda g: ops.prefix(g, *tier)  # noqa: E731
        view = cut(genomes)
        visit = jnp.argsort(jnp.where(state.alive, state.sp_order, BIG))  # existing species, oldest first
        n_old = jnp.sum(state.alive)

        def cond(carry):
            k, species, alive, *_ = carry
            return jnp.any(species < 0) & ((k < n_old) | ~jnp.all(alive))

        def body(carry):
            k, species, alive, rep, order, nxt = carry
            existing = k < n_old
            i = jnp.argmax(species < 0)
            slot = jnp.where(existing, visit[jnp.minimum(k, s - 1)], jnp.argmax(~alive))
            leader = jax.tree.map(lambda r, x: jnp.where(existing, r[slot], x[i]), rep, genomes)
            d = jax.vmap(self.distance, in_axes=(0, None))(view, cut(leader))  # (P,)
            join = (species < 0) & ((d < t) | (~existing & (jnp.arange(p) == i)))
            rep = jax.tree.map(lambda r, x: r.at[slot].set(x), rep, leader)
            order = order.at[slot].set(jnp.where(existing, order[slot], nxt))
            return (k + 1, jnp.where(join, slot, species), alive.at[slot].set(True), rep, order,
                    nxt + jnp.where(existing, 0, 1))

        init = (jnp.array(0), jnp.full(p, -1, jnp.int32), state.alive, state.rep, state.sp_order, state.next_species)
        _, species, alive, rep, order, nxt = jax.lax.while_loop(cond, body, init)
        return species, alive, rep, order, nxt

    def _assign_closest(self, state: NeatState, genomes: Genome, tier: tuple[int, int]) -> tuple[jax.Array, ...]:
        """neat-python 2.0's speciation (`DefaultSpeciesSet.speciate`), same returns as `_assign_species`.

        Each existing species, oldest first, takes as its new representative the not yet placed genome closest to
        its old one (no threshold); every other genome joins the species with the closest representative within
        the threshold, the candidates being the existing species and the species founded by genomes before it in
        population order (ties: the earlier species); a genome with none founds a species. The founders are found
        in population order, each pass updating the later genomes' closest candidate, which gives the sequential
        rule's result (a genome's candidates are exactly the founders before it)."""
        t, p = self._threshold(state), self.population_size
        cut = lambda g: ops.prefix(g, *tier)  # noqa: E731
        view = cut(genomes)
        dist = lambda one: jax.vmap(self.distance, in_axes=(0, None))(view, cut(one))  # noqa: E731  (P,)
        visit = jnp.argsort(jnp.where(state.alive, state.sp_order, BIG))  # existing species, oldest first
        n_old = jnp.sum(state.alive)
        idx = jnp.arange(p)

        def new_rep(carry):  # species visit[k] takes the unplaced genome closest to its old representative
            k, species, alive, rep = carry
            slot = visit[k]
            live = jnp.any(species < 0)
            i = jnp.argmin(jnp.where(species < 0, dist(jax.tree.map(lambda r: r[slot], rep)), jnp.inf))
            rep = jax.tree.map(lambda r, x: r.at[slot].set(jnp.where(live, x[i], r[slot])), rep, genomes)
            return k + 1, jnp.where(live & (idx == i), slot, species), alive.at[slot].set(live), rep

        # one pass per existing species (a loop to n_old, not to the S slots: most slots are empty)
        init = (jnp.array(0), jnp.full(p, -1, jnp.int32), state.alive, state.rep)
        _, species, alive, rep = jax.lax.while_loop(lambda c: c[0] < n_old, new_rep, init)

        def closest(carry):  # every unplaced genome's closest existing species within the threshold
            k, best_d, best_s = carry
            d = jnp.where(species < 0, dist(jax.tree.map(lambda r: r[visit[k]], rep)), jnp.inf)
            better = (d < t) & (d < best_d)
            return k + 1, jnp.where(better, d, best_d), jnp.where(better, visit[k], best_s)

        init = (jnp.array(0), jnp.full(p, jnp.inf), jnp.full(p, -1, jnp.int32))
        _, best_d, best_s = jax.lax.while_loop(lambda c: c[0] < n_old, closest, init)

        def undecided(species, best_s):
            return (species < 0) & (best_s < 0)

        def cond(carry):
            species, best_d, best_s, alive, *_ = carry
            return jnp.any(undecided(species, best_s)) & ~jnp.all(alive)

        def found(carry):  # the first genome without a candidate founds a species; later genomes compare with it
            species, best_d, best_s, alive, rep, order, nxt = carry
            i = jnp.argmax(undecided(species, best_s))
            slot = jnp.argmax(~alive)
            leader = jax.tree.map(lambda x: x[i], genomes)
            d = jnp.where((species < 0) & (idx > i), dist(leader), jnp.inf)
            better = (d < t) & (d < best_d)
            return (species.at[i].set(slot), jnp.where(better, d, best_d), jnp.where(better, slot, best_s),
                    alive.at[slot].set(True), jax.tree.map(lambda r, x: r.at[slot].set(x), rep, leader),
                    order.at[slot].set(nxt), nxt + 1)

        init = (species, best_d, best_s, alive, rep, state.sp_order, state.next_species)
        species, _, best_s, alive, rep, order, nxt = jax.lax.while_loop(cond, found, init)
        return jnp.where(species < 0, best_s, species), alive, rep, order, nxt

    def _nearest_species(self, genomes: Genome, rep: Genome, alive: jax.Array) -> jax.Array:
        """(P,) the live species with the nearest representative (a documented deviation, for the genomes that
        found every species slot taken)."""
        s, p = self.max_species, self.population_size

        # One species at a time: a (P, S) vmap would hold P x S x C x C alignment temporaries (GBs at 10,000).
        def one(k, carry):
            best_d, best = carry
            d = jax.vmap(self.distance, in_axes=(0, None))(genomes, jax.tree.map(lambda r: r[k], rep))  # (P,)
            better = alive[k] & (d < best_d)
            return jnp.where(better, d, best_d), jnp.where(better, k, best)

        return jax.lax.fori_loop(0, s, one, (jnp.full(p, jnp.inf), jnp.zeros(p, jnp.int32)))[1]
