"""Searching a detector's (input resolution, depth) for accuracy against compute: REINFORCE, aging evolution and
random search over `jaxnas.spaces.detector`, every evaluation a real training (`DetectionTrainer`).

The reward is MnasNet's (Tan et al., "MnasNet: Platform-Aware Neural Architecture Search for Mobile", CVPR 2019,
Eq. 2; `jaxnas.search.pareto.mnas_reward`): mAP x (FLOPs / target)^w, w = alpha at or below the target and beta
above it, the target the default configuration's FLOPs. By default the paper's hard constraint, alpha = 0 and
beta = -1: the best mAP within the default's compute, which is what beating the default asks. The paper's soft
constraint (alpha = beta = -0.07) was the default until measured on seeds 0-2 (results/detection_search.json of
commit 869ebdc): there the reward's optimum is the largest network (mAP rises 8 -> 35% with FLOPs, a 2x FLOPs
costs 5% of the reward), aging evolution converged on 72-92 px configurations and dominated the default on 2 of
3 seeds. The searches see the validation mAP only; test mAP is reported.

The budget counts trainings: a search runs until `evaluations` distinct configurations are evaluated (a repeat is
answered from the memo, costs nothing and is told to the strategy like any evaluation), or 10 x `evaluations`
asks. Each method draws from its own stream, `fold_in(key(seed), 1 + its index in METHODS)`: with one stream for
all, REINFORCE's first draws (from a uniform policy) were random search's, and its fronts equalled random search's.

Evaluations are memoised by (resolution, depth, training seed, settings): a configuration asked twice is trained
once (a search over 119 configurations revisits), and the record is appended to a JSON-lines file when one is
given, so a killed search restarted on the same file replays the same decisions (its keys are
`fold_in(method's key, ask number)`) with the finished trainings read back: the same result, nothing retrained.
Each training's variables are saved beside the memo (`variables/*.msgpack`, flax's msgpack; `load_variables`).
A record with a non-finite mAP (a diverged training) gets reward 0 (the strategies never see NaN).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from jaxnas.common.checkpoint import fingerprint
from jaxnas.common.errors import check, check_choice, check_positive
from jaxnas.evaluation.detection_training import (DETECTION_TRAINING, DetectionTrainer, DetectorSettings,
                                                  configuration_flops, latency_ms)
from jaxnas.evaluation.population import TrainSettings
from jaxnas.search.pareto import MNAS_HARD, mnas_reward
from jaxnas.spaces.detector import DetectorChoices
from jaxnas.strategies.base import jitted
from jaxnas.strategies.evolution import aging_evolution
from jaxnas.strategies.random import RandomSearch
from jaxnas.strategies.reinforce import Reinforce

METHODS = ("reinforce", "evolution", "random")
MAX_ASKS_PER_EVALUATION = 10  # a search that keeps asking configurations it has evaluated stops at 10 x its budget


class ConfigurationEvaluator:
    """Trains and measures (resolution, depth) configurations, memoised (see the module docstring).

    `evaluate(resolution, depth, seed)` returns a record: resolution, depth, seed, flops (one image, inference),
    latency_ms (per image, batch 64, this machine), valid_map / valid_ap50 / test_map / test_ap50 (fractions, the mean
    over `candidates` trainings), diverged, train_seconds.
    """

    def __init__(self, dataset: Any, settings: TrainSettings = DETECTION_TRAINING,
                 detector: DetectorSettings = DetectorSettings(), candidates: int = 1, cache_path: str | None = None,
                 log: Callable[[str], None] | None = print):
        check_positive("candidates", candidates, integer=True)
        self.dataset, self.settings, self.detector, self.candidates = dataset, settings, detector, candidates
        self.cache_path, self.log = cache_path, log or (lambda _: None)
        # "map=fraction": memo files written while mAP was stored in percent (before 2026-12-07) are not reused
        self.tag = fingerprint(repr(settings), repr(detector), candidates, dataset.name, dataset.train.images,
                               dataset.valid.boxes, "map=fraction")
        self.records: dict[tuple[int, int, int], dict] = {}
        self.trained = 0
        if cache_path and os.path.exists(cache_path):
            with open(cache_path) as f:
                for line in f:
                    rec = json.loads(line)
                    if rec.get("tag") == self.tag:
                        self.records[(rec["resolution"], rec["depth"], rec["seed"])] = rec

    def evaluate(self, resolution: int, depth: int, seed: int) -> dict:
        key = (int(resolution), int(depth), int(seed))
        if key in self.records:
            return self.records[key]
        start = time.perf_counter()
        trainer = DetectionTrainer(self.dataset, key[0], key[1], self.settings, self.detector,
                                   chunk_size=self.candidates)
        scores = trainer.score(candidates=self.candidates, seed=key[2])
        seconds = time.perf_counter() - start
        saved = self._save_variables(key, scores.candidate(0))
        channels = self.dataset.image_shape[-1]
        rec = {
            "resolution": key[0], "depth": key[1], "seed": key[2], "tag": self.tag,
            "flops": configuration_flops(self.dataset.num_classes, key[0], key[1], self.detector, channels),
            "latency_ms": latency_ms(self.dataset.num_classes, key[0], key[1], self.detector, channels),
            "valid_map": _mean(scores.valid_map), "valid_ap50": _mean(scores.valid_ap50),
            "test_map": _mean(scores.test_map), "test_ap50": _mean(scores.test_ap50),
            "diverged": bool(np.any(scores.diverged)), "train_seconds": round(seconds, 2), "variables": saved,
        }
        self.records[key] = rec
        self.trained += 1
        if self.cache_path:
            os.makedirs(os.path.dirname(os.path.abspath(self.cache_path)), exist_ok=True)
            with open(self.cache_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
        self.log(f"  trained {key[0]}px depth {key[1]} (seed {key[2]}): valid mAP {100 * rec['valid_map']:.2f}%, "
                 f"{rec['flops'] / 1e6:.1f} MFLOPs, {seconds:.0f} s")
        return rec


    def _save_variables(self, key: tuple[int, int, int], variables: dict) -> str | None:
        """Candidate 0's trained variables as msgpack beside the memo file (None without one); the path relative
        to the memo file's folder."""
        if not self.cache_path:
            return None
        rel = os.path.join("variables", f"{key[0]}px_d{key[1]}_seed{key[2]}_{self.tag}.msgpack")
        path = os.path.join(os.path.dirname(os.path.abspath(self.cache_path)), rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "wb") as f:
            f.write(serialization.msgpack_serialize(jax.tree.map(np.asarray, variables)))
        os.replace(path + ".tmp", path)
        return rel

    def load_variables(self, record: dict) -> dict | None:
        """The trained variables a record saved (None if it saved none or the file is gone)."""
        if not (self.cache_path and record.get("variables")):
            return None
        path = os.path.join(os.path.dirname(os.path.abspath(self.cache_path)), record["variables"])
        if not os.path.exists(path):
            return None
        with open(path, "rb") as f:
            return serialization.msgpack_restore(f.read())


def _mean(values: np.ndarray) -> float:
    values = np.asarray(values, np.float64)
    return float(np.mean(values)) if np.all(np.isfinite(values)) else float("nan")


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """One search: `method`, `evaluations` distinct configurations evaluated (the budget; see the module docstring),
    its `seed`; the reward's exponents `alpha` (at or below the target) and `beta` (above it; default MnasNet's hard
    constraint); aging evolution's population and tournament sizes (NAS-Bench-201's REA: 10 and 3)."""

    method: str = "evolution"
    evaluations: int = 24
    seed: int = 0
    alpha: float = MNAS_HARD[0]
    beta: float = MNAS_HARD[1]
    population_size: int = 10
    sample_size: int = 3

    def __post_init__(self) -> None:
        check_choice("method", self.method, METHODS)
        check_positive("evaluations", self.evaluations, integer=True)
        check(self.alpha <= 0, "alpha", f"got {self.alpha}; allowed: <= 0 (compute is a cost)")
        check(self.beta <= 0, "beta", f"got {self.beta}; allowed: <= 0 (compute is a cost)")
        check(self.method != "evolution" or self.population_size <= self.evaluations, "population_size",
              f"got {self.population_size}; allowed: at most evaluations={self.evaluations}")


def make_strategy(settings: SearchSettings, choices: DetectorChoices) -> Any:
    space = choices.space()
    if settings.method == "reinforce":
        return Reinforce(space)
    if settings.method == "evolution":
        return aging_evolution(space, population_size=settings.population_size, sample_size=settings.sample_size)
    return RandomSearch(space)


def run_search(settings: SearchSettings, evaluator: ConfigurationEvaluator,
               choices: DetectorChoices = DetectorChoices(), train_seed: int | None = None) -> list[dict]:
    """Runs one search to its budget (module docstring); returns every ask in order (each record plus `step`,
    `reward` and `repeat`: whether this search had evaluated that configuration before).

    Trainings use `train_seed` (default: the search's seed), so two methods of one seed share trainings."""
    strategy = make_strategy(settings, choices)
    train_seed = settings.seed if train_seed is None else train_seed
    target = default_flops(evaluator, choices)
    key = jax.random.fold_in(jax.random.key(settings.seed), 1 + METHODS.index(settings.method))
    state = strategy.init(jax.random.fold_in(key, 2**31 - 1))
    ask, tell = jitted(strategy)
    history, seen = [], set()
    for step in range(MAX_ASKS_PER_EVALUATION * settings.evaluations):
        if len(seen) == settings.evaluations:
            break
        archs, state = ask(jax.random.fold_in(key, step), state)
        arch = np.asarray(archs)[0]
        resolution, depth = choices.values(arch)
        rec = evaluator.evaluate(resolution, depth, train_seed)
        valid = rec["valid_map"] if np.isfinite(rec["valid_map"]) else 0.0
        reward = float(mnas_reward(valid, rec["flops"], target, settings.alpha, settings.beta))
        state, _ = tell(state, archs, jnp.array([reward], jnp.float32))
        history.append({**rec, "step": step, "reward": reward, "method": settings.method, "search_seed": settings.seed,
                        "repeat": (resolution, depth) in seen})
        seen.add((resolution, depth))
    return history


def default_flops(evaluator: ConfigurationEvaluator, choices: DetectorChoices) -> float:
    """The reward's target: the default configuration's FLOPs (no training needed)."""
    r, d = choices.values(choices.default)
    data = evaluator.dataset
    return configuration_flops(data.num_classes, r, d, evaluator.detector, data.image_shape[-1])
