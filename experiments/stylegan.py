"""StyleGAN on the embedded digits, measured offline (classifier-feature FID/KID) against training steps.

    python -m experiments.stylegan --config experiments/configs/stylegan.py --workdir runs/stylegan

Writes `<workdir>/results.json` and `report.md`:

* `fid`, `kid`, `fid_init`, `precision`, `recall`, `steps`, `images_per_s`, `classifier_test_accuracy`
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
from typing import Any

import jax
import matplotlib.pyplot as plt
import numpy as np
from ml_collections import config_dict

from experiments.cli import launch, prefixed
from experiments.image_grid import grid, show
from gans import metrics
from gans.stylegan_config import StyleGANConfig
from gans.stylegan_generator import Generator
from gans.stylegan_styles import broadcast_ws, truncate
from gans.stylegan_train import GANTrainSettings, StyleGANTrainer
from jaxnas.common.checkpoint import fingerprint
from jaxnas.common.errors import check
from jaxnas.common.metrics import device_summary, write_json
from jaxnas.common.report import Report
from jaxnas.data import load_images

RANGES = ("coarse", "middle", "fine")


def layer_ranges(num_ws: int) -> dict[str, tuple[int, int]]:
    """Coarse / middle / fine style inputs as thirds of `num_ws` (each range [lo, hi))."""
    a, b = num_ws // 3, 2 * num_ws // 3
    return {"coarse": (0, a), "middle": (a, b), "fine": (b, num_ws)}


def _to01(x: Any) -> np.ndarray:
    return np.clip((np.asarray(x) + 1.0) / 2.0, 0.0, 1.0)


class Styles:
    """Renders images from per-layer styles of one trained generator (EMA weights, no noise)."""

    def __init__(self, trainer: StyleGANTrainer, g_params: Any):
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


def style_images(styles: Styles, w_avg: jax.Array, key: jax.Array, psi_values: list[float]) -> dict[str, np.ndarray]:
    """A style-mixing grid (rows: source A; columns A, B, A with B's coarse / middle / fine) and a truncation sweep."""
    k1, k2 = jax.random.split(key)
    ws_a = styles.ws(jax.random.normal(k1, (5, styles.z_dim)))
    ws_b = styles.ws(jax.random.normal(k2, (5, styles.z_dim)))
    cols = [styles.render(ws_a), styles.render(ws_b)]
    cols += [styles.mix(ws_a, ws_b, lo, hi) for lo, hi in layer_ranges(styles.num_ws).values()]
    mixing = np.stack(cols, axis=1).reshape(-1, *cols[0].shape[1:])  # (5 * 5, R, R, C)
    sweep = [styles.render(truncate(ws_a, w_avg, psi, None)) for psi in psi_values]
    return {"mixing": mixing, "truncation": np.stack(sweep, axis=1).reshape(-1, *sweep[0].shape[1:])}


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
    curve += [{k: v for k, v in h.items() if k in curve[0] or k.startswith("inception_")} for h in history if "fid" in h]
    steady = [h["seconds"] for h in history[2:]]  # steps 1 and 2 compile the two step variants
    styles = Styles(trainer, state.g_ema)
    return {"trainer": trainer, "state": state, "styles": styles, "curve": curve,
            "train_step_s": sum(h["seconds"] for h in history),  # restored with the history on a restart
            "images_per_s": settings.batch_size * len(steady) / max(sum(steady), 1e-9) if steady else float("nan"),
            "style_mixing": mixing_effects(styles, feats.net, jax.random.fold_in(key, 5), config.eval.mixing_pairs)}


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    last, first = record["curve"][-1], record["curve"][0]
    out = {k: v for k, v in last.items() if k != "step"}
    out.update(fid_init=first["fid"], images_per_s=record["images_per_s"], train_step_s=record["train_step_s"],
               style_mixing=record["style_mixing"], curve=record["curve"])
    return out


def run(config: config_dict.ConfigDict, workdir: str, report: Report | None = None) -> dict[str, Any]:
    check(config.data.channels in (0, 1, 3), "data.channels",
          f"got {config.data.channels!r}; allowed: 0 (the source's), 1 (gray) or 3 (RGB)")
    m = config.model
    cfg = prefixed("model", lambda: StyleGANConfig(channels=config.data.channels or 1, **m.to_dict()))
    cfg.validate()
    settings = prefixed("train", lambda: GANTrainSettings(seed=config.seed, **config.train.to_dict()))
    settings.validate()
    check(isinstance(config.eval.mixing_pairs, int) and config.eval.mixing_pairs >= 2, "eval.mixing_pairs",
          f"got {config.eval.mixing_pairs!r}; must be an integer >= 2")
    check(isinstance(config.ablation.no_mapping, bool), "ablation.no_mapping",
          f"got {config.ablation.no_mapping!r}; must be true or false")
    inception = None
    if config.eval.inception:
        from gans.inception import load_inception  # only when asked for: the network is large

        inception = prefixed("eval.inception", lambda: load_inception(config.eval.inception))
    data = load_images(config.data.name, size=cfg.resolution, npz_path=config.data.npz or None,
                       data_dir=config.data.data_dir or None, seed=config.seed, channels=config.data.channels or None,
                       labels_required=False)
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
        plain = dataclasses.replace(cfg, use_mapping=False)
        prefixed("ablation.no_mapping", plain.validate)
        ablation = train_and_measure(plain, settings, data.train_x, feats, config, os.path.join(workdir, "no_mapping"),
                                     "no mapping")
        results["no_mapping"] = _summary(ablation)
    results["wall_seconds"] = time.perf_counter() - start
    write_json(os.path.join(workdir, "results.json"), results)
    write_report(report, workdir, config, cfg, settings, results, main, ablation)
    return results  # small: the FID curve has one point per evaluation


def _mixing_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for label, res in (("mapping network", results), ("no mapping (w = z)", results.get("no_mapping"))):
        if res is None:
            continue
        for name in RANGES:
            e = res["style_mixing"][name]
            rows.append({"generator": label, "styles from B": name, "class changes": e["class_change"],
                         "class becomes B's": e["takes_b"], "mean |pixel change|": e["pixel_change"]})
    return rows


def paper_claim(style_mixing: dict[str, Any]) -> dict[str, bool | None]:
    """The paper's Sec. 3.1 claim as two checks (None without class labels).

    `ordering`: B's coarse styles make the mix B's digit more often than B's middle ones, and those more
    often than B's fine ones, and B's fine styles change the digit at most a quarter of the time.
    `coarse_carry_identity`: B's coarse styles make the mix B's digit at least half the time.
    """
    c, m, f = (style_mixing[k] for k in RANGES)
    if not np.isfinite(c["takes_b"]) or not np.isfinite(f["class_change"]):
        return {"ordering": None, "coarse_carry_identity": None}
    return {"ordering": bool(c["takes_b"] > m["takes_b"] > f["takes_b"] and f["class_change"] <= 0.25),
            "coarse_carry_identity": bool(c["takes_b"] >= 0.5)}


def mixing_verdict(style_mixing: dict[str, Any]) -> str:
    """One sentence: how far the paper's claim (coarse styles carry the class, fine ones do not) holds."""
    c, m, f = (style_mixing[k] for k in RANGES)
    claim = paper_claim(style_mixing)
    if claim["ordering"] is None:
        return "No class labels: the identity measurement is not available."
    if claim["ordering"] and claim["coarse_carry_identity"]:
        verdict = "As the paper reports, coarse styles carry the digit's identity and fine ones do not"
    elif claim["ordering"]:
        verdict = ("The paper's ordering holds (coarse > middle > fine, fine styles rarely change the digit), but "
                   "coarse styles carry the identity only partly")
    else:
        verdict = "The paper's ordering (coarse styles carry identity, fine ones only detail) does not hold here"
    return (f"{verdict}: with B's coarse / middle / fine styles the mix becomes B's digit {c['takes_b']:.0%} / "
            f"{m['takes_b']:.0%} / {f['takes_b']:.0%} of the time; B's fine styles change the digit "
            f"{f['class_change']:.0%} of the time (mean pixel change {f['pixel_change']:.3f}, coarse "
            f"{c['pixel_change']:.3f}). Checks: ordering coarse > middle > fine with fine changing the digit <= 25%; "
            "coarse styles make B's digit >= 50%.")


def write_report(report: Report | None, workdir: str, config: config_dict.ConfigDict, cfg: StyleGANConfig,
                 settings: GANTrainSettings, results: dict[str, Any], main: dict[str, Any],
                 ablation: dict[str, Any] | None) -> None:
    own = report is None
    report = report or Report(workdir, "StyleGAN on digits")
    r = cfg.resolution
    report.heading(f"StyleGAN, {r}x{r} {config.data.npz or config.data.name}, {settings.steps} steps")
    what = "classifier" if results["classifier_task"] == "classes" else "rotation-pretext net (unlabeled data)"
    report.text(f"FID {results['fid_init']:.1f} at initialisation -> {results['fid']:.1f} after {settings.steps} steps "
                f"(ratio {results['fid'] / results['fid_init']:.3f}; features of an in-project {what}, test accuracy "
                f"{results['classifier_test_accuracy']:.3f}; comparable only within this project). KID "
                f"{results['kid']:.2f}, precision {results['precision']:.2f}, recall {results['recall']:.2f}. "
                f"{results['images_per_s']:.0f} training images/s on {results['device']}.")
    if "inception_fid" in results:
        report.text(f"Inception-v3 FID {results['inception_fid']:.2f}, KID {results['inception_kid']:.4f} "
                    f"(weights: {config.eval.inception}).")
    fig, ax = plt.subplots(figsize=(5, 3))
    for label, res in (("mapping network", results), ("no mapping", results.get("no_mapping"))):
        if res is not None:
            ax.plot([c["step"] for c in res["curve"]], [c["fid"] for c in res["curve"]], "o-", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("FID (classifier features)")
    ax.legend()
    report.figure(fig, "stylegan_fid.png", "FID against training steps (EMA generator, 1,000 samples).")
    key = jax.random.key(config.seed)
    trainer, state, styles = main["trainer"], main["state"], main["styles"]
    show(report, grid(trainer.sample(state.g_ema, jax.random.fold_in(key, 3), 64), 8), "stylegan_samples.png",
          "Samples of the EMA generator (no truncation).")
    psi, cutoff = config.eval.psi, config.eval.cutoff or None
    show(report, grid(trainer.sample(state.g_ema, jax.random.fold_in(key, 3), 64, state.w_avg, psi, cutoff), 8),
          "stylegan_samples_truncated.png", f"The same latents with truncation psi {psi}, cutoff {cutoff}.")
    pics = style_images(styles, state.w_avg, jax.random.fold_in(key, 7), [1.0, 0.7, 0.5, 0.0, -0.5])
    ranges = layer_ranges(cfg.num_ws)
    show(report, grid(pics["mixing"], 5), "stylegan_mixing.png",
          "Style mixing: columns A, B, then A with B's coarse, middle and fine styles (style inputs "
          + ", ".join(f"{k} {lo}-{hi - 1}" for k, (lo, hi) in ranges.items()) + ").")
    show(report, grid(pics["truncation"], 5), "stylegan_truncation.png",
          "Truncation sweep: psi 1, 0.7, 0.5, 0 (the average w), -0.5.")
    report.heading("What the styles control", level=3)
    report.text(f"{config.eval.mixing_pairs} pairs of latents (A, B); A re-rendered with B's coarse, middle or fine "
                "styles, classified by the feature classifier.")
    report.table(_mixing_rows(results), digits=3)
    report.text(mixing_verdict(results["style_mixing"]))
    if results["classifier_task"] == "classes":
        fig, ax = plt.subplots(figsize=(5, 3))
        for label, res in (("mapping network", results), ("no mapping", results.get("no_mapping"))):
            if res is not None:
                layers = res["style_mixing"]["per_layer"]
                ax.plot([p["layer"] for p in layers], [p["takes_b"] for p in layers], "o-", label=label)
        layers = results["style_mixing"]["per_layer"]
        ax.set_xticks([p["layer"] for p in layers], [f"{p['layer']}\n{p['resolution']}px" for p in layers])
        ax.set_xlabel("style input taken from B (layer, resolution)")
        ax.set_ylabel("mix classified as B's digit")
        ax.legend()
        report.figure(fig, "stylegan_mixing_layers.png",
                      "One style input from B at a time: how often the mix becomes B's digit (pairs whose digits differ).")
    if ablation is not None:
        nm = results["no_mapping"]
        report.text(f"Without the mapping network (w = normalised z), same budget and seed: FID {nm['fid']:.1f} "
                    f"(with: {results['fid']:.1f}), KID {nm['kid']:.2f} (with: {results['kid']:.2f}).")
        show(report, grid(ablation["trainer"].sample(ablation["state"].g_ema, jax.random.fold_in(key, 3), 64), 8),
              "stylegan_samples_no_mapping.png", "Samples of the generator trained without the mapping network.")
        nm_pics = style_images(ablation["styles"], ablation["state"].w_avg, jax.random.fold_in(key, 7), [1.0])
        show(report, grid(nm_pics["mixing"], 5), "stylegan_mixing_no_mapping.png",
              "Style mixing without the mapping network (same layout as above).")
    if own:
        report.write()


if __name__ == "__main__":
    launch(run, os.path.join(os.path.dirname(__file__), "configs", "stylegan.py"))
