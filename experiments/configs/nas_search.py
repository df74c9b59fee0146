"""Architecture search with real training: any registered strategy, candidates trained by the engine.

Command:
  python -m experiments.nas_search --config experiments/configs/nas_search.py --config.space=nb201 \
      --config.strategy=aging_evolution --config.dataset=digits --workdir runs/nas_digits
Other data: `--config.dataset=mnist` (if prepared for TFDS), `--config.npz_path=my_images.npz`.
Variants: `:small` (tests, under a minute), `:demo` (what `make demo` runs, about two minutes), `:metaqnn`,
`:nasnet` (AmoebaNet's aging evolution on NASNet cells), `:hierarchical` (hierarchical NAS's tournament).

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
    c.download = False  # True: TFDS may download and prepare a catalogue dataset missing from data_dir (needs internet)
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
    # MetaQNN's space (--config.space=metaqnn; jaxnas/spaces/metaqnn.py) and its own training recipe, which replaces
    # `network` and `train` for this space. Layers: filters, receptive fields, (size, stride) pools, FC widths, at
    # most `max_fc` FC layers in a row, FC only at representation sizes <= fc_max_size, layer_limit 1-32.
    # Training (Baker et al. 2017, Sec. 4.2; published hyper_parameters.py): Adam, weight decay 5e-4, the rate times
    # 0.2 every 5 epochs; a model not above 1.5x chance (0.15 at 10 classes) after its first epoch restarts from a
    # new initialisation at 0.4x the rate, at most 5 times. Scaled: 10 epochs (published 20) and Adam 0.01
    # (published 0.001 over ~8,600 MNIST steps; 1e-3 / 3e-3 / 1e-2 compared on 16 random networks, data seed 100,
    # median valid 88.0 / 90.8 / 93.5%: not the seeds reported).
    c.metaqnn = config_dict.ConfigDict({
        "layer_limit": 8, "conv_filters": (8, 16, 32, 64), "conv_sizes": (1, 3, 5), "pools": ((5, 3), (3, 2), (2, 2)),
        "fc_widths": (128, 64, 32), "max_fc": 2, "fc_max_size": 4, "layer_types": ("conv", "pool", "fc", "gap"),
        "train": config_dict.ConfigDict({
            "epochs": 10, "batch_size": 64, "learning_rate": 0.01, "weight_decay": 5e-4, "decay_epochs": 5,
            "decay_factor": 0.2, "restarts": 5, "restart_factor": 0.4, "restart_check_epochs": 1,
            "restart_threshold_x_chance": 1.5}),
    })
    # AmoebaNet's cell space (--config.space=nasnet; jaxnas/spaces/nasnet.py, Real et al. 2019): B combinations per
    # cell (1-16) over `ops`, the identity (no-change) mutation's probability; `network` replaces the top-level one:
    # F = channels (1-512), N = cells_per_stage (1-16), stem of stem_multiplier * F, `stages` stacks (images divisible
    # by 2**(stages - 1)). The paper's CPU scale F=8, N=1; its search phase N=3, F=24 (jaxnas.models.nasnet.GPU_OPTIONS).
    c.nasnet = config_dict.ConfigDict({
        "B": 5, "ops": ("identity", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "avg_pool_3x3", "max_pool_3x3",
                        "dil_sep_conv_3x3", "conv_1x7_7x1"), "identity_prob": 0.05,
        "network": config_dict.ConfigDict({"channels": 8, "cells_per_stage": 1, "stem_multiplier": 3, "stages": 3}),
    })
    # Hierarchical NAS's space (--config.space=hierarchical; jaxnas/spaces/hierarchical.py, Liu et al. 2018): M motifs
    # of motif_nodes nodes over `primitives`, a cell of cell_nodes nodes over the motifs (the paper: 6, 4, 5); every
    # search starts from the trivial genotype mutated init_mutations times (the paper: 1,000). Its tournament is 5% of
    # the population (tournament.sample_fraction = 0.05, set by the `:hierarchical` variant).
    c.hierarchical = config_dict.ConfigDict({
        "motifs": 6, "motif_nodes": 4, "cell_nodes": 5,
        "primitives": ("conv1x1", "dwconv3x3", "sepconv3x3", "maxpool3x3", "avgpool3x3", "identity"),
        "init_mutations": 1000,
        "network": config_dict.ConfigDict({"channels": 8, "cells_per_stage": 1, "stages": 3}),
    })
    if variant == "small":
        c.metaqnn.layer_limit = 3
        c.metaqnn.conv_filters = (4, 8)
        c.metaqnn.fc_widths = (16,)
        c.metaqnn.train.epochs = 2
        c.metaqnn.train.batch_size = 32
        c.metaqnn.train.decay_epochs = 1
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
    elif variant == "metaqnn":  # `make demo`'s MetaQNN run: Q-learning on digits 8x8, about three minutes
        c.space = "metaqnn"
        c.strategy = "qlearning"
        c.image_size = 8
        c.evaluations = 32
        c.baseline_random = 16
        c.metaqnn.layer_limit = 6
        c.metaqnn.train.epochs = 4
        c.metaqnn.train.decay_epochs = 2
    elif variant == "nasnet":  # AmoebaNet's aging evolution on NASNet cells, digits 8x8, about three minutes
        c.space = "nasnet"
        c.image_size = 8
        c.evaluations = 32
        c.baseline_random = 8
        c.train.steps = 60
        c.train.batch_size = 32
        c.nasnet.network.channels = 4
        c.aging_evolution.population_size = 16
        c.aging_evolution.sample_size = 4  # P / S = 4 as the paper's P = 100, S = 25
    elif variant == "hierarchical":  # hierarchical NAS's plain tournament (5% of the population), digits 8x8
        c.space = "hierarchical"
        c.strategy = "tournament"
        c.image_size = 8
        c.evaluations = 32
        c.baseline_random = 8
        c.train.steps = 60
        c.train.batch_size = 32
        c.hierarchical.network.channels = 4
        c.tournament.population_size = 16
        c.tournament.sample_fraction = 0.05
    elif variant not in (None, ""):
        raise ValueError(f"config variant: got {variant!r}; allowed: small, demo, metaqnn, nasnet, hierarchical")
    return c
