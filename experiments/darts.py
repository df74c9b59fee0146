"""DARTS and its remedies on the NAS-Bench-201 supernet or on DARTS's own cell (`--config.space=nb201|nasnet`): many
seeds searched at once, every epoch's derived cell recorded (and on NAS-Bench-201 looked up in its table), each
seed's final cell trained from scratch (NAS-Bench-201's network, or the NASNet network of the DARTS cell).

    python -m experiments.darts --config experiments/configs/darts.py --config.method=darts --workdir runs/darts

Writes `results.json` (per seed: the derived cell of every epoch with its table accuracy, the final cell, its
table and from-scratch accuracy, the eigenvalue trace where recorded; and their means over seeds; accuracies as
fractions in [0, 1], the report and figures in percent),
`metrics.jsonl` (one line per epoch), `alphas.png`, `table_accuracy.png`, `ops.png`, `eigenvalue.png` (where
recorded), `report.md`, and `checkpoints/`: a killed run restarted with the same workdir resumes between epochs and
ends with the uninterrupted result.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
from ml_collections import config_dict

from experiments.cli import launch
from experiments.configs import darts as darts_config
from experiments.validation import Bounds, check_bounds, check_choices, check_files, check_strings
from jaxnas.common.errors import check

if TYPE_CHECKING:
    from jaxnas.common.report import Report
    from jaxnas.evaluation.darts import DartsSettings

CHOICES = {"space": darts_config.SPACES, "method": darts_config.METHODS, "darts.hvp": ("finite", "exact"),
           "darts.gdas_estimator": ("code", "paper"),
           "progress": (True, False), "eigen": (True, False), "download": (True, False)}
STRINGS = ("dataset", "data_dir", "npz_path")
SCRATCH_FIRST_ID = 2_000_000  # candidate ids (init keys) of the from-scratch training


def validate(config: config_dict.ConfigDict) -> None:
    """Every setting before any data is loaded or anything compiled; errors name the field as typed."""
    check_bounds(config, {f: Bounds(*b) for f, b in darts_config.BOUNDS.items()})
    check_choices(config, CHOICES)
    check_strings(config, STRINGS)
    check_files(config, ("npz_path",))
    div = 2 ** (config.darts.stages - 1)
    check(config.image_size % div == 0, "image_size",
          f"got {config.image_size}; allowed: a multiple of {div} (the supernet halves the images "
          f"{config.darts.stages - 1} times)")
    check(config.darts.w_lr_min <= config.darts.w_lr, "darts.w_lr_min",
          f"got {config.darts.w_lr_min}; allowed: at most darts.w_lr ({config.darts.w_lr})")
    check(config.darts.tau_last <= config.darts.tau_first, "darts.tau_last",
          f"got {config.darts.tau_last}; allowed: at most darts.tau_first ({config.darts.tau_first}): tau anneals")
    check(config.dataset != "npz" or bool(config.npz_path), "npz_path",
          "got ''; dataset=npz needs npz_path, a .npz file with images and labels")


def darts_settings(config: config_dict.ConfigDict) -> DartsSettings:
    """The core's settings of the config's method (darts2: second order; rdarts_es: first order plus the
    eigenvalue every epoch)."""
    from jaxnas.evaluation.darts import DartsSettings

    d = config.darts
    method = {"darts2": "darts", "rdarts_es": "darts"}.get(config.method, config.method)
    return DartsSettings(
        space=config.space, method=method, order=2 if config.method == "darts2" else 1, hvp=d.hvp,
        hvp_radius=d.hvp_radius,
        channels=d.channels, cells_per_stage=d.cells_per_stage, stages=d.stages, steps=d.steps,
        batch_size=d.batch_size, w_lr=d.w_lr,
        w_lr_min=d.w_lr_min, w_momentum=d.w_momentum, w_weight_decay=d.w_weight_decay, w_grad_clip=d.w_grad_clip,
        a_lr=d.a_lr, a_weight_decay=d.a_weight_decay, alpha_init_scale=d.alpha_init_scale,
        eigen=bool(config.eigen or config.method == "rdarts_es"), power_iterations=d.power_iterations,
        aux_skip=d.aux_skip, tau=(d.tau_first, d.tau_last), beta_lambda=d.beta_lambda,
        gdas_estimator=d.gdas_estimator)


def search(config: config_dict.ConfigDict, settings: DartsSettings, data: Any, workdir: str,
           stop_after: int | None = None) -> tuple[Any, dict]:
    """Every seed's search, one vmapped program per epoch, checkpointed between epochs: (records (S, E, ...) as
    numpy, loop info). `stop_after` epochs ends this call early, as a kill would (tests of resumption)."""
    import jax
    import jax.numpy as jnp

    from jaxnas.common.loop import run_loop
    from jaxnas.evaluation import darts as D

    D.check_data(settings, data.train_x, data.train_y)
    split = D.split_half(data.train_x, data.train_y)
    seeds = jnp.arange(config.seed, config.seed + config.seeds, dtype=jnp.int32)
    init, epoch = D.make_epochwise(settings, data.num_classes, config.epochs)
    states = init(seeds, split)
    shapes = jax.eval_shape(epoch, states, seeds, split)[1]
    records = jax.tree.map(lambda s: jnp.zeros((s.shape[0], config.epochs) + s.shape[1:], s.dtype), shapes)

    def step(i: int, st: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        new, rec = epoch(st["search"], seeds, split)
        recs = jax.tree.map(lambda r, v: r.at[:, i].set(v), st["records"], rec)
        return {"search": new, "records": recs}, {
            "valid_acc_mean": float(jnp.mean(rec.valid_acc)), "train_loss_mean": float(jnp.mean(rec.train_loss)),
            "skipped": int(jnp.sum(rec.skipped)), "compiles": i == 0}

    from jaxnas.common.checkpoint import fingerprint

    free = ("progress", "download", "scratch", "train", "network", "es")  # not what the search's epochs depend on
    run_settings = {"config": {k: v for k, v in config.to_dict().items() if k not in free},
                    "data": {"name": data.name, "content": fingerprint(data.train_x, data.train_y)},
                    "accuracy": "fraction"}  # checkpoints from before 2026-12-07 held percent: refused, not mixed
    out = run_loop(step, {"search": states, "records": records}, end=config.epochs, settings=run_settings,
                   checkpoint_dir=os.path.join(workdir, "checkpoints"),
                   metrics_path=os.path.join(workdir, "metrics.jsonl"), progress=config.progress, desc="darts",
                   unit="epoch", label="DARTS", stop_after=stop_after)
    recs = jax.tree.map(np.asarray, out.state["records"])
    info = {"resumed_from_epoch": out.resumed_from, "wall_s": sum(r.get("seconds", 0.0) for r in out.history)}
    return recs, info


def final_epochs(config: config_dict.ConfigDict, eigenvalues: np.ndarray) -> list[int | None]:
    """Per seed, the epoch whose cell is the result: RobustDARTS's stop epoch for rdarts_es (None if it does not
    fire: the last epoch), otherwise None."""
    if config.method != "rdarts_es":
        return [None] * eigenvalues.shape[0]
    from jaxnas.evaluation.robust_darts import early_stop_epoch

    es = config.es
    return [early_stop_epoch(ev, es.window, es.factor, es.delta, es.start_epoch) for ev in eigenvalues]


def space_view(name: str, steps: int = 4) -> dict[str, Any]:  # 4: DARTS's (DEFAULT_STEPS)
    """What the experiment needs of a space's derived architectures: the space they belong to (printing, the
    from-scratch network), which positions hold ops, the op names, which ops have no parameters, and the unit
    the op positions are counted in."""
    if name == "nb201":
        from jaxnas.models.nb201 import NONE, POOL, SKIP
        from jaxnas.spaces import nb201

        return {"space": nb201.SPACE, "op_positions": slice(None), "ops": nb201.OPS, "free": (NONE, SKIP, POOL),
                "unit": "edges"}
    from jaxnas.models.darts_nasnet import EVAL_OPS, darts_space

    free = tuple(EVAL_OPS.index(o) for o in ("identity", "max_pool_3x3", "avg_pool_3x3"))
    return {"space": darts_space(steps), "op_positions": slice(1, None, 2), "ops": EVAL_OPS, "free": free,
            "unit": "kept edges (normal and reduction cell)"}


def table_lookup(config: config_dict.ConfigDict, archs: np.ndarray) -> dict[str, np.ndarray] | None:
    """NAS-Bench-201's CIFAR-10 accuracies of archs (..., 6), or None without the table (or another space)."""
    from jaxnas.problems.nb201_table import load_nb201_table, table_path_exists

    if config.space != "nb201" or not table_path_exists():
        return None
    ev = load_nb201_table().query(archs)
    return {"valid": np.asarray(ev.valid), "test": np.asarray(ev.test)}


def scratch_settings(config: config_dict.ConfigDict) -> Any:
    """The from-scratch training recipe (`train`); its errors name the field, before any work."""
    from experiments.cli import prefixed
    from jaxnas.evaluation.population import TrainSettings

    return prefixed("train", lambda: TrainSettings(**config.train.to_dict()))


def train_from_scratch(config: config_dict.ConfigDict, data: Any, archs: np.ndarray) -> dict[str, np.ndarray] | None:
    """Each arch (S, positions) trained `scratch.seeds` times by the population engine: valid/test (S, seeds)."""
    if config.scratch.seeds == 0:
        return None
    from jaxnas.evaluation.population import PopulationTrainer

    settings = scratch_settings(config)
    options = config.network.to_dict()
    if config.space == "nasnet":  # the derived cells in the search network's layout
        options["stages"] = config.darts.stages
    net = space_view(config.space, config.darts.steps)["space"].network(num_classes=data.num_classes, **options)
    trainer = PopulationTrainer(net, data, settings, chunk_size=config.scratch.chunk_size)
    reps = np.tile(archs, (config.scratch.seeds, 1))  # repetition r of every arch, then r + 1
    scores = trainer.score(reps, seed=config.seed, first_id=SCRATCH_FIRST_ID)
    shape = (config.scratch.seeds, archs.shape[0])
    return {"valid": np.asarray(scores.valid_acc).reshape(shape).T, "test": np.asarray(scores.test_acc).reshape(shape).T}


def _mean(x: np.ndarray | None) -> float | None:
    return None if x is None else float(np.nanmean(x))


def run(config: config_dict.ConfigDict, workdir: str, report: Report | None = None) -> dict[str, Any]:
    validate(config)
    settings = darts_settings(config)
    scratch_settings(config)  # refused before the search, not after it
    from experiments.nas_search import load_data
    from jaxnas.common.metrics import device_summary, write_json

    data = load_data(config)
    os.makedirs(workdir, exist_ok=True)
    recs, info = search(config, settings, data, workdir)
    view = space_view(config.space, config.darts.steps)
    archs = recs.arch  # (S, E, positions)
    op_ids = archs[..., view["op_positions"]]  # (S, E, op positions)
    stops = final_epochs(config, recs.eigenvalue)
    final = np.array([config.epochs - 1 if e is None else e for e in stops])  # each seed's result epoch
    rows = np.arange(config.seeds)
    chosen = archs[rows, final]
    table = table_lookup(config, archs)
    scratch = train_from_scratch(config, data, chosen)
    seeds = list(range(config.seed, config.seed + config.seeds))
    counts = np.stack([(op_ids == op).sum(axis=(0, 2)) / (config.seeds * op_ids.shape[-1])
                       for op in range(len(view["ops"]))], -1)  # (E, ops): share of edges per op, over seeds
    final_table = None if table is None else table["test"][rows, final]
    per_seed = []
    for s, seed in enumerate(seeds):
        row = {"seed": seed, "final_arch": view["space"].to_string(chosen[s]), "stop_epoch": stops[s],
               "archs": [view["space"].to_string(a) for a in archs[s]],
               "valid_acc_supernet": recs.valid_acc[s].tolist(), "skipped_steps": int(recs.skipped[s].sum()),
               "parameter_free_edges": int(np.isin(op_ids[s, final[s]], view["free"]).sum())}
        if table is not None:
            row.update(table_test=table["test"][s].tolist(), table_valid=table["valid"][s].tolist(),
                       final_table_test=float(final_table[s]))
        if scratch is not None:
            row.update(scratch_valid=scratch["valid"][s].tolist(), scratch_test=scratch["test"][s].tolist())
        if settings.eigen:
            row["eigenvalue"] = recs.eigenvalue[s].tolist()
        per_seed.append(row)
    results = {
        "method": config.method, "space": config.space, "dataset": data.name, "image_shape": data.image_shape,
        "seeds": seeds, "epochs": config.epochs,
        "mean_final_table_test": _mean(final_table),
        "mean_scratch_valid": None if scratch is None else _mean(scratch["valid"]),
        "mean_scratch_test": None if scratch is None else _mean(scratch["test"]),
        "mean_parameter_free_edges": float(np.mean([r["parameter_free_edges"] for r in per_seed])),
        "edges_per_arch": int(op_ids.shape[-1]),
        "op_share_by_epoch": {op: counts[:, i].tolist() for i, op in enumerate(view["ops"])},
        "mean_table_test_by_epoch": None if table is None else table["test"].mean(0).tolist(),
        "skipped_steps": int(recs.skipped.sum()), "wall_s": info["wall_s"],
        "resumed_from_epoch": info["resumed_from_epoch"], "per_seed": per_seed,
        "settings": {"darts": config.darts.to_dict(), "es": config.es.to_dict(), "scratch": config.scratch.to_dict(),
                     "network": config.network.to_dict(), "train": config.train.to_dict(),
                     "core": {"method": settings.method, "order": settings.order, "eigen": settings.eigen}},
        "device": device_summary(),
    }
    write_json(os.path.join(workdir, "results.json"), results)
    from experiments.darts_report import write_report

    write_report(config, results, recs, workdir, report)
    return {k: v for k, v in results.items() if k not in ("per_seed", "settings", "op_share_by_epoch",
                                                          "mean_table_test_by_epoch")}


if __name__ == "__main__":
    launch(run, os.path.join(os.path.dirname(__file__), "configs", "darts.py"))
