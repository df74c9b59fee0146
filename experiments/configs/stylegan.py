"""StyleGAN on the embedded digits (the course unit's question 4), measured offline.

Command:
  python -m experiments.stylegan --config experiments/configs/stylegan.py --workdir runs/stylegan
Variants: `:demo` (`make demo`: 300 steps, no ablation, ~2 min), `:small` (tests: 8x8, a few steps).
The default trains two generators with the same budget: the StyleGAN one (~13 min of training on the idle
2-core CPU: 16x16 grown progressively from 4x4, 6,000 steps of 32 at ~270 images/s; ~13 min with the
evaluations) and, for `ablation.no_mapping`, one without the mapping network (as long again).
`--config.ablation.no_mapping=false` halves the time.
Other data: `--config.data.npz=FILE.npz` (`images` (N,H,W[,C]) in [0, 1]; `labels` optional: without them
the FID features come from a rotation-pretext net and the class-based style measurements are NaN), or a
prepared TFDS name (`--config.data.name=mnist`; `celeb_a` too: no labels, centre-cropped). Standard Inception
FID as well: `--config.eval.inception=pt_inception-2015-12-05-6726825d.pth` (see `gans/inception.py`).
"""

from ml_collections import config_dict

# Every numeric setting as (kind, low, high[, low excluded]), as the user types it. experiments.stylegan refuses
# a value outside (NaN and infinity included) in one line naming the field, before any data is loaded; the caps
# keep a typo from planning an unbounded run. Also: model.resolution and train.lod_initial_resolution powers of
# two (eval.cutoff beyond the style inputs truncates them all), ablation.no_mapping needs z_dim == w_dim,
# at most 10,000 checkpoints (train.steps / train.checkpoint_every).
BOUNDS = {
    "seed": (int, 0, 2**31 - 1), "model.resolution": (int, 8, 1024), "model.z_dim": (int, 1, 2048),
    "model.w_dim": (int, 1, 2048), "model.mapping_layers": (int, 1, 32), "model.fmap_base": (int, 1, 65_536),
    "model.fmap_max": (int, 1, 4096), "train.steps": (int, 1, 1_000_000), "train.batch_size": (int, 1, 4096),
    "train.lr": (float, 0.0, 1.0, True), "train.r1_gamma": (float, 0.0, 1e6), "train.r1_interval": (int, 1, 1_000_000),
    "train.style_mixing": (float, 0.0, 1.0), "train.ema_kimg": (float, 0.0, 1e6),
    "train.lod_initial_resolution": (int, 4, 1024), "train.lod_training_kimg": (float, 0.0, 1e6),
    "train.lod_transition_kimg": (float, 0.0, 1e6), "train.checkpoint_every": (int, 1, 1_000_000),
    "eval.every": (int, 1, 1_000_000), "eval.samples": (int, 2, 100_000), "eval.classifier_steps": (int, 1, 100_000),
    "eval.psi": (float, -2.0, 2.0), "eval.cutoff": (int, 0, 64), "eval.mixing_pairs": (int, 2, 100_000),
}


def get_config(variant: str | None = None) -> config_dict.ConfigDict:
    c = config_dict.ConfigDict()
    c.seed = 0
    c.progress = True
    # channels: 0 keeps the source's (digits: 1), 1 averages RGB to gray, 3 makes RGB.
    c.data = config_dict.ConfigDict({"name": "digits", "npz": "", "data_dir": "", "channels": 0,
                                 "download": False})  # download: TFDS may fetch a missing catalogue dataset
    # CPU-sized network (official: fmap_base 8192, fmap_max 512, z/w 512). fmap_base 256 / fmap_max 128 keep the
    # official profile's halving per resolution (128 / 64 / 32 channels at 4 / 8 / 16 px); a flat 64 channels
    # (fmap_base 512, fmap_max 64) trained 1.5x slower and worse. structure "progressive" is the paper's
    # progressive growing (lod schedule below); "fixed" trains at 16x16 from the start (the demo's 300 steps
    # are too few to grow); StyleGAN2's skip outputs ("skip") scored worse in early single runs (not kept as results).
    c.model = config_dict.ConfigDict({"resolution": 16, "z_dim": 128, "w_dim": 128, "mapping_layers": 8,
                                      "fmap_base": 256, "fmap_max": 128, "discriminator": "resnet",
                                      "structure": "progressive"})
    # ema_kimg 10 is the paper's half-life; a short CPU run needs a shorter one to see its progress.
    # Progressive growing from 4x4 (the official TrainingSchedule's default; StyleGAN's FFHQ run starts at
    # 8x8), its 600k + 600k images per resolution scaled down to 12k + 12k: 4x4 for steps 0-375, fading to
    # 8x8 over 375-750, 8x8 to 1125, fading to 16x16 over 1125-1500, 16x16 after.
    # 6,000 steps of 32: 12.3 min of training on the idle 2-core CPU (272 images/s, seed 0).
    c.train = config_dict.ConfigDict({"steps": 6000, "batch_size": 32, "lr": 0.002, "r1_gamma": 10.0,
                                      "r1_interval": 16, "style_mixing": 0.9, "ema_kimg": 1.0,
                                      "lod_initial_resolution": 4, "lod_training_kimg": 12.0,
                                      "lod_transition_kimg": 12.0, "checkpoint_every": 1500})
    c.eval = config_dict.ConfigDict({"every": 1500, "samples": 1000, "classifier_steps": 400, "psi": 0.7,
                                     "cutoff": 8, "mixing_pairs": 1000, "inception": ""})
    c.ablation = config_dict.ConfigDict({"no_mapping": True})
    if variant == "demo":
        c.model.structure = "fixed"  # 300 steps are too few to grow (phases cut to 2.4k images: FID 790 at the end)
        c.train.update({"steps": 300, "checkpoint_every": 100})
        c.eval.update({"every": 100, "samples": 500, "mixing_pairs": 500})
        c.ablation.no_mapping = False
    elif variant == "small":
        c.model.update({"resolution": 8, "z_dim": 8, "w_dim": 8, "mapping_layers": 2, "fmap_base": 64,
                        "fmap_max": 8, "structure": "fixed"})
        c.train.update({"steps": 4, "checkpoint_every": 2, "r1_interval": 2})
        c.eval.update({"every": 2, "samples": 64, "classifier_steps": 20, "mixing_pairs": 16})
    elif variant not in (None, ""):
        raise ValueError(f"config variant: got {variant!r}; allowed: demo, small")
    return c
