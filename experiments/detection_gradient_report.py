"""The detection search's gradient method in pictures (issue 25): one run's resolution and depth probabilities against
step (`depth_search=mixture`), or every depth's resolution against step (the outer loop), and the report section
that shows the first seed's runs."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from experiments.detection_report import MEGA, _figure
from jaxnas.common.errors import check


def gradient_trajectory_plot(trajectory: Mapping[str, Any], path: str) -> str:
    """The gradient method's path: the continuous resolution against step (expected MFLOPs on a second, dashed
    axis when `expected_flops` is given) over the depth probabilities stacked against step. `trajectory`: `step`
    (T,), `resolution` (T,) px, `depth_probs` (T, D), `depths` (D,), optional `expected_flops` (T,). Returns `path`."""
    check(isinstance(trajectory, Mapping), "trajectory", "allowed: a dict of arrays")
    keys = ("step", "resolution", "depth_probs", "depths", "expected_flops")
    for key in keys[:4]:
        check(key in trajectory, f"trajectory.{key}", f"missing; allowed: a dict with {', '.join(keys)} (optional)")
    t = {k: np.asarray(v, np.float64) for k, v in trajectory.items() if k in keys}
    steps, probs = t["step"], t["depth_probs"]
    check(steps.ndim == 1 and len(steps) > 0, "trajectory.step", f"got shape {steps.shape}; allowed: (T > 0,)")
    check(probs.shape == (len(steps), t["depths"].size) and t["depths"].ndim == 1, "trajectory.depth_probs",
          f"got shape {probs.shape}; allowed: (T, D) = ({len(steps)}, {t['depths'].size}), one column per depth")
    for key in ("resolution", "expected_flops"):
        check(key not in t or t[key].shape == steps.shape, f"trajectory.{key}",
              f"got shape {t[key].shape if key in t else None}; allowed: {steps.shape}, one per step")
    check(bool(np.all(np.isfinite(probs)) and np.allclose(probs.sum(1), 1, atol=1e-3)), "trajectory.depth_probs",
          "allowed: finite rows that each sum to 1")
    with _figure(path, 2, 1, figsize=(7, 5.5), sharex=True, height_ratios=(1, 1.2)) as (fig, (top, bottom)):
        top.plot(steps, t["resolution"], color="C0")
        top.set_ylabel("resolution (px)", color="C0")
        top.grid(alpha=0.3)
        if "expected_flops" in t:
            twin = top.twinx()
            twin.plot(steps, t["expected_flops"] / MEGA, color="gray", ls="--", lw=1)
            twin.set_ylabel("expected MFLOPs (dashed)", color="gray")
        bottom.stackplot(steps, probs.T, labels=[f"depth {int(d)}" for d in t["depths"]], alpha=0.85)
        bottom.set(ylim=(0, 1), ylabel="depth probability", xlabel="step")
        bottom.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
        fig.tight_layout()
    return path


def outer_loop_plot(runs: Sequence[Mapping[str, Any]], path: str) -> str:
    """The outer loop's runs of one seed and penalty: each depth's continuous resolution against step, labelled with
    the searched size it rounds to. `runs`: dicts with `depth`, `resolution` (the rounded px) and `trajectory`
    (`step`, `resolution`). Returns `path`."""
    check(len(runs) > 0, "runs", "got none; allowed: one or more outer-loop runs")
    with _figure(path, figsize=(7, 4)) as (fig, ax):
        for i, run in enumerate(runs):
            for key in ("depth", "resolution", "trajectory"):
                check(key in run, f"runs[{i}].{key}", "missing; allowed: a run with depth, resolution, trajectory")
            t = run["trajectory"]
            steps, res = np.asarray(t["step"], np.float64), np.asarray(t["resolution"], np.float64)
            check(steps.ndim == 1 and res.shape == steps.shape and len(steps) > 0, f"runs[{i}].trajectory",
                  f"got step {steps.shape} and resolution {res.shape}; allowed: equal shapes (T > 0,)")
            ax.plot(steps, res, color=f"C{i % 10}", label=f"depth {run['depth']}: {run['resolution']} px")
        ax.set(xlabel="step", ylabel="resolution (px)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
        fig.tight_layout()
    return path


def gradient_section(report: Any, runs: Sequence[Mapping[str, Any]], workdir: str) -> None:
    """The first seed's gradient runs in `report`: one outer-loop picture per penalty, or the mixture's trajectory per
    penalty."""
    if not runs:
        return
    seed = runs[0]["seed"]
    mine = [r for r in runs if r["seed"] == seed]
    for penalty in dict.fromkeys(r["penalty"] for r in mine):
        group = [r for r in mine if r["penalty"] == penalty]
        path = os.path.join(workdir, f"gradient_seed{seed}_penalty{penalty:g}.png")
        if group[0].get("depth_search") == "outer":
            report.image(outer_loop_plot(group, path),
                         f"gradient method (outer loop over depth), seed {seed}, penalty {penalty:g}: each depth's "
                         "input resolution during its search")
        else:
            run = group[0]
            t = {k: np.asarray(v) for k, v in run["trajectory"].items()}
            report.image(gradient_trajectory_plot(t, path),
                         f"gradient method (softmax over depth exits), seed {seed}, penalty {penalty:g}: rounded to "
                         f"{run['resolution']}px depth {run['depth']}")
