"""StyleGAN on the embedded digits, measured offline (classifier-feature FID/KID) against training steps.

    python -m experiments.stylegan --config experiments/configs/stylegan.py --workdir runs/stylegan

Writes `<workdir>/results.json` and `report.md`:

* `fid`, `kid`, `fid_init`, `precision`, `recall`, `steps`, `images_per_s`, `classifier_test_accuracy`
  (`images_per_s` over the steps that did not compile: `images_per_s_steps` counts them and lists the excluded
  ones, the first call of each step variant in each run, a resumed one included)
  and the FID/KID curve against steps (`curve`), measured on the EMA generator with the features of a
  classifier trained in-project (`gans.metrics`); with `--config.eval.inception=WEIGHTS` also
  `inception_fid` / `inception_kid` of the final generator from standard Inception-v3 pool3 features
  (`gans.inception`; pytorch-fid's weights file; slow on a CPU: ~14 s per 50 images at 299x299).
* `style_mixing`: what the mapping network's styles control (the paper's disentanglement claim, Sec. 3.1
  and Fig. 3): for pairs of latents (A, B), A's image re-rendered with B's coarse, middle or fine styles;
  `class_change` is how often the classifier's predicted class of the mix differs from A's, `takes_b` how
  often it equals B's (over pairs whose A and B classes differ), `pixel_change` the mean absolute pixel
  difference to A. Coarse styles should carry the digit's identity, fine ones only stroke detail;
  `paper_claim` holds the two checks of that (`ordering`, `coarse_carry_identity`; see `paper_claim`) and the
  report says the verdict in a sentence.
* `no_mapping` (when `ablation.no_mapping`): the same measurements for a generator trained with the same
  budget and seed but without the mapping network (w = normalised z), as in the paper's Table 1/4
  comparison of traditional vs style-based generators.
* Images: samples, truncated samples, a style-mixing grid (A, B, A with B's coarse / middle / fine
  styles), a truncation sweep.

The layers are split into thirds of the style inputs (at 16x16: 4x4 | 8x8 | 16x16; the paper, at 1024x1024,
used 4-8 | 16-32 | 64-1024). A restart with the same settings resumes from the checkpoints, measurements
included (they are kept in the checkpointed history).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from ml_collections import config_dict

from experiments.cli import launch, lookup, prefixed
from experiments.configs import stylegan as stylegan_config
from experiments.stylegan_report import RANGES, layer_ranges, mixing_verdict, paper_claim, write_report  # noqa: F401
from experiments.validation import Bounds, as_setting, check_bounds, check_choices, check_strings
from gans.stylegan_config import DISCRIMINATORS, STRUCTURES, StyleGANConfig
from jaxnas.common.errors import ConfigError, check

# jax, matplotlib and the GAN modules are imported where they are used: a refused setting exits before them.
if TYPE_CHECKING:
    import jax

    from gans import metrics
    from gans.stylegan_train import GANTrainSettings, StyleGANTrainer
    from jaxnas.common.report import Report


# BOUNDS (every numeric setting and its cap) lives beside the defaults in experiments/configs/stylegan.py.
CHOICES = {"progress": (True, False), "data.download": (True, False), "ablation.no_mapping": (True, False),
           "data.channels": (0, 1, 3),
           "model.discriminator": DISCRIMINATORS, "model.structure": STRUCTURES}
STRINGS = ("data.name", "data.npz", "data.data_dir", "eval.inception")
# What the image loader calls the settings it was given (its own field names), as the user types them.
LOADER_FIELDS = {"npz_path": "data.npz", "images": "data.npz", "labels": "data.npz", "dataset": "data.name",
                 "size": "model.resolution", "channels": "data.channels", "seed": "seed"}


def validate(config: config_dict.ConfigDict) -> StyleGANConfig:
    """Every setting, before any data is loaded or anything compiled; errors name the field as typed. Returns
    the model (channels: the configured ones, or 1 until the data say otherwise)."""
    check_bounds(config, {field: Bounds(*b) for field, b in stylegan_config.BOUNDS.items()})
    check_choices(config, CHOICES)
    check_strings(config, STRINGS)
    d, t, m = config.data, config.train, config.model
    check(d.name != "", "data.name", "got ''; allowed: digits, npz, or a prepared TFDS name")
    if d.npz:
        check(d.name in ("digits", "npz"), "data.npz", f"given together with data.name={d.name!r}; use data.name=npz")
        check(os.path.isfile(d.npz), "data.npz", f"got {d.npz!r}: no such file; allowed: a .npz file with images "
              "(N,H,W[,C]) in [0, 1] (labels optional)")
    else:
        check(d.name != "npz", "data.name", "got 'npz' without data.npz; allowed: set data.npz=FILE.npz")
    for field in ("model.resolution", "train.lod_initial_resolution"):
        value = lookup(config, field)
        check(value & (value - 1) == 0, field, f"got {value}; allowed: a power of two")
    cfg = prefixed("model", lambda: StyleGANConfig(channels=d.channels or 1, **m.to_dict()))
    prefixed("model", cfg.validate)
    check(not config.ablation.no_mapping or m.z_dim == m.w_dim, "ablation.no_mapping",
          f"true needs model.z_dim == model.w_dim (the generator without mapping uses w = z; got {m.z_dim} and "
          f"{m.w_dim}); allowed: false, or equal dimensions")
    check(t.steps // t.checkpoint_every <= 10_000, "train.checkpoint_every",
          f"got {t.checkpoint_every}; {t.steps} steps would write {t.steps // t.checkpoint_every} checkpoints; "
          "allowed: at least train.steps / 10,000")
    return cfg


def _to01(x: Any) -> np.ndarray:
    return np.clip((np.asarray(x) + 1.0) / 2.0, 0.0, 1.0)


class Styles:
    """Renders images from per-layer styles of one trained generator (EMA weights, no noise)."""

    def __init__(self, trainer: StyleGANTrainer, g_params: Any):
        import jax

        from gans.stylegan_generator import Generator
        from gans.stylegan_styles import broadcast_ws

        gen, self.num_ws, self.params = trainer.gen, trainer.config.num_ws, g_params
        self.z_dim = trainer.config.z_dim
        lod = trainer.final_lod
        self._map = jax.jit(lambda p, z: broadcast_ws(gen.apply({"params": p}, z, method=Generator.map), self.num_ws))
        self._synth = jax.jit(lambda p, ws: gen.apply({"params": p}, ws, None, False, lod, method=Generator.synthesize))

    def ws(self, z: jax.Array) -> jax.Array:
        """(B, num_ws, w_dim) styles of latents z (B, z_dim)."""
        return self._map(self.params, z)

    def render(self, ws: jax.Array) -> np.ndarray:
        """Images in [0, 1] (B, R, R, C)."""
        return _to01(self._synth(self.params, ws))

    def mix(self, ws_a: jax.Array, ws_b: jax.Array, lo: int, hi: int) -> np.ndarray:
        """A's styles with layers [lo, hi) taken from B, rendered."""
        layer = np.arange(self.num_ws)[None, :, None]
        return self.render(np.where((layer >= lo) & (layer < hi), ws_b, ws_a))


def mixing_effects(styles: Styles, net: metrics.FeatureNet, key: jax.Array, n: int) -> dict[str, Any]:
    """For n latent pairs (A, B): how A's image changes when B's coarse / middle / fine styles replace A's.

    Returns per range `class_change` (share of mixes whose predicted class differs from A's), `takes_b`
    (share of mixes predicted as B's class, over pairs whose A and B predictions differ) and `pixel_change`
    (mean |mix - A| in [0, 1] pixels). The class fields are NaN when the feature net was not trained on
    class labels (unlabeled data). `per_layer` repeats the measurement for each single style input.
    """
    import jax

    k1, k2 = jax.random.split(key)
    ws_a = styles.ws(jax.random.normal(k1, (n, styles.z_dim)))
    ws_b = styles.ws(jax.random.normal(k2, (n, styles.z_dim)))
    img_a, img_b = styles.render(ws_a), styles.render(ws_b)
    labeled = net.task == "classes"
    pred_a, pred_b = net.predict(img_a), net.predict(img_b)
    differ = pred_a != pred_b
    def effect(lo: int, hi: int) -> dict[str, float]:
        mixed = styles.mix(ws_a, ws_b, lo, hi)
        pred = net.predict(mixed)
        return {
            "class_change": float(np.mean(pred != pred_a)) if labeled else float("nan"),
            "takes_b": float(np.mean(pred[differ] == pred_b[differ])) if labeled and differ.any() else float("nan"),
            "pixel_change": float(np.mean(np.abs(mixed - img_a))),
        }

    out: dict[str, Any] = {name: effect(lo, hi) for name, (lo, hi) in layer_ranges(styles.num_ws).items()}
    # One style input at a time: where in the network the digit's identity is decided.
    out["per_layer"] = [{"layer": i, "resolution": 2 ** (i // 2 + 2), **effect(i, i + 1)} for i in range(styles.num_ws)]
    out["paper_claim"] = paper_claim(out)
    return out


@dataclasses.dataclass
class Features:
    """The feature extractors of the evaluation: the in-project classifier, optionally Inception-v3."""

    net: metrics.FeatureNet
    real: np.ndarray  # classifier features of the held-out real images
    inception: Any = None
    real_inception: np.ndarray | None = None

    held_out: str = ""  # content hash of the held-out images the measurements compare with

    def settings(self, config: config_dict.ConfigDict) -> dict[str, Any]:
        """What decides the measurements kept in the checkpointed history (the training images the trainer
        records itself): a rerun with any of them changed is refused instead of mixing old and new figures."""
        e = config.eval
        return {"eval": {"every": e.every, "samples": e.samples, "classifier_steps": e.classifier_steps,
                         "inception": e.inception},
                "data": {"name": config.data.name, "channels": config.data.channels}, "held_out": self.held_out}

    def measure(self, fake: np.ndarray, final: bool = False) -> dict[str, float]:
        """Classifier-feature FID/KID/precision/recall of `fake`; Inception FID/KID too when `final`."""
        from gans import metrics

        feats = self.net.features(fake)
        kid_mean, kid_std = metrics.kid(self.real, feats)
        precision, recall = metrics.precision_recall(self.real, feats)
        out = {"fid": metrics.fid(self.real, feats), "kid": kid_mean, "kid_std": kid_std, "precision": precision,
               "recall": recall}
        if self.inception is not None and final:  # ~14 s per 50 images on a 2-core CPU: the final model only
            inc = self.inception.features(fake)
            out["inception_fid"] = metrics.fid(self.real_inception, inc)
            out["inception_kid"] = metrics.kid(self.real_inception, inc)[0]
        return out


def train_and_measure(cfg: StyleGANConfig, settings: GANTrainSettings, images: np.ndarray, feats: Features,
                      config: config_dict.ConfigDict, workdir: str, label: str) -> dict[str, Any]:
    """Trains one generator (resuming from `workdir`), measuring every `eval.every` steps; returns its record."""
    import jax

    from gans.stylegan_train import StyleGANTrainer
    from jaxnas.common.loop import steady_rate

    trainer = StyleGANTrainer(cfg, settings, images)
    key = jax.random.key(config.seed)
    eval_key = jax.random.fold_in(key, 99)
    state = trainer.init_state(jax.random.fold_in(key, 10**6))
    n, every = config.eval.samples, config.eval.every

    def measure(step: int, st: Any) -> dict[str, float] | None:
        if step % every and step != settings.steps:
            return None
        m = feats.measure(trainer.sample(st.g_ema, eval_key, n, lod=trainer.lod(step)), final=step == settings.steps)
        if config.progress:
            print(f"[{label}] step {step}: FID {m['fid']:.1f}, KID {m['kid']:.1f}", flush=True)
        return m

    curve = [{"step": 0, **measure(0, state)}]
    state, history = trainer.train(key, workdir=os.path.join(workdir, "checkpoints"), state=state, callback=measure,
                                   progress=config.progress, metrics_path=os.path.join(workdir, "metrics.jsonl"),
                                   settings=feats.settings(config))
    from gans.saved_generator import save_stylegan

    save_stylegan(workdir, cfg, state.g_ema, state.w_avg, trainer.final_lod)  # for gans.saved_generator.load_generator
    curve += [{k: v for k, v in h.items() if k in curve[0] or k.startswith("inception_")} for h in history if "fid" in h]
    rate, timed = steady_rate(history)  # without each run's compiling steps, resumed runs' included
    styles = Styles(trainer, state.g_ema)
    return {"trainer": trainer, "state": state, "styles": styles, "curve": curve,
            "train_step_s": sum(h["seconds"] for h in history),  # restored with the history on a restart
            "images_per_s": settings.batch_size * rate, "images_per_s_steps": timed,
            "style_mixing": mixing_effects(styles, feats.net, jax.random.fold_in(key, 5), config.eval.mixing_pairs)}


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    last, first = record["curve"][-1], record["curve"][0]
    out = {k: v for k, v in last.items() if k != "step"}
    out.update(fid_init=first["fid"], images_per_s=record["images_per_s"],
               images_per_s_steps=record["images_per_s_steps"], train_step_s=record["train_step_s"],
               style_mixing=record["style_mixing"], curve=record["curve"])
    return out


def run(config: config_dict.ConfigDict, workdir: str, report: Report | None = None) -> dict[str, Any]:
    cfg = validate(config)
    from gans import metrics
    from gans.stylegan_train import GANTrainSettings
    from jaxnas.common.checkpoint import fingerprint
    from jaxnas.common.metrics import device_summary, write_json
    from jaxnas.data import load_images

    settings = prefixed("train", lambda: GANTrainSettings(seed=config.seed, **config.train.to_dict()))
    settings.validate()
    import jax  # the trainer shards each batch over every device: refused here, not after the feature net trains

    n_dev = jax.local_device_count()
    check(settings.batch_size % n_dev == 0, "train.batch_size", f"got {settings.batch_size}; allowed: a "
          f"multiple of the {n_dev} devices ({jax.default_backend()}) the batch is split over")
    inception = None
    if config.eval.inception:
        from gans.inception import load_inception  # only when asked for: the network is large

        try:  # before any data: its errors (the file, or a key of its weights) under the setting that named it
            inception = load_inception(config.eval.inception)
        except ConfigError as err:
            part = () if err.field == "path" else (err.field,)  # a key of the weights stays in the message
            raise as_setting(err, {err.field: "eval.inception"}, parts=part) from None
    try:
        data = load_images(config.data.name, size=cfg.resolution, npz_path=config.data.npz or None,
                           data_dir=config.data.data_dir or None, seed=config.seed,
                           channels=config.data.channels or None, labels_required=False,
                           download=config.data.download)
    except ConfigError as err:
        raise as_setting(err, LOADER_FIELDS) from None
    cfg = dataclasses.replace(cfg, channels=data.image_shape[2])
    start = time.perf_counter()
    net = metrics.feature_net_for(data, steps=config.eval.classifier_steps, seed=config.seed)
    task = "class" if net.task == "classes" else "rotation-pretext"
    print(f"feature net ({task}): test accuracy {net.test_accuracy:.3f}", flush=True)
    held_out = np.concatenate([data.valid_x, data.test_x])
    feats = Features(net, net.features(held_out), inception,
                     inception.features(held_out) if inception is not None else None, fingerprint(held_out))
    main = train_and_measure(cfg, settings, data.train_x, feats, config, workdir, "mapping")
    results = {"device": device_summary(), "steps": settings.steps, **_summary(main),
               "classifier_test_accuracy": net.test_accuracy, "classifier_task": net.task}
    ablation = None
    if config.ablation.no_mapping:
        plain = dataclasses.replace(cfg, use_mapping=False)  # validate() checked it can be built
        ablation = train_and_measure(plain, settings, data.train_x, feats, config, os.path.join(workdir, "no_mapping"),
                                     "no mapping")
        results["no_mapping"] = _summary(ablation)
    results["wall_seconds"] = time.perf_counter() - start
    write_json(os.path.join(workdir, "results.json"), results)
    write_report(report, workdir, config, cfg, settings, results, main, ablation)
    return results  # small: the FID curve has one point per evaluation


if __name__ == "__main__":
    launch(run, os.path.join(os.path.dirname(__file__), "configs", "stylegan.py"))
