"""CycleGAN on unpaired images, measured against a known mapping where there is one.

    python -m experiments.cyclegan --config experiments/configs/cyclegan.py --workdir runs/cyclegan

Writes `<workdir>/results.json` and `report.md`. With a known transform T (the default: digits and T(digits)):

* `translation_error_ab` = mean |G(a) - T(a)| / mean |a - T(a)| over held-out A images: the translation's
  error normalised by that of the identity map (0 is perfect, 1 is no better than not translating);
  `translation_error_ba` the same for F(b) against T^-1(b).
* `cycle_error`: mean |F(G(a)) - a| and |G(F(b)) - b| averaged (in [0, 1] pixel units; `cycle_error_a/_b`).
* `label_preservation`: how often a classifier trained in-project (on both domains' training images) predicts
  the same digit for x and its translation, averaged over both directions (`label_preservation_ab/_ba`).
* `mean_image_error_ab/_ba`: the normalised error of a translation that ignores its input (the target
  domain's mean image); for inversion a constant mid-gray image already scores 0.5, so the error alone is
  not enough: label preservation shows that the translation keeps the digit.
* `fid_a`, `fid_b`: classifier-feature FID of the translations against held-out real images of the target
  domain (comparable only within this project).
* the same measurements against training steps (`curve`), the losses (`losses`), `steps`, `iterations_per_s`
  (over the steps that did not compile: `iterations_per_s_steps` counts them and lists the excluded ones, the
  first step of each run, a resumed one included).

Without a known mapping (a user's pair of `.npz` files, or a TFDS cycle_gan pair) the translation errors are
null; without labels label preservation is null and the FID features come from a rotation-pretext net.
Restarting with the same settings resumes from the checkpoints, measurements included.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from ml_collections import config_dict

from experiments.cli import launch, prefixed
from experiments.configs import cyclegan as cyclegan_config
from experiments.validation import Bounds, as_setting, check_bounds, check_choices, check_strings
from jaxnas.common.errors import ConfigError, check

# jax, matplotlib and the GAN modules are imported where they are used: a refused setting exits before them.
if TYPE_CHECKING:
    from gans import metrics
    from gans.cyclegan_data import UnpairedData
    from gans.cyclegan_train import CycleGANTrainer
    from jaxnas.common.report import Report

# BOUNDS (every numeric setting and its cap) lives beside the defaults in experiments/configs/cyclegan.py.
CHOICES = {"progress": (True, False), "data.channels": (0, 1, 3), "data.download": (True, False)}
STRINGS = ("transform", "data.name", "data.npz", "data.npz_a", "data.npz_b", "data.data_dir")
# What the image loader calls the settings it was given (its own field names), as the user types them.
LOADER_FIELDS = {"npz_path": "data.npz", "images": "data.npz", "labels": "data.npz", "dataset": "data.name",
                 "size": "model.resolution", "channels": "data.channels", "seed": "seed"}


def validate(config: config_dict.ConfigDict) -> None:
    """Every setting, before any data is loaded or anything compiled; errors name the field as typed. The
    numbers and files first (no library imported), then the names the libraries define and the networks."""
    check_bounds(config, {field: Bounds(*b) for field, b in cyclegan_config.BOUNDS.items()})
    check_choices(config, CHOICES)
    check_strings(config, STRINGS)
    d, t = config.data, config.train
    check(d.name != "", "data.name", "got ''; allowed: digits, npz, or a prepared TFDS name")
    check(not (d.npz_a or d.npz_b) or not d.npz, "data.npz",
          "give either data.npz (known-transform mode) or data.npz_a/npz_b (a pair), not both")
    check(bool(d.npz_a) == bool(d.npz_b), "data.npz_b" if d.npz_a else "data.npz_a",
          "give both data.npz_a and data.npz_b (one .npz per domain), or neither")
    for field in ("data.npz", "data.npz_a", "data.npz_b"):
        path = d[field.split(".")[1]]
        check(not path or os.path.isfile(path), field, f"got {path!r}: no such file; allowed: a .npz file with "
              "images (N,H,W[,C]) in [0, 1] (labels optional)")
    check(d.name != "npz" or d.npz or d.npz_a, "data.name",
          "got 'npz' without data.npz; allowed: set data.npz=FILE.npz")
    check(not d.npz or d.name in ("digits", "npz"), "data.npz",
          f"given together with data.name={d.name!r}; use data.name=npz")
    check(config.model.resolution % 4 == 0, "model.resolution",
          f"got {config.model.resolution}; allowed: a multiple of 4")
    check(t.steps // t.checkpoint_every <= 10_000, "train.checkpoint_every",
          f"got {t.checkpoint_every}; {t.steps} steps would write {t.steps // t.checkpoint_every} checkpoints; "
          "allowed: at least train.steps / 10,000")
    from gans.cyclegan import CycleGANConfig
    from gans.cyclegan_data import TRANSFORMS
    from gans.losses import ADVERSARIAL_LOSSES

    check_choices(config, {"transform": tuple(TRANSFORMS), "train.adversarial_loss": ADVERSARIAL_LOSSES})
    needs = TRANSFORMS.get(config.transform, "transform").channels
    known_transform = not d.npz_a and not d.name.startswith("cycle_gan")
    check(not known_transform or needs is None or d.channels in (0, needs), "data.channels",
          f"got {d.channels}; transform={config.transform} needs {needs}-channel images; allowed: 0 or {needs}")
    # the networks at the configured size (the channels, 1 or 3 from the data, do not change what is valid)
    prefixed("model", CycleGANConfig(channels_a=3, channels_b=3, **config.model.to_dict()).validate_networks)


def feature_net(data: UnpairedData, steps: int, seed: int) -> metrics.FeatureNet:
    """One classifier for both domains (trained on the union of their training images), or the rotation
    pretext net when either domain is unlabeled or their shapes differ."""
    from gans import metrics

    same_shape = data.image_shape_a == data.image_shape_b
    if data.labeled and same_shape:
        x = np.concatenate([data.train_a, data.train_b])
        y = np.concatenate([data.train_a_y, data.train_b_y])
        tx = np.concatenate([data.test_a, data.test_b])
        ty = np.concatenate([data.test_a_y, data.test_b_y])
        return metrics.train_feature_net(x, y, tx, ty, num_classes=int(max(y.max(), ty.max())) + 1, steps=steps,
                                         seed=seed)
    check(same_shape, "data.channels", f"domains A {data.image_shape_a} and B {data.image_shape_b} need the same "
          "shape for shared FID features; set data.channels")
    return metrics.rotation_feature_net(np.concatenate([data.train_a, data.train_b]),
                                        np.concatenate([data.test_a, data.test_b]), steps=steps, seed=seed)


class Evaluator:
    """The measurements of one (G, F) pair on fixed held-out images of both domains."""

    def __init__(self, data: UnpairedData, net: metrics.FeatureNet, n: int):
        from gans.cyclegan_data import translation_error

        self.data, self.net = data, net
        self.a, self.b = data.test_a[:n], data.test_b[:n]
        self.real_feats_a, self.real_feats_b = net.features(data.test_a), net.features(data.test_b)
        self.classes = net.task == "classes"
        if self.classes:
            self.pred_a, self.pred_b = net.predict(self.a), net.predict(self.b)
        if data.truth_ab is not None:
            self.true_b, self.true_a = data.truth_ab(self.a), data.truth_ba(self.b)
            # A translation that ignores its input: the target domain's mean training image.
            self.baseline = {
                "mean_image_error_ab": translation_error(data.train_b.mean(0), self.true_b, self.a),
                "mean_image_error_ba": translation_error(data.train_a.mean(0), self.true_a, self.b)}
        else:
            self.baseline = {"mean_image_error_ab": None, "mean_image_error_ba": None}

    def measure(self, trainer: CycleGANTrainer, params: Any) -> dict[str, float | None]:
        from gans import metrics
        from gans.cyclegan_data import translation_error

        fake_b, fake_a = trainer.translate(params, self.a, "ab"), trainer.translate(params, self.b, "ba")
        rec_a, rec_b = trainer.translate(params, fake_b, "ba"), trainer.translate(params, fake_a, "ab")
        out: dict[str, float | None] = {
            "cycle_error_a": float(np.abs(rec_a - self.a).mean()), "cycle_error_b": float(np.abs(rec_b - self.b).mean()),
            "fid_b": metrics.fid(self.real_feats_b, self.net.features(fake_b)),
            "fid_a": metrics.fid(self.real_feats_a, self.net.features(fake_a))}
        out["cycle_error"] = (out["cycle_error_a"] + out["cycle_error_b"]) / 2
        if self.data.truth_ab is not None:
            out["translation_error_ab"] = translation_error(fake_b, self.true_b, self.a)
            out["translation_error_ba"] = translation_error(fake_a, self.true_a, self.b)
        else:
            out["translation_error_ab"] = out["translation_error_ba"] = None
        if self.classes:
            out["label_preservation_ab"] = float(np.mean(self.net.predict(fake_b) == self.pred_a))
            out["label_preservation_ba"] = float(np.mean(self.net.predict(fake_a) == self.pred_b))
            out["label_preservation"] = (out["label_preservation_ab"] + out["label_preservation_ba"]) / 2
        else:
            out["label_preservation"] = out["label_preservation_ab"] = out["label_preservation_ba"] = None
        return out


def run(config: config_dict.ConfigDict, workdir: str, report: Report | None = None) -> dict[str, Any]:
    validate(config)
    import jax

    from gans.cyclegan import CycleGANConfig
    from gans.cyclegan_data import load_domains
    from gans.cyclegan_train import CycleGANSettings, CycleGANTrainer
    from jaxnas.common.loop import steady_rate
    from jaxnas.common.checkpoint import fingerprint
    from jaxnas.common.metrics import device_summary, write_json

    d = config.data
    try:
        data = load_domains(name=d.name, transform=config.transform, npz=d.npz, npz_a=d.npz_a, npz_b=d.npz_b,
                            size=config.model.resolution, channels=d.channels, data_dir=d.data_dir, seed=config.seed,
                            download=d.download)
    except ConfigError as err:
        raise as_setting(err, LOADER_FIELDS) from None
    cfg = prefixed("model", lambda: CycleGANConfig(channels_a=data.image_shape_a[2], channels_b=data.image_shape_b[2],
                                                   **config.model.to_dict()))
    prefixed("model", cfg.validate)
    settings = prefixed("train", lambda: CycleGANSettings(seed=config.seed, **config.train.to_dict()))
    settings.validate()
    print(f"data: {data!r}", flush=True)
    start = time.perf_counter()
    net = feature_net(data, config.eval.classifier_steps, config.seed)
    print(f"feature net ({net.task}): test accuracy {net.test_accuracy:.3f}", flush=True)
    evaluator = Evaluator(data, net, config.eval.images)
    trainer = CycleGANTrainer(cfg, settings, data.train_a, data.train_b)
    key = jax.random.key(config.seed)
    state = trainer.init_state(jax.random.fold_in(key, 10**6))

    def measure(step: int, st: Any) -> dict[str, Any] | None:
        if step % config.eval.every and step != settings.steps:
            return None
        m = evaluator.measure(trainer, st.params)
        if config.progress:
            err = (f"translation error A->B {m['translation_error_ab']:.3f}, B->A {m['translation_error_ba']:.3f}, "
                   if m["translation_error_ab"] is not None else "")
            lab = f", labels kept {m['label_preservation']:.3f}" if m["label_preservation"] is not None else ""
            print(f"step {step}: {err}cycle {m['cycle_error']:.4f}{lab}", flush=True)
        return m

    curve = [{"step": 0, **measure(0, state)}]
    # what decides the measurements kept in the checkpointed history (the trainer records the training images)
    recorded = {"eval": config.eval.to_dict(), "transform": config.transform,
                "data": {"name": d.name, "channels": d.channels}, "held_out": fingerprint(data.test_a, data.test_b)}
    state, history = trainer.train(key, workdir=os.path.join(workdir, "checkpoints"), state=state, callback=measure,
                                   progress=config.progress, metrics_path=os.path.join(workdir, "metrics.jsonl"),
                                   settings=recorded)
    from gans.saved_generator import save_cyclegan

    save_cyclegan(workdir, cfg, state.params)  # gans.saved_generator.load_generator(workdir) translates again
    keys = set(curve[0])
    curve += [{k: v for k, v in h.items() if k in keys} for h in history if "cycle_error" in h]
    rate, timed = steady_rate(history)  # without the first (compiling) step of each run, resumed runs' included
    results = {"device": device_summary(), "data": data.name, "transform": config.transform if data.truth_ab else None,
               "steps": settings.steps, "batch_size": settings.batch_size,
               **{k: v for k, v in curve[-1].items() if k != "step"}, **evaluator.baseline,
               "iterations_per_s": rate if np.isfinite(rate) else None, "iterations_per_s_steps": timed,
               "train_step_s": sum(h["seconds"] for h in history),  # restored with the history on a restart
               "classifier_test_accuracy": net.test_accuracy, "classifier_task": net.task,
               "curve": curve,
               "losses": [{k: h[k] for k in ("step", "g_loss", "g_adv", "cycle", "identity", "d_a", "d_b")}
                          for h in history]}
    results["wall_seconds"] = time.perf_counter() - start
    write_json(os.path.join(workdir, "results.json"), results)
    write_report(report, workdir, config, data, trainer, state, evaluator, results)
    return {k: v for k, v in results.items() if k not in ("curve", "losses")}


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def write_report(report: Report | None, workdir: str, config: config_dict.ConfigDict, data: UnpairedData,
                 trainer: CycleGANTrainer, state: Any, evaluator: Evaluator, results: dict[str, Any]) -> None:
    import matplotlib.pyplot as plt

    from experiments.image_grid import grid, show
    from jaxnas.common.report import Report

    own = report is None
    report = report or Report(workdir, "CycleGAN")
    s = trainer.settings
    what = f"{data.name} ({results['transform']})" if results["transform"] else data.name
    report.heading(f"CycleGAN, {what}, {s.steps} steps of batch {s.batch_size}")
    report.text(
        f"Normalised translation error A->B {_fmt(results['translation_error_ab'])}, B->A "
        f"{_fmt(results['translation_error_ba'])} (0 perfect, 1 = the identity map's error; outputting the target "
        f"domain's mean image, whatever the input, scores {_fmt(results['mean_image_error_ab'])} / "
        f"{_fmt(results['mean_image_error_ba'])}, which is why label preservation is the other half of the check); cycle error "
        f"{_fmt(results['cycle_error'], 4)}; labels preserved {_fmt(results['label_preservation'])} (classifier test "
        f"accuracy {results['classifier_test_accuracy']:.3f}); classifier-feature FID A {results['fid_a']:.1f}, B "
        f"{results['fid_b']:.1f}. {_fmt(results['iterations_per_s'], 2)} iterations/s on {results['device']}.")
    curve = results["curve"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    steps = [c["step"] for c in curve]
    for k, label in (("translation_error_ab", "translation error A->B"), ("translation_error_ba", "translation error B->A"),
                     ("label_preservation", "labels preserved"), ("cycle_error", "cycle error")):
        if curve[-1][k] is not None:
            axes[0].plot(steps, [c[k] for c in curve], "o-", label=label)
    axes[0].set_xlabel("step")
    axes[0].legend()
    losses = results["losses"]
    for k in ("g_adv", "cycle", "identity", "d_a", "d_b"):
        vals = np.array([h[k] for h in losses])
        w = max(1, len(vals) // 50)
        smooth = np.convolve(vals, np.ones(w) / w, mode="valid")
        axes[1].plot(np.arange(len(smooth)) + w, smooth, label=k)
    axes[1].set_yscale("log")
    axes[1].set_xlabel("step")
    axes[1].set_title("losses (moving average)")
    axes[1].legend(fontsize=7)
    report.figure(fig, "cyclegan_curves.png", "Errors and label preservation against steps; the losses.")
    a, b = evaluator.a[:8], evaluator.b[:8]
    fake_b, fake_a = trainer.translate(state.params, a, "ab"), trainer.translate(state.params, b, "ba")
    rows_ab = [a, fake_b, trainer.translate(state.params, fake_b, "ba")]
    rows_ba = [b, fake_a, trainer.translate(state.params, fake_a, "ab")]
    if data.truth_ab is not None:
        rows_ab.insert(2, data.truth_ab(a))
        rows_ba.insert(2, data.truth_ba(b))
    for direction, rows in (("ab", rows_ab), ("ba", rows_ba)):
        there, back = ("G", "F") if direction == "ab" else ("F", "G")
        labels = [f"input ({direction[0].upper()})", f"{there}(x)", *(["truth T(x)"] if data.truth_ab is not None else []),
                  f"{back}({there}(x))"]
        c = max(r.shape[-1] for r in rows)
        rows = [np.repeat(r, c // r.shape[-1], axis=-1) for r in rows]  # gray rows shown as RGB next to RGB ones
        show(report, grid(np.concatenate(rows), len(rows)), f"cyclegan_{direction}.png",
             f"{'A -> B' if direction == 'ab' else 'B -> A'}, rows: {', '.join(labels)} (the reconstruction).",
             title=f"{'A -> B' if direction == 'ab' else 'B -> A'}: 8 test images", rows=labels)
    if own:
        report.write()


if __name__ == "__main__":
    launch(run, os.path.join(os.path.dirname(__file__), "configs", "cyclegan.py"))
