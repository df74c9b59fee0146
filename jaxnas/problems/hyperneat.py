"""HyperNEAT: NEAT evolves a CPPN whose outputs, queried at pairs of substrate coordinates, are the weights of a
large network (Stanley, D'Ambrosio & Gauci, "A Hypercube-Based Encoding for Evolving Large-Scale Neural Networks",
Artificial Life 15(2), 2009), and the paper's visual discrimination ("boxes") task.

* **CPPN**: a NEAT genome (`jaxnas.spaces.neat`) with per-node activation genes (`NeatSpace.activations`: `CPPN`
  below, the authors' code's set: signed sigmoid 2 / (1 + exp(-x)) - 1, sine, Gaussian exp(-x^2), linear clipped to
  [-3, 3] / 3), 4 inputs (x1, y1, x2, y2: the source and target nodes' coordinates) and one output, the signed
  sigmoid (kept by every mutation). New hidden nodes draw their function uniformly at random.
* **Substrate** (`Substrate`): sheets of nodes at coordinates in [-1, 1] (`grid(11)`: (i - 5) / 5, as the authors'
  code); every input node connects to every output node, the weight `query`ed from the CPPN.
* **Expression** (`express`): a CPPN output v with |v| <= 0.2 gives no connection (weight 0); above, the magnitude
  is scaled from (0.2, 1] to (0, 3], the sign kept: w = sign(v) (|v| - 0.2) / 0.8 * 3 (threshold 0.2 and maximum 3.0,
  the authors' code).
* **Boxes** (paper Sec. 5): an 11x11 visual field holds a 1x1 and a 3x3 box; the output sheet's most active node is
  the network's answer, which should be the large box's centre. 75 trials: the small box at the 25 positions x, y in
  {1, 3, 5, 7, 9}, the large one five cells to the right, below, or diagonally (wrapping around the field, then
  moved the least distance that puts it fully in view). Fitness, as the authors' code: 10 + sum over trials of
  max(0, 30 - d^2), d the distance in cells between the answer and the large box's centre (at most 2,260); a run is
  solved when the trials' sum reaches 95% of its best, 10 + 0.95 x 2,250 = 2,147.5 (the code's "problem domain
  solved"). `boxes_details` reports the mean distance over the
  75 trials and over every placement of the two boxes (`all_placements`, a generalization test), and, as the
  paper's scaling experiment, the same CPPN queried on a 33x33 substrate (boxes 3x3 and 9x9) without evolution.

NEAT settings (`experiments/configs/neat.py:hyperneat`, from the authors' `FindClusterExperiment.dat` and NEAT code):
population 300, 300 generations, uniform weight steps of up to 2.5, weights within [-5, 5], distance 2 x disjoint +
2 x excess + mean weight difference with a threshold starting at 6 and moved by 0.3 each generation towards 8
species (`Neat.target_species`), species dropped after 15 generations without improvement, no population-wide
stagnation rule, species champions copied in species of 5 or more and the generation's champion always
(`Neat.keep_champion`), add-node 0.03, add-connection 0.05, the CPPN's functions never mutated.

Deviations: the CPPN has bias genes (as every NEAT genome here) instead of the authors' constant bias input 0.3;
initial weights are Gaussian with the spread of the authors' U(-3, 3); the rest of reproduction is this library's
NEAT (the paper's): add-node disables the split connection (the authors' code keeps it at half its weight),
crossover takes unmatched genes from the fitter parent (theirs from both), every connection's weight may step
(theirs: links younger than 18 generations always, older ones at 10%); the CPPN is evaluated in one pass in
topological order (theirs: 10 synchronous sweeps, the same values for a feed-forward CPPN up to 10 deep). The
output nodes of the substrate sum their weighted inputs (no activation: the answer is their argmax, which any
increasing activation leaves unchanged; the authors' signed sigmoid, read from a table below |x| = 2.9, can tie
nearly equal sums); ties in the argmax go to the first node in row-major order, as in the authors' code.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.common.errors import check
from jaxnas.spaces.neat import Genome, NeatSpace

# the authors' code's CPPN functions (new hidden nodes draw one of them; the output is the signed sigmoid). The
# space offers more (tanh, the steep sigmoid, abs, identity): `NeatSpace.activations`.
CPPN = ("signed_sigmoid", "sin", "gauss", "clipped_linear")
THRESHOLD, MAX_WEIGHT = 0.2, 3.0
FIELD, SMALL, LARGE, OFFSET = 11, 1, 3, 5
MAX_FITNESS = 10.0 + 75 * 30.0
SOLVED_FITNESS = 10.0 + 0.95 * 75 * 30.0  # the authors' "solved": the trials' sum at 95% of its best (2,250)


def grid(resolution: int) -> np.ndarray:
    """(resolution^2, 2) coordinates (x, y) in [-1, 1] of a square sheet, row-major (y the row)."""
    check(isinstance(resolution, int) and resolution >= 2, "resolution",
          f"got {resolution!r}; allowed: an integer >= 2")
    c = np.linspace(-1.0, 1.0, resolution, dtype=np.float32)
    y, x = np.meshgrid(c, c, indexing="ij")
    return np.stack([x.ravel(), y.ravel()], -1)


@dataclasses.dataclass(frozen=True, eq=False)
class Substrate:
    """Input and output node coordinates (each (n, 2)); every input connects to every output."""

    inputs: np.ndarray
    outputs: np.ndarray

    @classmethod
    def sheets(cls, resolution: int) -> Substrate:
        """Two sheets of resolution x resolution nodes (the boxes task's visual and target fields)."""
        g = grid(resolution)
        return cls(g, g)


def express(v: jax.Array, threshold: float = THRESHOLD, max_weight: float = MAX_WEIGHT) -> jax.Array:
    """CPPN outputs -> substrate weights: 0 where |v| <= threshold, else sign(v) (|v| - threshold) / (1 - threshold)
    * max_weight."""
    mag = (jnp.abs(v) - threshold) / (1.0 - threshold) * max_weight
    return jnp.where(jnp.abs(v) > threshold, jnp.sign(v) * mag, 0.0)


def query(space: NeatSpace, genome: Genome, substrate: Substrate) -> jax.Array:
    """The CPPN at every (input node, output node) pair: (n_in, n_out) raw outputs, before `express`."""
    a, b = jnp.asarray(substrate.inputs), jnp.asarray(substrate.outputs)
    pairs = jnp.concatenate([jnp.repeat(a, b.shape[0], 0), jnp.tile(b, (a.shape[0], 1))], -1)  # (n_in * n_out, 4)
    return space.apply(genome, pairs)[:, 0].reshape(a.shape[0], b.shape[0])


def substrate_weights(space: NeatSpace, genome: Genome, substrate: Substrate) -> jax.Array:
    """(n_in, n_out) expressed weights of the substrate network a CPPN genome encodes."""
    return express(query(space, genome, substrate))


def _place_large(c: int, field: int, size: int) -> int:
    half = size // 2
    return min(max(c, half), field - 1 - half)  # the least move that puts the box fully in view


def boxes_trials(scale: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The paper's 75 trials at `scale` times the 11x11 field (boxes and offsets scaled too): images
    (75, (11 scale)^2) with 1 on the boxes, and the large box centres (75, 2) as (x, y) cells."""
    field, small, large, offset = FIELD * scale, SMALL * scale, LARGE * scale, OFFSET * scale
    images, targets = [], []
    for sy in range(1, 10, 2):
        for sx in range(1, 10, 2):
            for dx, dy in ((1, 0), (0, 1), (1, 1)):  # right, down, diagonal
                cx, cy = sx * scale + scale // 2, sy * scale + scale // 2  # the small box's centre cell
                lx = _place_large((cx + dx * offset) % field, field, large)
                ly = _place_large((cy + dy * offset) % field, field, large)
                img = np.zeros((field, field), np.float32)
                img[ly - large // 2:ly + large // 2 + 1, lx - large // 2:lx + large // 2 + 1] = 1.0
                img[cy - small // 2:cy + small // 2 + 1, cx - small // 2:cx + small // 2 + 1] = 1.0
                images.append(img.ravel())
                targets.append((lx, ly))
    return np.stack(images), np.array(targets, np.int32)


def all_placements() -> tuple[np.ndarray, np.ndarray]:
    """Every placement of both boxes on the 11x11 field where they do not touch (a generalization test beyond
    the 75 trials): images (T, 121) and large box centres (T, 2)."""
    images, targets = [], []
    for ly in range(1, FIELD - 1):
        for lx in range(1, FIELD - 1):
            for sy in range(FIELD):
                for sx in range(FIELD):
                    if max(abs(sx - lx), abs(sy - ly)) <= 2:  # overlapping or adjacent to the large box
                        continue
                    img = np.zeros((FIELD, FIELD), np.float32)
                    img[ly - 1:ly + 2, lx - 1:lx + 2] = 1.0
                    img[sy, sx] = 1.0
                    images.append(img.ravel())
                    targets.append((lx, ly))
    return np.stack(images), np.array(targets, np.int32)


def squared_distances(weights: jax.Array, images: jax.Array, targets: jax.Array, field: int) -> jax.Array:
    """(T,) squared distance in cells (an exact integer) between each image's most active output node and its
    target."""
    act = images @ weights  # (T, n_out): the output sheet's input sums
    pick = jnp.argmax(act, -1)
    dx, dy = pick % field - targets[:, 0], pick // field - targets[:, 1]
    return (dx * dx + dy * dy).astype(jnp.float32)


def answer_distances(weights: jax.Array, images: jax.Array, targets: jax.Array, field: int) -> jax.Array:
    """(T,) distance in cells between each image's most active output node and its target."""
    return jnp.sqrt(squared_distances(weights, images, targets, field))


_TRIALS = boxes_trials()


def boxes_fitness(space: NeatSpace, genome: Genome) -> jax.Array:
    """The authors' fitness on the 75 trials: 10 + sum max(0, 30 - d^2) (higher is better, at most 2,260)."""
    w = substrate_weights(space, genome, Substrate.sheets(FIELD))
    d2 = squared_distances(w, jnp.asarray(_TRIALS[0]), jnp.asarray(_TRIALS[1]), FIELD)
    return 10.0 + jnp.sum(jnp.maximum(0.0, 30.0 - d2))


def boxes_details(space: NeatSpace, genome: Genome) -> dict[str, float]:
    """The winner's mean distance (cells) on the 75 trials, on every placement, and queried at 33x33 (the
    scaling experiment: the same CPPN, no further evolution; distances in 33x33 cells and in 11x11 cells)."""
    out = {}
    w = substrate_weights(space, genome, Substrate.sheets(FIELD))
    d = answer_distances(w, jnp.asarray(_TRIALS[0]), jnp.asarray(_TRIALS[1]), FIELD)
    out["trials_mean_distance"] = float(jnp.mean(d))
    out["trials_exact"] = int(jnp.sum(d == 0))
    images, targets = all_placements()
    out["all_placements_mean_distance"] = float(jnp.mean(answer_distances(w, jnp.asarray(images),
                                                                          jnp.asarray(targets), FIELD)))
    out["all_placements"] = int(len(targets))
    big_images, big_targets = boxes_trials(scale=3)
    w33 = substrate_weights(space, genome, Substrate.sheets(FIELD * 3))
    d33 = answer_distances(w33, jnp.asarray(big_images), jnp.asarray(big_targets), FIELD * 3)
    out["trials_33x33_mean_distance_cells"] = float(jnp.mean(d33))
    out["trials_33x33_mean_distance_11x11_cells"] = float(jnp.mean(d33)) / 3
    return out


__all__ = ["CPPN", "Substrate", "grid", "express", "query", "substrate_weights", "boxes_trials", "all_placements",
           "answer_distances", "squared_distances", "boxes_fitness", "boxes_details", "MAX_FITNESS", "SOLVED_FITNESS", "THRESHOLD", "MAX_WEIGHT"]
