"""README's GAN tables (registered in `experiments.readme_tables.TABLES`), rendered from results/*.json."""

from __future__ import annotations

from typing import Any

from experiments.table_format import fmt, markdown_table, sources_line

_TRANSFORMS = {"tint": "tint (black -> dark blue, white -> yellow)", "invert": "invert (1 - x)",
               "invert_tint": "inversion, then the tint"}
PAPER_IDENTITY = 0.5  # Zhu et al. 2017: identity loss at 0.5 x the cycle weight; the config default


def _minutes(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds / 60:.1f} min"


def cyclegan(results: dict[str, dict[str, Any]]) -> str:
    """One row per run of `experiments.cyclegan` with a known transform: errors against the truth, labels kept."""
    rows = []
    for r in results.values():
        f, s = r["figures"], r["settings"]
        identity = s["train"]["identity"]
        load = r["provenance"]["device"].get("loadavg_1m")
        rows.append([_TRANSFORMS.get(f["transform"], f["transform"]),
                     f"{identity:g}" + (" (paper)" if identity == PAPER_IDENTITY else ""),
                     f"{fmt(f['translation_error_ab'])} / {fmt(f['translation_error_ba'])}",
                     fmt(f["label_preservation"], 1, pct=True), fmt(f["cycle_error"]),
                     f"{f['steps']:,} steps of {f['batch_size']}, {_minutes(f['train_step_s'])}"
                     + (f" (load {load:.1f})" if load is not None else ""),
                     f"{fmt(f['mean_image_error_ab'], 2)} / {fmt(f['mean_image_error_ba'], 2)}"])
    header = ["transform", "identity weight", "translation error A->B / B->A", "labels preserved", "cycle error",
              "training", "mean-image baseline"]
    return markdown_table(header, rows) + sources_line(results)


_RANGES = ("coarse", "middle", "fine")


def _fid(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def _claim(claim: dict[str, bool | None]) -> str:
    if claim["ordering"] is None:
        return "n/a (no labels)"
    return {(True, True): "both", (True, False): "ordering only", (False, True): "identity only",
            (False, False): "neither"}[(claim["ordering"], claim["coarse_carry_identity"])]


def stylegan_seeds(results: dict[str, dict[str, Any]]) -> str:
    """One row per seed of `experiments.stylegan`: FID over training, the final metrics, the style-mixing checks."""
    rows, both, ordering, coarse = [], 0, 0, []
    for r in results.values():
        f, s = r["figures"], r["settings"]
        m = f["style_mixing"]
        claim = m["paper_claim"]
        both += bool(claim["ordering"] and claim["coarse_carry_identity"])
        ordering += bool(claim["ordering"])
        coarse.append(m["coarse"]["takes_b"])
        rows.append([str(s["seed"]), " -> ".join(_fid(c["fid"]) for c in f["curve"]), fmt(f["kid"], 1),
                     f"{fmt(f['precision'], 2)} / {fmt(f['recall'], 2)}",
                     " / ".join(fmt(m[k]["takes_b"], 2) for k in _RANGES), fmt(m["fine"]["class_change"], 2),
                     _claim(claim)])
    every = next(iter(results.values()))["settings"]["eval"]["every"]
    header = ["seed", f"FID every {every:,} steps, from initialisation", "KID", "precision / recall",
              "becomes B's digit: coarse / middle / fine", "fine changes the digit", "paper's checks"]
    n = len(rows)
    line = (f"\nThe paper's claim (both checks) holds in {both} of {n} runs, its ordering in {ordering} of {n}; B's "
            f"coarse styles make the mix B's digit {fmt(min(coarse), 0, pct=True)}-{fmt(max(coarse), 0, pct=True)} of "
            f"the time (mean {fmt(sum(coarse) / n, 0, pct=True)}; a random other digit would be about 10%).\n")
    return markdown_table(header, rows) + line + sources_line(results)


def stylegan_mapping(results: dict[str, dict[str, Any]]) -> str:
    """The seed that also trained the generator without a mapping network: metrics and style effects side by side."""
    (r,) = results.values()
    f = r["figures"]
    gens = [("mapping network", f), ("no mapping (w = normalised z)", f["no_mapping"])]
    metrics = markdown_table(["generator", "FID (at initialisation)", "KID", "precision", "recall"],
                             [[g, f"{_fid(x['fid'])} ({_fid(x['fid_init'])})", fmt(x["kid"], 1),
                               fmt(x["precision"], 2), fmt(x["recall"], 2)] for g, x in gens])
    styles = markdown_table(
        [f"generator, seed {r['settings']['seed']}", "styles from B", "digit changes", "becomes B's digit",
         "mean pixel change"],
        [[g, k, fmt(x["style_mixing"][k]["class_change"], 2), fmt(x["style_mixing"][k]["takes_b"], 2),
          fmt(x["style_mixing"][k]["pixel_change"])] for g, x in gens for k in _RANGES])
    return metrics + "\n" + styles + sources_line(results)
