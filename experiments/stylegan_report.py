"""What a StyleGAN run's results say, in words and pictures: the style-mixing verdict and the report.

Split from `experiments.stylegan` (which re-exports `RANGES`, `layer_ranges`, `paper_claim`, `mixing_verdict`);
light to import: jax, matplotlib and the image helpers are imported where they are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from ml_collections import config_dict

if TYPE_CHECKING:
    import jax

    from experiments.stylegan import Styles
    from gans.stylegan_config import StyleGANConfig
    from gans.stylegan_train import GANTrainSettings
    from jaxnas.common.report import Report

RANGES = ("coarse", "middle", "fine")


def layer_ranges(num_ws: int) -> dict[str, tuple[int, int]]:
    """Coarse / middle / fine style inputs as thirds of `num_ws` (each range [lo, hi))."""
    a, b = num_ws // 3, 2 * num_ws // 3
    return {"coarse": (0, a), "middle": (a, b), "fine": (b, num_ws)}


PSI_SWEEP = (1.0, 0.7, 0.5, 0.0, -0.5)  # the report's truncation sweep (0: the average w)
GRID_ROWS = 5  # latents (pairs of latents for mixing) per picture grid


def style_images(styles: Styles, w_avg: jax.Array, key: jax.Array, psi_values: list[float]) -> dict[str, np.ndarray]:
    """A style-mixing grid (rows: source A; columns A, B, A with B's coarse / middle / fine) and a truncation sweep."""
    import jax

    from gans.stylegan_styles import truncate

    k1, k2 = jax.random.split(key)
    ws_a = styles.ws(jax.random.normal(k1, (GRID_ROWS, styles.z_dim)))
    ws_b = styles.ws(jax.random.normal(k2, (GRID_ROWS, styles.z_dim)))
    cols = [styles.render(ws_a), styles.render(ws_b)]
    cols += [styles.mix(ws_a, ws_b, lo, hi) for lo, hi in layer_ranges(styles.num_ws).values()]
    mixing = np.stack(cols, axis=1).reshape(-1, *cols[0].shape[1:])  # (5 * 5, R, R, C)
    sweep = [styles.render(truncate(ws_a, w_avg, psi, None)) for psi in psi_values]
    return {"mixing": mixing, "truncation": np.stack(sweep, axis=1).reshape(-1, *sweep[0].shape[1:])}


def _mixing_labels(ranges: dict[str, tuple[int, int]]) -> dict[str, list[str]]:
    """The style-mixing grid's labels: a pair of latents per row; A, B, then A with B's style inputs lo-hi."""
    return {"rows": [f"pair {i + 1}" for i in range(GRID_ROWS)],
            "cols": ["A", "B", *(f"A + B's {k}\n(inputs {lo}-{hi - 1})" for k, (lo, hi) in ranges.items())]}


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


def short_run_note(steps: int) -> str:
    """A plain warning for runs shorter than the default configuration's (e.g. `make demo`'s): they have not
    converged, and their pictures are not expected to show recognisable digits."""
    from experiments.configs import stylegan as stylegan_config

    default = stylegan_config.get_config().train.steps
    if steps >= default:
        return ""
    return (f"**Not converged: a short run** ({steps:,} of the default configuration's {default:,} steps). Its "
            "samples and grids below are not expected to show recognisable digits. The default configuration "
            "(`python -m experiments.stylegan --config experiments/configs/stylegan.py --config.ablation.no_mapping"
            "=false`: about 13 minutes of training on a 2-core CPU) reaches the figures of the README's StyleGAN "
            "table, its precision saying what share of samples falls among real digits.")


def write_report(report: Report | None, workdir: str, config: config_dict.ConfigDict, cfg: StyleGANConfig,
                 settings: GANTrainSettings, results: dict[str, Any], main: dict[str, Any],
                 ablation: dict[str, Any] | None) -> None:
    import jax
    import matplotlib.pyplot as plt

    from experiments.image_grid import grid, show
    from jaxnas.common.report import Report

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
    note = short_run_note(settings.steps)
    if note:
        report.text(note)
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
         "Samples of the EMA generator (no truncation).", title=f"64 samples after {settings.steps} steps")
    psi, cutoff = config.eval.psi, config.eval.cutoff or None
    show(report, grid(trainer.sample(state.g_ema, jax.random.fold_in(key, 3), 64, state.w_avg, psi, cutoff), 8),
         "stylegan_samples_truncated.png", f"The same latents with truncation psi {psi}, cutoff {cutoff}.",
         title=f"the same 64, truncated (psi {psi:g})")
    pics = style_images(styles, state.w_avg, jax.random.fold_in(key, 7), list(PSI_SWEEP))
    ranges = layer_ranges(cfg.num_ws)
    show(report, grid(pics["mixing"], GRID_ROWS), "stylegan_mixing.png",
         "Style mixing: columns A, B, then A with B's coarse, middle and fine styles (style inputs "
         + ", ".join(f"{k} {lo}-{hi - 1}" for k, (lo, hi) in ranges.items()) + ").",
         **_mixing_labels(ranges))
    show(report, grid(pics["truncation"], GRID_ROWS), "stylegan_truncation.png",
         "Truncation sweep: psi 1, 0.7, 0.5, 0 (the average w), -0.5.",
         rows=[f"latent {i + 1}" for i in range(GRID_ROWS)], cols=[f"psi {p:g}" for p in PSI_SWEEP])
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
             "stylegan_samples_no_mapping.png", "Samples of the generator trained without the mapping network.",
             title="64 samples, no mapping network")
        nm_pics = style_images(ablation["styles"], ablation["state"].w_avg, jax.random.fold_in(key, 7), [1.0])
        show(report, grid(nm_pics["mixing"], GRID_ROWS), "stylegan_mixing_no_mapping.png",
             "Style mixing without the mapping network (same layout as above).", **_mixing_labels(ranges))
    if own:
        report.write()
