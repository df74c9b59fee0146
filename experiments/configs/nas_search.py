"""Architecture search with real training: any registered strategy, candidates trained by the engine.

Command:
  python -m experiments.nas_search --config experiments/configs/nas_search.py --config.space=nb201 \
      --config.strategy=aging_evolution --config.dataset=digits --workdir runs/nas_digits
Other data: `--config.dataset=mnist` (if prepared for TFDS), `--config.npz_path=my_images.npz`.
Variants: `:small` (tests, under a minute), `:demo` (what `make demo` runs, about two minutes).

Aging evolution receives one chunk of candidates per batch, and refuses `chunk_size` above half of
`aging_evolution.population_size` (else every batch would replace most of the population:
generational replacement, not aging); every variant here keeps the population at twice the chunk.

Expected runtime on the 2-core CPU (default): about 10-15 minutes for 48 evaluations of 100 steps
plus 16 random baselines (see benchmarks/RESULTS.md for candidate-steps/s); `:small` under a minute.
Expected result: the best architecture's validation accuracy above the median of randomly drawn
architectures trained the same way (both are in results.json and the report).
"""

from ml_collections import config_dict


def get_config(variant: str | None = None) -> config_dict.ConfigDict:
    c = config_dict.ConfigDict()
    c.space = "nb201"
    c.strategy = "aging_evolution"  # any name in jaxnas.strategies.STRATEGIES
    c.dataset = "digits"  # digits (embedded, offline) | a prepared TFDS name (mnist, ...) | npz
    c.data_dir = ""  # TFDS data dir; empty: $JAXNAS_DATA_DIR or ~/.cache/jaxnas/tensorflow_datasets
    c.npz_path = ""  # a .npz with 'images' (N,H,W[,C]) in [0, 1] and 'labels' (N,); its errors name npz_path
    c.image_size = 16  # 4-256, a multiple of 4
    c.seed = 0  # 0 to 2**31 - 1
    c.evaluations = 48  # trained candidates the search may spend (1-10,000)
    c.chunk_size = 8  # candidates trained together in one compiled call (1-1024; = the strategy's batch; aging: <= P/2)
    # how a chunk's candidates run: auto (map on a CPU, vmap on accelerators) | map (one after another, each
    # computing only its chosen ops: about 4x faster than vmap on a CPU) | vmap (all at once)
    c.execution = "auto"
    c.baseline_random = 16  # random architectures trained the same way, for the median baseline (0-10,000)
    c.progress = True

    c.network = config_dict.ConfigDict({"channels": 8, "cells_per_stage": 1})  # channels 1-512, cells 1-16
    # NAS-Bench-201's optimiser (SGD, Nesterov 0.9, lr 0.1 cosine, wd 5e-4), a short schedule. Bounds: steps
    # 1-100,000, batch_size 1-4096, learning_rate in (0, 10], momentum [0, 0.999], weight_decay [0, 1].
    c.train = config_dict.ConfigDict({"steps": 100, "batch_size": 64, "learning_rate": 0.1, "momentum": 0.9,
                                      "weight_decay": 5e-4})
    # Strategy settings, scaled to tens of evaluations (Real et al. used P=100, S=25 for 20,000).
    c.aging_evolution = config_dict.ConfigDict({"population_size": 16, "sample_size": 4})
    c.tournament = config_dict.ConfigDict({"population_size": 16, "sample_size": 4, "sample_fraction": 0.0})
    c.reinforce = config_dict.ConfigDict({"learning_rate": 0.01, "hidden_size": 35, "num_layers": 2,
                                          "baseline_decay": 0.9, "entropy_weight": 1e-4, "temperature": 0.0,
                                          "tanh_constant": 0.0})
    # Q-learning (MetaQNN): its epsilon schedule spans `evaluations` models (the builder passes them); the
    # settings and their bounds are configs/nb201.py's (epsilon_schedule '': the paper's, scaled to evaluations).
    c.qlearning = config_dict.ConfigDict({"epsilon_schedule": "", "learning_rate": 0.01, "discount": 1.0,
                                          "initial_q": 0.5, "replay_samples": 128, "max_resamples": 100})
    if variant == "small":
        c.image_size = 8
        c.evaluations = 16
        c.baseline_random = 8
        c.network.channels = 4
        c.train.steps = 30
        c.train.batch_size = 32
        c.aging_evolution.population_size = 16  # twice the chunk of 8 (the tests' 8 devices round smaller chunks up to 8)
        c.aging_evolution.sample_size = 3
        c.tournament.population_size = 8
        c.tournament.sample_size = 3
    elif variant == "demo":  # `make demo`: digits at their native 8x8, about two minutes on the 2-core CPU
        c.image_size = 8
        c.evaluations = 40  # 16 random, then 3 batches of 8 children, each removing the 8 oldest
        c.baseline_random = 8
        c.train.steps = 50
        c.train.batch_size = 32
    elif variant not in (None, ""):
        raise ValueError(f"config variant: got {variant!r}; allowed: small, demo")
    return c
