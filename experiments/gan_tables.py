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
