"""Making search affordable: each speed-up measured against standalone training of the same candidates.

Command:
  python -m experiments.speedups --config experiments/configs/speedups.py --config.speedup=weight_sharing \
      --workdir runs/speedups
Speed-ups implemented: weight_sharing (one-shot supernet, uniform single-path sampling; weights off the
sampled path and their momentum untouched, `--config.weight_sharing.off_path=decayed` for the plain step),
pruning (`--config.pruning.method=magnitude`: magnitude pruning before or during training,
`--config.pruning.sparsity=0.5 --config.pruning.mode=during`, nominal MACs only; `--config.pruning.method=
structured`: filters by L1 norm after a quarter of training, the rest at half the widths, timed against
dense training in the same run),
early_stopping (successive halving, `--config.early_stopping.eta=3`, optional median stopping rule),
incremental (children grown from trained parents by a function-preserving op insertion).
Expected runtime on the 2-core CPU: about 3-6 minutes of CPU time each (16 standalone candidates + one
supernet on 8x8 digits). The published figures: `--publish speedups_NAME` (results/speedups_*.json).
Expected result: several times less compute; weight sharing's Kendall tau against standalone training is
near zero on this easy task; structured pruning trains measurably faster (the figures are in the README).
"""

from ml_collections import config_dict


def get_config(variant: str | None = None) -> config_dict.ConfigDict:
    c = config_dict.ConfigDict()
    c.speedup = "weight_sharing"
    c.space = "nb201"  # a space with a candidate network (jaxnas.spaces.SPACES)
    c.dataset = "digits"
    c.data_dir = ""
    c.download = False  # True: TFDS may download and prepare a catalogue dataset missing from data_dir (needs internet)
    c.image_size = 8
    c.seed = 0
    c.candidates = 16  # random architectures scored both ways
    c.chunk_size = 8
    # how a chunk's candidates run: auto (map on a CPU, vmap on accelerators) | map (one after another, each
    # computing only its chosen ops: about 4x faster than vmap on a CPU) | vmap (all at once)
    c.execution = "auto"
    c.progress = True
    c.network = config_dict.ConfigDict({"channels": 8, "cells_per_stage": 1})
    c.train = config_dict.ConfigDict({"steps": 100, "batch_size": 32, "learning_rate": 0.1, "momentum": 0.9,
                                      "weight_decay": 5e-4})
    # off_path: frozen (off-path weights and momentum untouched, as PyTorch skips params without grad) | decayed
    c.weight_sharing = config_dict.ConfigDict({"supernet_steps": 400, "off_path": "frozen"})
    # method magnitude: sparsity of every kernel, mode before | during (zeros in dense kernels: nominal MACs);
    # method structured: filters by L1 norm (Li et al. 2017), channel_fraction of every width removed after
    # prune_at of training, the rest trained at the smaller widths; its wall time is timed `repeats` times
    c.pruning = config_dict.ConfigDict({"method": "magnitude", "sparsity": 0.5, "mode": "during",
                                        "channel_fraction": 0.5, "prune_at": 0.25, "repeats": 3})
    # successive halving; min_steps 0 = R / eta^2 (Hyperband's eta 3 gives budgets R/9, R/3, R)
    c.early_stopping = config_dict.ConfigDict({"eta": 3, "min_steps": 0, "median_rule": False})
    # the child trains child_fraction of the parent's steps; accuracy is recorded at eval_points points
    # and fine-tunes at lr_scale x the learning rate
    c.incremental = config_dict.ConfigDict({"child_fraction": 0.25, "eval_points": 4, "lr_scale": 0.1})
    if variant == "small":
        c.candidates = 8
        c.network.channels = 4
        c.weight_sharing.supernet_steps = 150
        c.train.steps = 18  # early stopping rungs 2, 6, 18
    elif variant not in (None, ""):
        raise ValueError(f"config variant: got {variant!r}; allowed: small")
    return c
