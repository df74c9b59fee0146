"""NEAT: NeuroEvolution of Augmenting Topologies, a whole generation as one compiled pure function.

Stanley & Miikkulainen, "Evolving Neural Networks through Augmenting Topologies", Evolutionary
Computation 10(2):99-127, 2002. Genomes are padded arrays (`jaxnas.spaces.neat`), so the population
stacks; evaluation is the caller's vmapped function; speciation and reproduction are vmapped here.

Ask/tell, like every strategy (`jaxnas.strategies.base`), with explicit keys and a state pytree:

    state = neat.init(key)
    genomes, state = neat.ask(key, state)        # the generation to evaluate, already speciated
    state, metrics = neat.tell(state, genomes, fitness)

`ask` breeds the next generation from the last told fitness (nothing to breed on the first call).
This module holds the settings and ask/tell; the state pytree is in `neat_state`, speciation in
`neat_speciation`, reproduction in `neat_reproduction`, the per-genome operators in `neat_ops`.

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

neat-python 2.0's own rules, for reproducing its results (`experiments/configs/neat.py:NEAT_PYTHON_XOR` sets them
all): `speciation="closest"` (each species' new representative the new genome closest to its old one, every other
genome to the closest compatible species, `neat_speciation._assign_closest`), `spawn="neat-python"` (mean fitness
scaled to the population's range, a minimum species size, each species half way from its size to its target,
`neat_reproduction._neat_python_spawn`), `min_parents=2`, `structure_first` (its mutation order: add node, delete
node, add connection, delete connection, each on the genome the step before left, then the weights and biases of
every gene, the new ones too: `neat_python_mutation`), `split_ids="unique"` (every add-node makes a new node, where
the paper numbers the same split in one generation once), `split_disabled`, `conn_from_outputs=False`,
`compatibility="neat-python"` (connection genes matched by their (in, out) key), `per_gene_mutation`, Gaussian
steps, node and connection deletion, and its sigmoid 1 / (1 + exp(-5 x)) (`NeatSpace(activation="sigmoid5")`).
An audit of neat-python 2.0's code against these rules (2026-12-07) found those last four differences; each was
measured on XOR seeds 100-139 (benchmarks/neat_rules_ablation.py), not on the reported seeds 0-39.

HyperNEAT (the authors' code, `experiments/configs/neat.py:hyperneat`): `target_species` (the compatibility
threshold moved by `threshold_step` each generation towards a number of species) and `keep_champion` (the
generation's best genome copied whatever its species' size).

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

CPPNs (HyperNEAT; `NeatSpace.activations`): every non-input node also carries an activation gene, as in
neat-python: new hidden nodes draw one at random, `activation_mutate_rate` redraws each hidden node's at that rate
(per node, after the bias; the outputs keep theirs, unlike neat-python, so a HyperNEAT output stays signed),
crossover takes a matching node's from either parent, and neat-python's distance counts a differing activation as 1
(the paper's Eq. 1 has no node term and ignores it).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from jaxnas.common.errors import check, check_positive, check_range
from jaxnas.spaces.neat import EMPTY, Genome, NeatSpace
from jaxnas.strategies.base import sanitize_fitness
from jaxnas.strategies.neat_reproduction import NeatReproduction
from jaxnas.strategies.neat_speciation import NeatSpeciation
from jaxnas.strategies.neat_state import BIG, NeatState

COMPATIBILITY = ("paper", "neat-python")
SPECIATION = ("first", "closest")
SPAWN = ("shared", "neat-python")
PERTURBATIONS = ("gaussian", "uniform")


@dataclasses.dataclass(frozen=True)
class Neat(NeatSpeciation, NeatReproduction):
    """NEAT settings. Structural ones (sizes) are static; the rest are the paper's defaults.

    Speciation (`distance`, `size_tiers`, ...) lives in `neat_speciation`, reproduction (`offspring`,
    `mutation_draws`, ...) in `neat_reproduction`; this class holds the settings and the ask/tell interface."""

    space: NeatSpace
    population_size: int = 150
    # speciation
    compatibility: str = "paper"  # "paper" (Eq. 1) or "neat-python" (its node + connection distance)
    compatibility_threshold: float = 3.0
    # 0: a fixed threshold (the paper). > 0: after each speciation the threshold moves by `threshold_step` towards
    # this number of species (fewer species: lower), never below `threshold_step` (the authors' HyperNEAT code,
    # SpeciesSizeTarget / CompatibilityModifier; also SharpNEAT's)
    target_species: int = 0
    threshold_step: float = 0.3
    excess_coefficient: float = 1.0
    disjoint_coefficient: float = 1.0
    weight_coefficient: float = 0.4
    normalize_min_genes: int = 20
    max_species: int = 64
    speciation: str = "first"  # "first": the paper's first compatible species; "closest": neat-python's
    # selection and reproduction
    spawn: str = "shared"  # "shared": the paper's summed adjusted fitness; "neat-python": its rule (min size, smoothing)
    min_species_size: int = 0  # spawn="neat-python" only: at least max(min_species_size, elitism) offspring
    min_parents: int = 1  # the survivors a species breeds from: ceil(survival_threshold x size), at least this
    survival_threshold: float = 0.2
    elitism: int = 1
    elitism_min_species_size: int = 6
    keep_champion: bool = False  # True: the generation's champion is copied whatever its species' size (HyperNEAT)
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
    activation_mutate_rate: float = 0.0  # a CPPN (`NeatSpace.activations`): each node's function redrawn at this rate
    node_add_rate: float = 0.03
    conn_add_rate: float = 0.05
    structure_first: bool = False  # True (neat-python): add node / connection, deletions, then weights and biases
    split_disabled: bool = False  # True (neat-python): add node may split a disabled connection
    split_ids: str = "shared"  # "shared": the paper's (same split, same generation: same node); "unique": neat-python
    conn_from_outputs: bool = True  # False (neat-python): add connection never starts at an output
    node_delete_rate: float = 0.0
    conn_delete_rate: float = 0.0
    # not a NEAT setting: the name of the `vmap` axis when several runs are batched (`NeatRunner.run_seeds`), so
    # run-time branches (speciation's size tier) are taken once for the batch instead of all being computed
    batch_axis: str | None = None

    def __post_init__(self):
        check(self.batch_axis is None or isinstance(self.batch_axis, str), "batch_axis",
              f"got {self.batch_axis!r}; allowed: None or a vmap axis name")
        check(self.compatibility in COMPATIBILITY, "compatibility",
              f"got {self.compatibility!r}; allowed: {', '.join(COMPATIBILITY)}")
        check(self.speciation in SPECIATION, "speciation", f"got {self.speciation!r}; allowed: {', '.join(SPECIATION)}")
        check(self.spawn in SPAWN, "spawn", f"got {self.spawn!r}; allowed: {', '.join(SPAWN)}")
        check(self.split_ids in ("shared", "unique"), "split_ids", f"got {self.split_ids!r}; allowed: shared, unique")
        check(self.weight_perturbation in PERTURBATIONS, "weight_perturbation",
              f"got {self.weight_perturbation!r}; allowed: {', '.join(PERTURBATIONS)}")
        for field in ("population_size", "max_species", "normalize_min_genes"):
            check_positive(field, getattr(self, field), integer=True)
        for field in ("elitism", "elitism_min_species_size", "max_stagnation", "species_elitism", "target_species",
                      "population_stagnation", "min_species_size", "min_parents"):
            value = getattr(self, field)
            check(isinstance(value, int) and not isinstance(value, bool) and value >= 0, field,
                  f"got {value!r}; allowed: an integer >= 0")
        for field in ("compatibility_threshold", "threshold_step", "weight_mutate_power", "weight_init_std", "weight_clamp",
                      "bias_mutate_power", "bias_init_std"):
            check_positive(field, getattr(self, field))
        for field in ("excess_coefficient", "disjoint_coefficient", "weight_coefficient"):
            check_range(field, getattr(self, field), 0.0, math.inf)
        check(0 < self.survival_threshold <= 1, "survival_threshold",
              f"got {self.survival_threshold}; allowed: in (0, 1]")
        for field in ("crossover_rate", "interspecies_rate", "disabled_gene_rate", "weight_mutate_rate",
                      "weight_replace_rate", "bias_mutate_rate", "bias_replace_rate", "enable_mutate_rate",
                      "node_add_rate", "conn_add_rate", "node_delete_rate", "conn_delete_rate",
                      "activation_mutate_rate"):
            check_range(field, getattr(self, field), 0.0, 1.0)
        check(not self.activation_mutate_rate or self.space.activations is not None, "activation_mutate_rate",
              f"got {self.activation_mutate_rate}; a space without per-node activations (NeatSpace.activations) "
              "has none to mutate; allowed: 0")

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
            next_species=jnp.array(0, jnp.int32), generation=jnp.array(0, jnp.int32),
            threshold=jnp.array(self.compatibility_threshold, jnp.float32))
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


__all__ = ["EMPTY", "Genome", "Neat", "NeatSpace", "NeatState"]
