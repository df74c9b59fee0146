"""DARTS (Liu et al., ICLR 2019) and its remedies on the NAS-Bench-201 supernet, many seeds vmapped in one program.

Command:
  python -m experiments.darts --config experiments/configs/darts.py --config.method=darts --workdir runs/darts
Methods: darts (first order), darts2 (second order, the paper's finite-difference Hessian-vector product),
darts_minus (DARTS-: an auxiliary skip connection decayed 1 -> 0), gdas (Gumbel straight-through sampling, tau
10 -> 0.1), rdarts_es (RobustDARTS's early stopping on the dominant Hessian eigenvalue) and beta (beta-DARTS's
Beta-Decay regularisation, lambda 0 -> 50). After every epoch each seed's derived cell (argmax per edge) is looked
up in the NAS-Bench-201 table; at the end each seed's final cell is trained from scratch by the population engine
(`train`, `network`, the same recipe as `experiments.nas_search`).
Spaces: nb201 (NAS-Bench-201's cell, one alpha (6, 5)) and nasnet (DARTS's own cell, a normal and a reduction
alpha (2, 14, 8) with `darts.steps` = 4 nodes, the paper's top-2 discretisation; the derived cells are trained from scratch as NASNet networks
of the same layout, `darts.stages` stacks of `network.cells_per_stage` cells).
Variants: `:small` (tests), `:demo` (`make demo`), `:nasnet` (DARTS's cell at the CPU's scale),
`:nasnet_small` (tests).

Expected runtime on the 2-core CPU (default: 8 seeds x 50 epochs, C=8, one cell per stage, digits 8x8): see
benchmarks/RESULTS.md (DARTS section) for epochs/s; `:demo` about a minute; `:nasnet` (8 seeds x 20 epochs, C=4)
about 20 minutes after a 4-minute compile (results/darts_nasnet.json).
"""

from ml_collections import config_dict

METHODS = ("darts", "darts2", "darts_minus", "gdas", "rdarts_es", "beta")
SPACES = ("nb201", "nasnet")

# Every numeric setting and its cap: (kind, low, high[, low end open]).
BOUNDS = {
    "seed": (int, 0, 2**31 - 1), "seeds": (int, 1, 256), "epochs": (int, 1, 10_000), "image_size": (int, 4, 256),
    "darts.channels": (int, 1, 512), "darts.cells_per_stage": (int, 1, 16),
    "darts.stages": (int, 1, 5), "darts.steps": (int, 1, 8), "darts.batch_size": (int, 1, 4096),
    "darts.w_lr": (float, 0.0, 10.0, True), "darts.w_lr_min": (float, 0.0, 10.0),
    "darts.w_momentum": (float, 0.0, 0.999), "darts.w_weight_decay": (float, 0.0, 1.0),
    "darts.w_grad_clip": (float, 0.0, 1e6, True), "darts.a_lr": (float, 0.0, 10.0, True),
    "darts.a_weight_decay": (float, 0.0, 1.0), "darts.alpha_init_scale": (float, 0.0, 10.0),
    "darts.hvp_radius": (float, 0.0, 10.0, True), "darts.power_iterations": (int, 1, 1000),
    "darts.aux_skip": (float, 0.0, 10.0), "darts.beta_lambda": (float, 0.0, 1e4),
    "darts.tau_first": (float, 0.0, 100.0, True), "darts.tau_last": (float, 0.0, 100.0, True),
    "es.window": (int, 1, 100), "es.factor": (float, 0.0, 100.0, True), "es.delta": (int, 1, 100),
    "es.start_epoch": (int, 0, 10_000),
    "scratch.seeds": (int, 0, 256), "scratch.chunk_size": (int, 1, 1024),
    "network.channels": (int, 1, 512), "network.cells_per_stage": (int, 1, 16),
    "train.steps": (int, 1, 100_000), "train.batch_size": (int, 1, 4096), "train.learning_rate": (float, 0.0, 10.0, True),
    "train.momentum": (float, 0.0, 0.999), "train.weight_decay": (float, 0.0, 1.0),
}


def get_config(variant: str | None = None) -> config_dict.ConfigDict:
    c = config_dict.ConfigDict()
    c.space = "nb201"
    c.method = "darts"
    c.dataset = "digits"  # digits (embedded, offline) | a prepared TFDS name (mnist, ...) | npz
    c.data_dir = ""
    c.download = False  # True: TFDS may download and prepare a catalogue dataset missing from data_dir (needs internet)
    c.npz_path = ""
    c.image_size = 8  # a multiple of 4
    c.seed = 0  # searches use seeds seed .. seed + seeds - 1, all in one vmapped program
    c.seeds = 8
    c.epochs = 50  # NAS-Bench-201's DARTS: 50
    c.eigen = False  # record the dominant eigenvalue of grad^2_alpha L_val every epoch (rdarts_es: always)
    c.progress = True
    # The paper's hyperparameters (jaxnas.evaluation.darts.DartsSettings); the supernet's size scaled to the CPU
    # (NAS-Bench-201's DARTS: channels 16, cells_per_stage 5).
    c.darts = config_dict.ConfigDict({
        "channels": 8, "cells_per_stage": 1, "stages": 3, "batch_size": 64, "w_lr": 0.025, "w_lr_min": 0.001,
        # DARTS's cell (space nasnet) only: intermediate nodes per cell (DARTS: 4; nb201's cell is fixed)
        "steps": 4,
        "w_momentum": 0.9,
        "w_weight_decay": 3e-4, "w_grad_clip": 5.0, "a_lr": 3e-4, "a_weight_decay": 1e-3, "alpha_init_scale": 1e-3,
        "hvp": "finite", "hvp_radius": 0.01, "power_iterations": 20,
        "aux_skip": 1.0, "tau_first": 10.0, "tau_last": 0.1, "beta_lambda": 50.0,
        # GDAS's gradient for the unsampled ops: "code" (its official code) or "paper" (the relaxed sum's)
        "gdas_estimator": "code"})
    # RobustDARTS's stopping rule (jaxnas.evaluation.robust_darts; the official defaults)
    c.es = config_dict.ConfigDict({"window": 5, "factor": 1.3, "delta": 4, "start_epoch": 10})
    # From-scratch training of each seed's final cell (the population engine; experiments.nas_search's recipe);
    # scratch.seeds: training seeds per cell (0: skip this phase).
    c.scratch = config_dict.ConfigDict({"seeds": 1, "chunk_size": 8})
    c.network = config_dict.ConfigDict({"channels": 8, "cells_per_stage": 1})
    c.train = config_dict.ConfigDict({"steps": 100, "batch_size": 64, "learning_rate": 0.1, "momentum": 0.9,
                                      "weight_decay": 5e-4})
    if variant == "small":  # tests: tiny supernet, a few epochs
        c.seeds = 2
        c.epochs = 3
        c.darts.channels = 4
        c.darts.batch_size = 32
        c.darts.power_iterations = 3
        c.network.channels = 4
        c.train.steps = 20
        c.train.batch_size = 32
        c.scratch.chunk_size = 2
    elif variant == "nasnet":  # DARTS's cell at the CPU's scale: C=4, 5 cells (3 normal, 2 reduction), 20 epochs
        c.space = "nasnet"
        c.epochs = 20
        c.darts.channels = 4
        c.network.channels = 4
    elif variant == "nasnet_small":  # tests: DARTS's cell with 2 intermediate nodes (5 edges), 3 cells (stages=2)
        c.space = "nasnet"
        c.darts.steps = 2
        c.seeds = 2
        c.epochs = 2
        c.darts.stages = 2
        c.darts.channels = 2
        c.darts.batch_size = 16
        c.network.channels = 2
        c.train.steps = 5
        c.train.batch_size = 16
        c.scratch.chunk_size = 2
    elif variant == "demo":  # `make demo`: 8 seeds, a short search
        c.epochs = 10
        c.darts.channels = 4
        c.network.channels = 4
        c.train.steps = 50
        c.train.batch_size = 32
    return c
