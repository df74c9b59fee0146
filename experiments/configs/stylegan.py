"""StyleGAN on the embedded digits (the course unit's question 4), measured offline.

Command:
  python -m experiments.stylegan --config experiments/configs/stylegan.py --workdir runs/stylegan
Variants: `:small` (tests: 8x8, a few steps).
Work in progress (issue 5): this first entry point trains, tracks classifier-feature FID/KID against
steps and writes samples, a style-mixing grid and a truncation sweep. The budgeted quality run (FID down
to a fifth of its initial value within 15 CPU minutes), the disentanglement measurement and the
no-mapping ablation are still to come. Expected runtime of the default on the 2-core CPU: ~15 minutes
(16x16, ~0.55 s per step of 32 images).
"""

from ml_collections import config_dict


def get_config(variant: str | None = None) -> config_dict.ConfigDict:
    c = config_dict.ConfigDict()
    c.seed = 0
    c.progress = True
    c.data = config_dict.ConfigDict({"name": "digits", "npz": "", "data_dir": ""})
    # CPU-sized network (official: fmap_base 8192, fmap_max 512, z/w 512).
    c.model = config_dict.ConfigDict({"resolution": 16, "z_dim": 128, "w_dim": 128, "mapping_layers": 8,
                                      "fmap_base": 512, "fmap_max": 64, "discriminator": "resnet"})
    # ema_kimg 10 is the paper's half-life; a short CPU run needs a shorter one to see its progress.
    c.train = config_dict.ConfigDict({"steps": 1500, "batch_size": 32, "lr": 0.002, "r1_gamma": 10.0,
                                      "r1_interval": 16, "style_mixing": 0.9, "ema_kimg": 1.0,
                                      "checkpoint_every": 250})
    c.eval = config_dict.ConfigDict({"every": 250, "samples": 1000, "classifier_steps": 400, "psi": 0.7,
                                     "cutoff": 8})
    if variant == "small":
        c.model.update({"resolution": 8, "z_dim": 8, "w_dim": 8, "mapping_layers": 2, "fmap_base": 64,
                        "fmap_max": 8})
        c.train.update({"steps": 4, "checkpoint_every": 2, "r1_interval": 2})
        c.eval.update({"every": 2, "samples": 64, "classifier_steps": 20})
    elif variant not in (None, ""):
        raise ValueError(f"config variant: got {variant!r}; allowed: small")
    return c
