"""Searching a detector's input resolution and depth for COCO mAP against FLOPs (issue 25): REINFORCE, aging
evolution, random search (`jaxnas.search.detector_search`) and the gradient method (`jaxnas.search.detector_gradient`).

    python -m experiments.detection_search --config experiments/configs/detection_search.py \
        --config.method=all --workdir runs/detection_search

Every configuration a search asks is trained from scratch by the population engine and scored on the validation
split (the searches' signal) and the test split (reported). The default configuration (the middle of both ranges,
fixed in the config before any search) is trained with every seed. Writes `evaluations.jsonl` (every training, the
memo a restarted run reads back: a killed run restarted on the same workdir repeats the same decisions and retrains
nothing it finished; a rerun that changes a setting other than the method, seeds, evaluations or output is refused),
`gradient/*.json` (each gradient run), `results.json` (every search's evaluations in order,
each method's front on validation mAP, which front configurations dominate the default on test mAP at no more
FLOPs, the gradient trajectories), `report.md` with the fronts, the search curves, the gradient trajectories and
detection pictures of the default and each method's best configuration.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import TYPE_CHECKING, Any

from ml_collections import config_dict

from experiments.cli import launch
from experiments.configs import detection_search as ds_config
from experiments.validation import Bounds, as_setting, check_bounds, check_choices, check_files, check_strings
from jaxnas.common.errors import ConfigError, check

if TYPE_CHECKING:
    from jaxnas.common.report import Report

CHOICES = {"method": ds_config.METHODS, "progress": (True, False), "download": (True, False),
           "gradient.depth_search": ds_config.DEPTH_SEARCHES}
STRINGS = ("dataset", "data_dir", "images_dir", "gradient.penalties")
SEARCH_METHODS = ("reinforce", "evolution", "random")


def penalties(config: config_dict.ConfigDict) -> tuple[float, ...]:
    """`gradient.penalties` parsed: comma-separated numbers >= 0."""
    text = config.gradient.penalties
    try:
        values = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        values = ()
    check(bool(values) and all(v >= 0 and v == v and v != float("inf") for v in values), "gradient.penalties",
          f"got {text!r}; allowed: comma-separated finite numbers >= 0, e.g. '0.03,0.1,0.3'")
    return values


def validate(config: config_dict.ConfigDict) -> None:
    """Every setting before any data is loaded or anything compiled; errors name the field as typed."""
    check_bounds(config, {f: Bounds(*b) for f, b in ds_config.BOUNDS.items()})
    check_choices(config, CHOICES)
    check_strings(config, STRINGS)
    check_files(config, ("annotations_json",))
    sp = config.space
    check(sp.resolution_min <= sp.resolution_max, "space.resolution_max",
          f"got {sp.resolution_max}; allowed: at least space.resolution_min ({sp.resolution_min})")
    check(sp.depth_min < sp.depth_max, "space.depth_max",
          f"got {sp.depth_max}; allowed: more than space.depth_min ({sp.depth_min})")
    check(config.evolution.sample_size <= config.evolution.population_size, "evolution.sample_size",
          f"got {config.evolution.sample_size}; allowed: at most evolution.population_size "
          f"({config.evolution.population_size})")
    check(config.method not in ("evolution", "all") or config.evolution.population_size <= config.evaluations,
          "evolution.population_size", f"got {config.evolution.population_size}; allowed: at most evaluations "
          f"({config.evaluations})")
    penalties(config)
    choices(config)  # the space's own checks (multiples of the stride, depths >= log2(stride))


SPACE_FIELDS = {"resolutions": "space.resolution_step", "depths": "space.depth_min",
                "resolution_sigma": "space.resolution_sigma", "stride": "detector.stride"}


def choices(config: config_dict.ConfigDict) -> Any:
    """The searched values; the space's refusals named by the config field that gave them."""
    from jaxnas.spaces.detector import DetectorChoices

    sp = config.space
    try:
        return DetectorChoices(resolutions=tuple(range(sp.resolution_min, sp.resolution_max + 1, sp.resolution_step)),
                               depths=tuple(range(sp.depth_min, sp.depth_max + 1)), stride=config.detector.stride,
                               resolution_sigma=sp.resolution_sigma)
    except ConfigError as err:
        raise as_setting(err, SPACE_FIELDS, parts=()) from None


def settings(config: config_dict.ConfigDict) -> tuple[Any, Any]:
    """(training settings, detector settings) of the config."""
    from jaxnas.evaluation.detection_training import DETECTION_TRAINING, DetectorSettings

    t, d = config.train, config.detector
    train = dataclasses.replace(DETECTION_TRAINING, steps=t.steps, batch_size=t.batch_size,
                                learning_rate=t.learning_rate, weight_decay=t.weight_decay)
    return train, DetectorSettings(width=d.width, stride=d.stride, top_k=d.top_k, score_threshold=d.score_threshold)


def load_data(config: config_dict.ConfigDict) -> Any:
    from jaxnas.data.detection import load_detection

    s = config.splits
    return load_detection(config.dataset, data_dir=config.data_dir, image_size=config.image_size,
                          max_objects=config.max_objects, seed=config.data_seed, images_dir=config.images_dir or None,
                          annotations_json=config.annotations_json or None, splits=(s.train, s.valid, s.test),
                          digit_sizes=(config.digit_min, config.digit_max), download=config.download)


def _say(config: config_dict.ConfigDict, text: str) -> None:
    if config.progress:
        print(text, flush=True)


def run_gradient(config: config_dict.ConfigDict, data: Any, evaluator: Any, space: Any, train: Any, detector: Any,
                 seed: int, workdir: str) -> tuple[list[dict], list[dict]]:
    """The gradient method: one run per penalty, and per depth in the outer loop (`gradient.depth_search`), each cached
    in `gradient/` and its rounded result trained from scratch."""
    import numpy as np

    from jaxnas.common.metrics import write_json
    from jaxnas.search.detector_gradient import GradientSettings, gradient_search
    from jaxnas.search.detector_search import default_flops
    from jaxnas.search.pareto import mnas_reward

    target = default_flops(evaluator, space)
    outer = config.gradient.depth_search == "outer"
    records, trajectories = [], []
    for penalty in penalties(config):
        for depth in (space.depths if outer else (None,)):
            path = os.path.join(workdir, "gradient", f"seed{seed}_penalty{penalty:g}"
                                + (f"_depth{depth}" if outer else "") + ".json")
            if os.path.exists(path):
                with open(path) as f:
                    out = json.load(f)
            else:
                _say(config, f"gradient search, seed {seed}, penalty {penalty:g}"
                     + (f", depth {depth}" if outer else "") + " ...")
                gs = GradientSettings(penalty=penalty, arch_lr=config.gradient.arch_lr,
                                      resolution_lr=config.gradient.resolution_lr, training=train)
                res = gradient_search(data, gs, space, detector, seed=seed, depths=None if depth is None else (depth,))
                out = {"penalty": penalty, "depth_search": config.gradient.depth_search,
                       "resolution": res["resolution"], "depth": res["depth"],
                       "final_resolution": res["final_resolution"], "final_probs": res["final_probs"].tolist(),
                       "nonfinite_steps": res["nonfinite_steps"],
                       "trajectory": {k: np.asarray(v).tolist() for k, v in res["trajectory"].items()}}
                write_json(path, out)
            rec = evaluator.evaluate(out["resolution"], out["depth"], seed)
            valid = rec["valid_map"] if np.isfinite(rec["valid_map"]) else 0.0
            reward = float(mnas_reward(valid, rec["flops"], target, config.reward.alpha, config.reward.beta))
            records.append({**rec, "step": len(records), "reward": reward, "method": "gradient", "search_seed": seed,
                            "penalty": penalty})
            trajectories.append({"seed": seed, **out})
    return records, trajectories


# Settings a run may change on its workdir (more seeds, another method, longer searches, output, the gradient runs'
# penalties and depth search, whose cached files are named by them); every other one is part of what the memo and the
# gradient runs saved there mean, so a rerun that changes it is refused.
FREE = ("method", "seed", "seeds", "evaluations", "progress", "pictures", "download", "gradient.penalties",
        "gradient.depth_search")


def check_workdir_settings(config: config_dict.ConfigDict, workdir: str) -> None:
    """Records the run's fixed settings in `workdir/settings.json`; refuses a workdir saved with other ones."""
    from jaxnas.common.checkpoint import check_same_settings
    from jaxnas.common.loop import flat_settings
    from jaxnas.common.metrics import write_json

    fixed = {k: v for k, v in flat_settings(config.to_dict()).items() if k not in FREE and k.split(".")[0] not in FREE}
    path = os.path.join(workdir, "settings.json")
    if os.path.exists(path):
        with open(path) as f:
            check_same_settings(json.load(f), fixed)
    else:
        write_json(path, fixed)


def run(config: config_dict.ConfigDict, workdir: str, report: Report | None = None) -> dict[str, Any]:
    validate(config)
    space = choices(config)
    train, detector = settings(config)
    if os.path.isdir(workdir):
        check_workdir_settings(config, workdir)  # before any data or training
    data = load_data(config)
    import numpy as np

    from jaxnas.common.metrics import device_summary, write_json
    from jaxnas.search.detector_search import ConfigurationEvaluator, SearchSettings, run_search

    os.makedirs(workdir, exist_ok=True)
    check_workdir_settings(config, workdir)
    evaluator = ConfigurationEvaluator(data, train, detector, cache_path=os.path.join(workdir, "evaluations.jsonl"),
                                       log=(lambda s: _say(config, s)))
    methods = SEARCH_METHODS + ("gradient",) if config.method == "all" else (config.method,)
    seeds = list(range(config.seed, config.seed + config.seeds))
    r0, d0 = space.values(space.default)
    by_method: dict[str, list[dict]] = {m: [] for m in methods}
    defaults, trajectories = [], []
    for seed in seeds:
        _say(config, f"seed {seed}: the default configuration {r0}px depth {d0}")
        defaults.append(evaluator.evaluate(r0, d0, seed))
        for method in methods:
            if method == "gradient":
                recs, trajs = run_gradient(config, data, evaluator, space, train, detector, seed, workdir)
                by_method[method] += recs
                trajectories += trajs
                continue
            _say(config, f"seed {seed}: {method}, {config.evaluations} evaluations")
            ss = SearchSettings(method=method, evaluations=config.evaluations, seed=seed, alpha=config.reward.alpha,
                                beta=config.reward.beta, population_size=config.evolution.population_size,
                                sample_size=config.evolution.sample_size)
            by_method[method] += run_search(ss, evaluator, space)

    from experiments.detection_report import dominating, pareto_front

    default = {k: float(np.mean([d[k] for d in defaults])) for k in ("valid_map", "test_map", "valid_ap50",
                                                                      "test_ap50", "latency_ms")}
    default.update(resolution=r0, depth=d0, flops=defaults[0]["flops"])
    per_method = {}
    for method, recs in by_method.items():
        per_seed = []
        for seed in seeds:
            mine = [r for r in recs if r["search_seed"] == seed]
            own_default = next(d for d in defaults if d["seed"] == seed)
            front = pareto_front(mine, acc="valid_map")
            beats = dominating(front, own_default, acc="test_map")
            per_seed.append({"seed": seed, "asks": len(mine),
                             "distinct": len({(r["resolution"], r["depth"]) for r in mine}),
                             "front": [_brief(r) for r in front], "dominating_default": [_brief(r) for r in beats],
                             **picks(front, own_default)})
        per_method[method] = {"seeds_dominating_default": sum(bool(s["dominating_default"]) for s in per_seed),
                              "per_seed": per_seed}
    results = {
        "method": config.method, "dataset": data.name, "image_shape": list(data.image_shape), "seeds": seeds,
        "space": {"resolutions": list(space.resolutions), "depths": list(space.depths)},
        "default": {**default, "per_seed": defaults}, "methods": per_method,
        "evaluations": {m: recs for m, recs in by_method.items()}, "gradient_runs": trajectories,
        "trainings": len(evaluator.records), "trained_this_run": evaluator.trained,
        "settings": {"train": config.train.to_dict(), "detector": config.detector.to_dict(),
                     "reward": config.reward.to_dict(), "evolution": config.evolution.to_dict(),
                     "gradient": config.gradient.to_dict(), "evaluations": config.evaluations},
        "device": device_summary(),
    }
    write_json(os.path.join(workdir, "results.json"), results)
    from experiments.detection_report import write_report

    write_report(config, results, data, space, evaluator, workdir, report)
    return {"dataset": data.name, "image_shape": results["image_shape"], "seeds": seeds, "space": results["space"],
            "default": default, "default_per_seed": [_brief(d) | {"seed": d["seed"]} for d in defaults],
            "seeds_dominating_default": {m: v["seeds_dominating_default"] for m, v in per_method.items()},
            "methods": per_method, "trainings": results["trainings"], "trained_this_run": evaluator.trained}


def _brief(rec: dict) -> dict:
    keys = ("resolution", "depth", "flops", "valid_map", "test_map", "test_ap50", "latency_ms")
    return {k: rec[k] for k in keys}


def picks(front: list[dict], default: dict) -> dict[str, dict | None]:
    """Two configurations of a method's validation front, chosen on validation mAP only and reported with their test
    mAP: the most accurate at no more than the default's FLOPs, and the cheapest at no lower validation mAP than the
    default (None where the front has none)."""
    within = [r for r in front if r["flops"] <= default["flops"]]
    as_good = [r for r in front if r["valid_map"] >= default["valid_map"]]
    best = max(within, key=lambda r: r["valid_map"]) if within else None
    cheapest = min(as_good, key=lambda r: r["flops"]) if as_good else None
    return {"best_within_default_flops": _brief(best) if best else None,
            "cheapest_at_default_map": _brief(cheapest) if cheapest else None}


if __name__ == "__main__":
    launch(run, os.path.join(os.path.dirname(__file__), "configs", "detection_search.py"))
