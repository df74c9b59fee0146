"""CycleGAN on unpaired digits with a known mapping (the course unit's question 5).

Command:
  python -m experiments.cyclegan --config experiments/configs/cyclegan.py --workdir runs/cyclegan_tint
  python -m experiments.cyclegan --config experiments/configs/cyclegan.py --config.transform=invert \
      --config.train.identity=0 --workdir runs/cyclegan_invert
Variants: `:demo` (`make demo`: 1,000 steps, ~2 min), `:small` (tests: 16x16, a few steps).
Domain A: sklearn digits upsampled to 32x32 (one half of the training split); domain B: a fixed invertible
transform T of the *other* half (`--config.transform=tint|invert|invert_tint`), so training is unpaired and
G(a) can be compared with T(a). Other data: `--config.data.npz=FILE.npz` (the known-transform mode on your
images), `--config.data.npz_a=A.npz --config.data.npz_b=B.npz` (your unpaired pair: no ground truth), or
a prepared TFDS pair `--config.data.name=cycle_gan/horse2zebra` (--config.model.resolution=64 or more).

Identity loss and inversion: the identity term asks G to leave images that are already in B unchanged,
G(b) = b, while inversion asks G to turn black into white: for a pixelwise mapping the two contradict each
other. Measured (5,000 steps): with the paper's identity weight 0.5, inversion keeps the digit in 2-3% of
translations (G learns to hide A's digit in blob-like images that its inverse decodes: low cycle error,
wrong digits); with `--config.train.identity=0` in ~98%. For the tint (and any colour mapping that leaves
B's colours distinguishable from A's) the paper's 0.5 works and is the default.

Network: the paper's ResNet generator and PatchGAN discriminator at CPU widths (ngf/ndf 16 instead of 64,
3 residual blocks instead of 6/9, a 2-layer PatchGAN for 32x32 images instead of the 3-layer 70x70 one);
training: the paper's losses, optimiser, pool and batch size 1, 5,000 steps (~25 iterations/s on the
2-core CPU: ~4 minutes plus evaluations).
"""

from ml_collections import config_dict

# Every numeric setting as (kind, low, high[, low excluded]), as the user types it. experiments.cyclegan refuses
# a value outside (NaN and infinity included) in one line naming the field, before any data is loaded; the caps
# keep a typo from planning an unbounded run. Also: model.resolution a multiple of 4 with room for
# n_downsampling and disc_layers, at most 10,000 checkpoints (train.steps / train.checkpoint_every), Adam's betas
# below 1 (at 1 its bias correction divides by zero).
BOUNDS = {
    "seed": (int, 0, 2**31 - 1), "model.resolution": (int, 16, 512), "model.ngf": (int, 1, 256),
    "model.ndf": (int, 1, 256), "model.n_res_blocks": (int, 0, 32), "model.n_downsampling": (int, 0, 6),
    "model.disc_layers": (int, 1, 8), "model.init_std": (float, 0.0, 10.0, True), "train.steps": (int, 1, 1_000_000),
    "train.batch_size": (int, 1, 1024), "train.lr": (float, 0.0, 1.0, True), "train.beta1": (float, 0.0, 0.9999),
    "train.beta2": (float, 0.0, 0.9999), "train.decay_start": (float, 0.0, 1.0),
    "train.cycle_lambda": (float, 0.0, 1e6), "train.identity": (float, 0.0, 1e6), "train.pool_size": (int, 0, 10_000),
    "train.checkpoint_every": (int, 1, 1_000_000),
    "eval.every": (int, 1, 1_000_000), "eval.images": (int, 1, 100_000), "eval.classifier_steps": (int, 1, 100_000),
}


def get_config(variant: str | None = None) -> config_dict.ConfigDict:
    c = config_dict.ConfigDict()
    c.seed = 0
    c.progress = True
    c.transform = "tint"
    c.data = config_dict.ConfigDict({"name": "digits", "npz": "", "npz_a": "", "npz_b": "", "data_dir": "",
                                     "channels": 0, "download": False})  # download: TFDS may fetch a missing dataset
    c.model = config_dict.ConfigDict({"resolution": 32, "ngf": 16, "ndf": 16, "n_res_blocks": 3, "n_downsampling": 2,
                                      "disc_layers": 2, "init_std": 0.02})
    c.train = config_dict.ConfigDict({"steps": 5000, "batch_size": 1, "lr": 2e-4, "beta1": 0.5, "beta2": 0.999,
                                      "decay_start": 0.5, "adversarial_loss": "lsgan", "cycle_lambda": 10.0,
                                      "identity": 0.5, "pool_size": 50, "checkpoint_every": 1000})
    c.eval = config_dict.ConfigDict({"every": 500, "images": 300, "classifier_steps": 400})
    if variant == "demo":
        c.train.update({"steps": 1000, "checkpoint_every": 500})
        c.eval.update({"every": 250})
    elif variant == "small":
        c.model.update({"resolution": 16, "ngf": 4, "ndf": 4, "n_res_blocks": 1, "disc_layers": 1})
        c.train.update({"steps": 4, "batch_size": 2, "checkpoint_every": 2, "pool_size": 3})
        c.eval.update({"every": 2, "images": 32, "classifier_steps": 20})
    elif variant not in (None, ""):
        raise ValueError(f"config variant: got {variant!r}; allowed: demo, small")
    return c
