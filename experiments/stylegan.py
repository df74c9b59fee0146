"""StyleGAN on the embedded digits, measured offline (classifier-feature FID/KID) against training steps.

    python -m experiments.stylegan --config experiments/configs/stylegan.py --workdir runs/stylegan

Writes `<workdir>/results.json` (fid, kid, steps, images_per_s, classifier_test_accuracy, the FID curve)
and `report.md` with a sample grid, a style-mixing grid and a truncation sweep. Work in progress (issue 5).
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import matplotlib.pyplot as plt
import numpy as np
from ml_collections import config_dict

from experiments.cli import launch, prefixed
from gans import metrics
from gans.stylegan import Generator, StyleGANConfig, broadcast_ws, truncate
from gans.train import GANTrainSettings, StyleGANTrainer
from jaxnas.common.metrics import device_summary, write_json
from jaxnas.common.report import Report
from jaxnas.data import load_images


def _grid(images: np.ndarray, rows: int) -> np.ndarray:
    n, h, w, _ = images.shape
    cols = n // rows
    return images[: rows * cols, :, :, 0].reshape(rows, cols, h, w).transpose(0, 2, 1, 3).reshape(rows * h, cols * w)


def _show(report: Report, image: np.ndarray, name: str, caption: str, title: str = "") -> None:
    fig, ax = plt.subplots(figsize=(6, 6 * image.shape[0] / image.shape[1]))
    ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title)
    report.figure(fig, name, caption)


def evaluate(trainer: StyleGANTrainer, state: Any, net: metrics.FeatureNet, real_feats: np.ndarray, n: int,
             key: jax.Array) -> dict[str, float]:
    fake = trainer.sample(state.g_ema, key, n)
    feats = net.features(fake)
    kid_mean, kid_std = metrics.kid(real_feats, feats)
    precision, recall = metrics.precision_recall(real_feats, feats)
    return {"fid": metrics.fid(real_feats, feats), "kid": kid_mean, "kid_std": kid_std, "precision": precision,
            "recall": recall}


def style_images(trainer: StyleGANTrainer, state: Any, key: jax.Array, psi_values: list[float]) -> dict[str, np.ndarray]:
    """A style-mixing grid (rows: source A; columns: coarse / middle / fine styles from B) and a truncation sweep."""
    gen, cfg = trainer.gen, trainer.config
    n = cfg.num_ws
    k1, k2 = jax.random.split(key)
    z_a, z_b = jax.random.normal(k1, (5, cfg.z_dim)), jax.random.normal(k2, (5, cfg.z_dim))
    synth = jax.jit(lambda p, ws: gen.apply({"params": p}, ws, None, False, method=Generator.synthesize))
    w_a = broadcast_ws(gen.apply({"params": state.g_ema}, z_a, method=Generator.map), n)
    w_b = broadcast_ws(gen.apply({"params": state.g_ema}, z_b, method=Generator.map), n)
    thirds = [(0, n // 3), (n // 3, 2 * n // 3), (2 * n // 3, n)]  # coarse, middle, fine layer ranges
    cols = [synth(state.g_ema, w_a), synth(state.g_ema, w_b)]
    for lo, hi in thirds:
        layer = np.arange(n)[None, :, None]
        cols.append(synth(state.g_ema, np.where((layer >= lo) & (layer < hi), w_b, w_a)))
    mixing = np.stack([np.asarray(c) for c in cols], axis=1).reshape(-1, *cols[0].shape[1:])  # (5*5, R, R, C)
    sweep = [synth(state.g_ema, truncate(w_a, state.w_avg, psi, None)) for psi in psi_values]
    trunc = np.stack([np.asarray(s) for s in sweep], axis=1).reshape(-1, *sweep[0].shape[1:])
    to01 = lambda x: np.clip((x + 1.0) / 2.0, 0.0, 1.0)  # noqa: E731
    return {"mixing": to01(mixing), "truncation": to01(trunc)}


def run(config: config_dict.ConfigDict, workdir: str, report: Report | None = None) -> dict[str, Any]:
    m = config.model
    cfg = prefixed("model", lambda: StyleGANConfig(channels=1, **m.to_dict()))
    cfg.validate()
    settings = prefixed("train", lambda: GANTrainSettings(seed=config.seed, **config.train.to_dict()))
    settings.validate()
    data = load_images(config.data.name, size=cfg.resolution, npz_path=config.data.npz or None,
                       data_dir=config.data.data_dir or None, seed=config.seed, channels=1)
    start = time.perf_counter()
    net = metrics.feature_net_for(data, steps=config.eval.classifier_steps, seed=config.seed)
    print(f"feature classifier: test accuracy {net.test_accuracy:.3f}", flush=True)
    held_out = np.concatenate([data.valid_x, data.test_x])
    real_feats = net.features(held_out)
    trainer = StyleGANTrainer(cfg, settings, data.train_x)
    key = jax.random.key(config.seed)
    eval_key = jax.random.fold_in(key, 99)
    state = trainer.init_state(jax.random.fold_in(key, 10**6))
    curve = [{"step": 0, **evaluate(trainer, state, net, real_feats, config.eval.samples, eval_key)}]
    print(f"step 0: FID {curve[0]['fid']:.1f}", flush=True)
    train_seconds, steps_done = 0.0, 0
    ckpt_dir = os.path.join(workdir, "checkpoints")
    for stop in range(config.eval.every, settings.steps + config.eval.every, config.eval.every):
        stop = min(stop, settings.steps)
        t0 = time.perf_counter()
        state, hist = trainer.train(key, workdir=ckpt_dir, stop_at=stop, state=state)
        train_seconds += time.perf_counter() - t0
        steps_done += len(hist)
        curve.append({"step": stop, **evaluate(trainer, state, net, real_feats, config.eval.samples, eval_key)})
        if config.progress:
            print(f"step {stop}: FID {curve[-1]['fid']:.1f}, KID {curve[-1]['kid']:.1f}", flush=True)
    pics = style_images(trainer, state, jax.random.fold_in(key, 7), [1.0, 0.7, 0.5, 0.0, -0.5])
    results = {"device": device_summary(), "steps": settings.steps, "fid": curve[-1]["fid"], "kid": curve[-1]["kid"],
               "fid_init": curve[0]["fid"], "precision": curve[-1]["precision"], "recall": curve[-1]["recall"],
               "images_per_s": steps_done * settings.batch_size / max(train_seconds, 1e-9),
               "classifier_test_accuracy": net.test_accuracy, "curve": curve,
               "wall_seconds": time.perf_counter() - start}
    write_json(os.path.join(workdir, "results.json"), results)
    own = report is None
    report = report or Report(workdir, "StyleGAN on digits")
    report.heading(f"StyleGAN, {cfg.resolution}x{cfg.resolution} digits, {settings.steps} steps")
    report.text(f"FID {results['fid_init']:.1f} at initialisation -> {results['fid']:.1f} after {settings.steps} "
                f"steps (features of an in-project classifier, test accuracy {net.test_accuracy:.3f}; comparable only "
                f"within this project). {results['images_per_s']:.0f} training images/s on {results['device']}.")
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([c["step"] for c in curve], [c["fid"] for c in curve], "o-")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("FID (classifier features)")
    report.figure(fig, "stylegan_fid.png", "FID against training steps (EMA generator).")
    _show(report, _grid(trainer.sample(state.g_ema, jax.random.fold_in(key, 3), 64), 8), "stylegan_samples.png",
          "Samples of the EMA generator (no truncation).")
    _show(report, _grid(pics["mixing"], 5), "stylegan_mixing.png",
          "Style mixing: columns A, B, then A with B's coarse, middle and fine styles.")
    _show(report, _grid(pics["truncation"], 5), "stylegan_truncation.png",
          "Truncation sweep: psi 1, 0.7, 0.5, 0 (the average w), -0.5.")
    if own:
        report.write()
    return {k: v for k, v in results.items() if k != "curve"}


if __name__ == "__main__":
    launch(run, os.path.join(os.path.dirname(__file__), "configs", "stylegan.py"))
