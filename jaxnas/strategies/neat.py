"""NEAT: NeuroEvolution of Augmenting Topologies, a whole generation as one compiled pure function.

Stanley & Miikkulainen, "Evolving Neural Networks through Augmenting Topologies", Evolutionary
Computation 10(2):99-127, 2002. Genomes are padded arrays (`jaxnas.spaces.neat`), so the population
stacks; evaluation is the caller's vmapped function; speciation and reproduction are vmapped here.

Ask/tell, like every strategy (`jaxnas.strategies.base`), with explicit keys and a state pytree:

    state = neat.init(key)
    genomes, state = neat.ask(key, state)        # the generation to evaluate, already speciated
    state, metrics = neat.tell(state, genomes, fitness)

`ask` breeds the next generation from the last told fitness (nothing to breed on the first call).

Paper defaults (Sec. 4.1, the XOR and pole-balancing settings) unless noted:
c1 = c2 = 1.0, c3 = 0.4, delta_t = 3.0; N = 1 when both genomes have fewer than 20 genes; a species that
has not improved for 15 generations gets no offspring; the champion of each species with more than five
members is copied unchanged; an 80% chance of a genome's weights being mutated, each weight then
replaced by a new random value with 10% chance or "uniformly perturbed" otherwise (Sec. 4.1; C++:
randposneg()*randfloat()*power), here U(-power, power) for weights and biases (`weight_perturbation="uniform"`;
"gaussian" gives neat-python's N(0, power) step; on XOR with the paper's defaults seeds 0-19 chose uniform, 18 of
20 solved against Gaussian's 14, and seeds 20-39, not used to choose, gave the same 18 against 14:
results/neat_xor_quality.json); "a 75% chance that an inherited gene was
disabled if it was disabled in either parent" (Sec. 4.1), applied as NEAT's C++ (`Genome::mate_multipoint`)
and neat-python 2.0 apply it: to matching genes only, which otherwise keep the enable bit of the parent
they are drawn from (so one disabled parent disables the child's gene with 87.5% chance, two always);
disjoint and excess genes are copied from the fitter parent unchanged, a disabled one stays disabled
(`neat_ops.crossover`); 25% of offspring come from mutation without crossover; an
interspecies mating rate of 0.001; add-node 0.03 and add-connection 0.05; the steepened sigmoid. If the
whole population has not improved for 20 generations, only the two best species reproduce. For the
double pole without velocities the paper uses a population of 1,000, c3 = 3.0, delta_t = 4.0 and
add-connection 0.3 (`experiments/configs/neat.py:DPNV`), with recurrent networks (`NeatSpace(recurrent=True)`:
add-connection may then close loops, see `neat_ops.structural_with`).

Where the paper is silent we take neat-python's values: perturbation power 0.5 (the uniform step's half-width;
the paper gives no magnitude), new weights N(0, 1),
weights clamped to [-30, 30], the top 20% of each species may reproduce, and offspring are allotted in
proportion to the species' summed adjusted fitness (the paper's rule) with largest-remainder rounding.

Deliberate deviations, each documented where it happens:
* every non-input node has a bias gene mutated like the weights (the paper uses a bias input);
* crossover keeps the fitter parent's structure even when fitnesses tie (the paper mixes both parents'
  disjoint genes then, which can close a cycle in a feed-forward network; neat-python does the same as us);
* fitness must be >= 0 for the paper's sharing; lower fitness is shifted so the worst genome has 0;
* species live in `max_species` slots: when all are taken, a genome compatible with none joins the nearest
  species (counted in the metrics as `overflow`);
* the best species is never removed for stagnation (`species_elitism`, as in neat-python), so the
  population cannot go extinct;
* optional node/connection deletion (neat-python extensions, off by default);
* there is no minimum species size: a species whose quota rounds to zero dies out (neat-python keeps at
  least two members per species); if no species is eligible at all, the best one breeds alone;
* the interspecies partner is drawn from the top `survival_threshold` of the whole population (it may
  belong to the same species; the paper does not say how the partner is chosen);
* biases are clamped with `weight_clamp`, as neat-python's XOR settings clamp both to [-30, 30].
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
from flax import struct

from jaxnas.common.errors import check, check_positive, check_range
from jaxnas.spaces.neat import EMPTY, Genome, NeatSpace
from jaxnas.strategies import neat_ops as ops
from jaxnas.strategies.base import sanitize_fitness

BIG = jnp.iinfo(jnp.int32).max
COMPATIBILITY = ("paper", "neat-python")
PERTURBATIONS = ("gaussian", "uniform")


@struct.dataclass
class NeatState:
    genomes: Genome  # (P, ...) the current generation
    species: jax.Array  # (P,) int32 species slot of each genome
    fitness: jax.Array  # (P,) float32 told fitness (-inf before `tell`)
    told: jax.Array  # () bool: fitness of `genomes` has been told
    rep: Genome  # (S, ...) each species' representative
    alive: jax.Array  # (S,) bool
    sp_order: jax.Array  # (S,) int32 creation number ("first species" = smallest)
    sp_best: jax.Array  # (S,) float32 best fitness the species ever had
    sp_since: jax.Array  # (S,) int32 generations since it improved
    pop_best: jax.Array  # () float32 best fitness ever
    pop_since: jax.Array  # () int32 generations since it improved
    best: Genome  # the best genome ever
    next_node: jax.Array  # () int32 next hidden node id
    next_innov: jax.Array  # () int32 next innovation number
    next_species: jax.Array  # () int32
    generation: jax.Array  # () int32 generations told


@dataclasses.dataclass(frozen=True)
class Neat:
    """NEAT settings. Structural ones (sizes) are static; the rest are the paper's defaults."""

    space: NeatSpace
    population_size: int = 150
    # speciation
    compatibility: str = "paper"  # "paper" (Eq. 1) or "neat-python" (its node + connection distance)
    compatibility_threshold: float = 3.0
    excess_coefficient: float = 1.0
    disjoint_coefficient: float = 1.0
    weight_coefficient: float = 0.4
    normalize_min_genes: int = 20
    max_species: int = 64
    # selection and reproduction
    survival_threshold: float = 0.2
    elitism: int = 1
    elitism_min_species_size: int = 6
    crossover_rate: float = 0.75
    interspecies_rate: float = 0.001
    disabled_gene_rate: float = 0.75
    max_stagnation: int = 15
    species_elitism: int = 1
    population_stagnation: int = 20  # 0: off
    # mutation
    per_gene_mutation: bool = False  # False: the paper's per-genome rule; True: neat-python's per-gene rule
    weight_perturbation: str = "uniform"  # weight and bias steps: "uniform" U(-power, power) or "gaussian" N(0, power)
    weight_mutate_rate: float = 0.8
    weight_replace_rate: float = 0.1
    weight_mutate_power: float = 0.5
    weight_init_std: float = 1.0
    weight_clamp: float = 30.0
    bias_mutate_rate: float = 0.8
    bias_replace_rate: float = 0.1
    bias_mutate_power: float = 0.5
    bias_init_std: float = 1.0
    enable_mutate_rate: float = 0.0
    node_add_rate: float = 0.03
    conn_add_rate: float = 0.05
    node_delete_rate: float = 0.0
    conn_delete_rate: float = 0.0
    # not a NEAT setting: the name of the `vmap` axis when several runs are batched (`NeatRunner.run_seeds`), so
    # run-time branches (speciation's size tier) are taken once for the batch instead of all being computed
    batch_axis: str | None = None

    def __post_init__(self):
        check(self.batch_axis is None or isinstance(self.batch_axis, str), "batch_axis",
              f"got {self.batch_axis!r}; must be None or a vmap axis name")
        check(self.compatibility in COMPATIBILITY, "compatibility",
              f"got {self.compatibility!r}; allowed: {', '.join(COMPATIBILITY)}")
        check(self.weight_perturbation in PERTURBATIONS, "weight_perturbation",
              f"got {self.weight_perturbation!r}; allowed: {', '.join(PERTURBATIONS)}")
        for field in ("population_size", "max_species", "normalize_min_genes"):
            check_positive(field, getattr(self, field), integer=True)
        for field in ("elitism", "elitism_min_species_size", "max_stagnation", "species_elitism",
                      "population_stagnation"):
            value = getattr(self, field)
            check(isinstance(value, int) and not isinstance(value, bool) and value >= 0, field,
                  f"got {value!r}; must be an integer >= 0")
        for field in ("compatibility_threshold", "weight_mutate_power", "weight_init_std", "weight_clamp",
                      "bias_mutate_power", "bias_init_std"):
            check_positive(field, getattr(self, field))
        for field in ("excess_coefficient", "disjoint_coefficient", "weight_coefficient"):
            check_range(field, getattr(self, field), 0.0, math.inf)
        check(0 < self.survival_threshold <= 1, "survival_threshold",
              f"got {self.survival_threshold}; must be in (0, 1]")
        for field in ("crossover_rate", "interspecies_rate", "disabled_gene_rate", "weight_mutate_rate",
                      "weight_replace_rate", "bias_mutate_rate", "bias_replace_rate", "enable_mutate_rate",
                      "node_add_rate", "conn_add_rate", "node_delete_rate", "conn_delete_rate"):
            check_range(field, getattr(self, field), 0.0, 1.0)

    # --- ask / tell ---

    def init(self, key: jax.Array) -> NeatState:
        """A population of fully connected genomes with random weights, speciated."""
        sp, p, s = self.space, self.population_size, self.max_species
        k_w, k_b = jax.random.split(key)
        weights = self.weight_init_std * jax.random.normal(k_w, (p, sp.num_inputs * sp.num_outputs))
        biases = self.bias_init_std * jax.random.normal(k_b, (p, sp.num_outputs))
        genomes = jax.vmap(sp.initial_genome)(weights, biases)
        empty = jax.tree.map(lambda x: jnp.repeat(x[:1], s, axis=0), genomes)
        state = NeatState(
            genomes=genomes, species=jnp.full(p, -1, jnp.int32), fitness=jnp.full(p, -jnp.inf, jnp.float32),
            told=jnp.array(False), rep=empty, alive=jnp.zeros(s, bool), sp_order=jnp.full(s, BIG, jnp.int32),
            sp_best=jnp.full(s, -jnp.inf, jnp.float32), sp_since=jnp.zeros(s, jnp.int32),
            pop_best=jnp.array(-jnp.inf, jnp.float32),
            pop_since=jnp.array(0, jnp.int32), best=jax.tree.map(lambda x: x[0], genomes),
            next_node=jnp.array(sp.first_hidden_id, jnp.int32), next_innov=jnp.array(sp.first_free_innov, jnp.int32),
            next_species=jnp.array(0, jnp.int32), generation=jnp.array(0, jnp.int32))
        return self._speciate(state, genomes)[0]

    def ask(self, key: jax.Array, state: NeatState) -> tuple[Genome, NeatState]:
        """The generation to evaluate: the current one if not yet told, else the next one bred from it."""
        state = jax.lax.cond(state.told, lambda s: self._next_generation(key, s), lambda s: s, state)
        return state.genomes, state

    def tell(self, state: NeatState, genomes: Genome, fitness: jax.Array) -> tuple[NeatState, dict[str, jax.Array]]:
        """Records fitness (higher is better; NaN is a failed evaluation), updates species and the best."""
        f = sanitize_fitness(fitness)
        s = self.max_species
        sp_max = jax.ops.segment_max(f, state.species, num_segments=s)
        improved = state.alive & (sp_max > state.sp_best)
        i = jnp.argmax(f)
        new_best = f[i] > state.pop_best
        best = jax.tree.map(lambda old, new: jnp.where(new_best, new[i], old), state.best, genomes)
        counts = jnp.bincount(state.species, length=s)
        state = state.replace(
            genomes=genomes, fitness=f, told=jnp.array(True),
            sp_best=jnp.where(improved, sp_max, state.sp_best),
            sp_since=jnp.where(improved, 0, state.sp_since + 1),
            pop_best=jnp.maximum(state.pop_best, f[i]), pop_since=jnp.where(new_best, 0, state.pop_since + 1),
            best=best, generation=state.generation + 1)
        metrics = {
            "best_fitness": f[i], "mean_fitness": jnp.mean(jnp.where(jnp.isfinite(f), f, jnp.nan)),
            "best_ever": state.pop_best, "species": jnp.sum(state.alive), "largest_species": jnp.max(counts),
            "mean_nodes": jnp.mean(jnp.sum(genomes.node_valid, -1)),
            "mean_connections": jnp.mean(jnp.sum(genomes.conn_valid & genomes.conn_enabled, -1)),
            "innovations": state.next_innov, "failed": jnp.sum(~jnp.isfinite(f)),
        }
        return state, metrics

    # --- speciation ---

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
        branches = [functools.partial(self._assign_species, tier=tier) for tier in self.size_tiers()]
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
            sp_since=jnp.where(born | ~alive, 0, state.sp_since), next_species=nxt)
        return state, jnp.sum(overflow)

    def _assign_species(self, state: NeatState, genomes: Genome, tier: tuple[int, int]) -> tuple[jax.Array, ...]:
        """The loop of `_speciate`, its distances computed on the first `tier` (connection, node) slots.
        Returns species (-1: left over when every slot is taken), alive, rep, order, next species number."""
        s, t, p = self.max_species, self.compatibility_threshold, self.population_size
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

    # --- reproduction ---

    def offspring(self, state: NeatState) -> jax.Array:
        """(S,) offspring per species: proportional to the summed adjusted fitness f_i / |species|."""
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
        share = jnp.where(eligible, adjusted, 0.0)
        share = jnp.where(jnp.sum(share) > 0, share, jnp.where(eligible, n, 0).astype(jnp.float32))
        quota = p * share / jnp.sum(share)
        base = jnp.floor(quota).astype(jnp.int32)
        extra = p - jnp.sum(base)
        frac_rank = jnp.argsort(jnp.argsort(-jnp.where(eligible, quota - base, -1.0)))
        return base + (frac_rank < extra).astype(jnp.int32)

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
        pool = jnp.clip(jnp.ceil(self.survival_threshold * n).astype(jnp.int32), 1, jnp.maximum(n, 1))
        elites = jnp.where(n >= self.elitism_min_species_size, jnp.minimum(jnp.minimum(self.elitism, n), offspring), 0)
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
        draws = ops.crossover_draws(k_cross, (p,), sp.max_conns, sp.max_nodes)
        crossed = jax.vmap(ops.crossover_with, in_axes=(0, 0, 0, None))(draws, g1, g2, self.disabled_gene_rate)
        children = ops.tree_select(do_cross, crossed, g1)
        children, proposal = jax.vmap(self._mutate)(self.mutation_draws(k_mut, p), children)
        no_new = lambda x: jnp.where(is_elite, EMPTY, x)  # noqa: E731  (elites are copied: they propose nothing)
        proposal = (no_new(proposal[0]), *proposal[1:3], no_new(proposal[3]), no_new(proposal[4]), *proposal[5:])
        children, next_node, next_innov = ops.assign_innovations(children, proposal, state.next_node, state.next_innov)
        children = ops.tree_select(is_elite, g1, children)  # elites are copied unchanged
        # New representatives: a random member of each species of the evaluated generation (paper Sec. 3.3).
        u = jax.random.uniform(k_rep, (p,))
        best_u = jax.ops.segment_max(u, species, num_segments=s)
        member = jnp.argmax((species[None, :] == jnp.arange(s)[:, None]) & (u[None, :] == best_u[:, None]), 1)
        keep = state.alive & (offspring > 0)
        rep = jax.tree.map(lambda old, x: jnp.where(keep.reshape((-1,) + (1,) * (x.ndim - 1)), x[member], old),
                           state.rep, state.genomes)
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
        return draws

    def _mutate(self, r: dict[str, jax.Array], g: Genome) -> tuple[Genome, tuple[jax.Array, ...]]:
        """Weight, bias and enable-bit mutation, optional deletions, then the structural proposals.

        `r`: one genome's slice of `mutation_draws`; `r["u"]` columns: weights on, biases on, delete node
        on, which node, delete connection on, which connection, then the five of `ops.structural_with`.
        """
        u = r["u"]
        weight = ops.perturb(g.conn_weight, g.conn_valid, u[0], r["u_w"], r["z_w"], self.weight_mutate_rate,
                             self.weight_replace_rate, self.weight_mutate_power, self.weight_init_std,
                             self.weight_clamp, self.per_gene_mutation, r.get("s_w"))
        hidden_or_out = g.node_valid & (jnp.arange(self.space.max_nodes) >= self.space.num_inputs)
        bias = ops.perturb(g.node_bias, hidden_or_out, u[1], r["u_b"], r["z_b"], self.bias_mutate_rate,
                           self.bias_replace_rate, self.bias_mutate_power, self.bias_init_std, self.weight_clamp,
                           self.per_gene_mutation, r.get("s_b"))
        g = g.replace(conn_weight=weight, node_bias=bias)
        if self.enable_mutate_rate:
            g = g.replace(conn_enabled=g.conn_enabled ^ (g.conn_valid & (r["u_e"] < self.enable_mutate_rate)))
        if self.node_delete_rate or self.conn_delete_rate:
            g = ops.tree_select(u[2] < self.node_delete_rate, ops.delete_node(u[3], g, self.space), g)
            g = ops.tree_select(u[4] < self.conn_delete_rate, ops.delete_conn(u[5], g), g)
            g = ops.compact(g)
        return ops.structural_with(u[6:], r["z"], g, self.space, self.node_add_rate, self.conn_add_rate,
                                   self.weight_init_std)


__all__ = ["EMPTY", "Genome", "Neat", "NeatSpace", "NeatState"]
