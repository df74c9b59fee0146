"""The detection search's report (issue 25): mAP against FLOPs fronts, search curves, detections drawn on images,
the gradient method's trajectories (`experiments.detection_gradient_report`) and a summary table.

Records are the dicts `jaxnas.search.detector_search` writes, one per evaluated (resolution, depth) configuration:
resolution, depth, flops (one image), valid_map / test_map (fractions in [0, 1]; NaN for a diverged training),
reward, step, method, search_seed, ... Every function checks the keys it reads and raises `ConfigError` naming the
record and the field (`records[3].flops`; an mAP above 1, a record in percent, is refused). Figures and tables show
mAP in percent. Fronts use `jaxnas.search.pareto.pareto_mask` (the sort-and-sweep of Kung, Luccio
& Preparata, J. ACM 1975). Selection and judging are kept apart: the summary picks configurations by validation
mAP (what the searches saw) and judges them against the default configuration on test mAP.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from jaxnas.common.errors import check
from jaxnas.common.report import markdown_table
from jaxnas.search.pareto import pareto_mask

METHOD_COLORS = {"reinforce": "C0", "evolution": "C1", "random": "C2", "gradient": "C3"}
ACC_NAMES = {"test_map": "test mAP", "valid_map": "validation mAP", "test_ap50": "test AP50",
             "valid_ap50": "validation AP50"}
MEGA = 1e6
PERCENT = 100.0  # records hold fractions; figures and tables print percent


def config_label(record: Mapping[str, Any]) -> str:
    """`"64px-d5"` for resolution 64, depth 5."""
    return f"{int(record['resolution'])}px-d{int(record['depth'])}"


def _record(rec: Any, field: str, *, accs: Sequence[str] = (), costs: Sequence[str] = (),
            ints: Sequence[str] = ()) -> Mapping[str, Any]:
    """Checks one record: `accs` numbers (NaN allowed; mAP and AP50, the keys of `ACC_NAMES`, fractions in [0, 1]),
    `costs` finite numbers > 0, `ints` integers."""
    check(isinstance(rec, Mapping), field, f"got {type(rec).__name__}; allowed: a record dict")
    for key in (*accs, *costs, *ints):
        where = f"{field}.{key}"
        check(key in rec, where, f"missing; allowed: a record with keys {', '.join((*accs, *costs, *ints))}")
        value, kind = rec[key], "an integer" if key in ints else "a number"
        check(isinstance(value, numbers.Integral if key in ints else numbers.Real)
              and not isinstance(value, (bool, np.bool_)), where, f"got {value!r}; allowed: {kind}")
        if key in costs:
            check(math.isfinite(value) and value > 0, where, f"got {value!r}; allowed: a finite number > 0")
        elif key in accs:
            check(not math.isinf(value), where, f"got {value!r}; allowed: a finite number, or NaN if diverged")
            check(key not in ACC_NAMES or math.isnan(value) or 0 <= value <= 1, where,
                  f"got {value!r}; allowed: a fraction in [0, 1] (accuracies are fractions since issue 26: a record "
                  "in percent, from a workdir or file written before, must be converted), or NaN if diverged")
    return rec


def _records(records: Any, field: str = "records", **keys: Sequence[str]) -> list[Mapping[str, Any]]:
    check(isinstance(records, Sequence) and not isinstance(records, (str, bytes)), field,
          f"got {type(records).__name__}; allowed: a list of record dicts")
    check(len(records) > 0, field, "got no records; allowed: at least one")
    return [_record(r, f"{field}[{i}]", **keys) for i, r in enumerate(records)]


def _by_method(records_by_method: Any, **keys: Sequence[str]) -> dict[str, list[Mapping[str, Any]]]:
    check(isinstance(records_by_method, Mapping) and len(records_by_method) > 0, "records_by_method",
          "allowed: a non-empty dict of method name -> list of records")
    return {m: _records(r, f"records_by_method[{m!r}]", **keys) for m, r in records_by_method.items()}


def _by_seed(records: Sequence[Mapping[str, Any]]) -> dict[Any, list[Mapping[str, Any]]]:
    """Records grouped by `search_seed` (one group if absent), each group in `step` order when present."""
    groups: dict[Any, list] = {}
    for r in records:
        groups.setdefault(r.get("search_seed"), []).append(r)
    return {s: sorted(g, key=lambda r: r.get("step", 0)) for s, g in groups.items()}


def pareto_front(records: Sequence[Mapping[str, Any]], acc: str = "valid_map", cost: str = "flops") -> list:
    """The records no other record dominates (maximise `acc`, minimise `cost`), sorted by cost ascending.

    Records with a NaN accuracy (diverged trainings) are left out; all NaN gives `[]`. Ties: a record with the same
    cost and a lower accuracy, or the same accuracy and a higher cost, is dominated; of records with exactly the
    same (acc, cost) only the first in `records` is kept, so each front point appears once (a configuration
    evaluated twice with one memoised training, or in two search seeds, is not drawn twice).
    """
    recs = _records(records, accs=(acc,), costs=(cost,))
    finite = [r for r in recs if not math.isnan(float(r[acc]))]
    if not finite:
        return []
    mask = pareto_mask([float(r[acc]) for r in finite], [float(r[cost]) for r in finite])
    return sorted((r for r, m in zip(finite, mask) if m), key=lambda r: float(r[cost]))


def dominates(a: Mapping[str, Any], b: Mapping[str, Any], acc: str = "test_map", cost: str = "flops") -> bool:
    """True if `a` is at least as accurate and as cheap as `b` and strictly better in one; False if either
    accuracy is NaN (a diverged training neither dominates nor is dominated)."""
    a, b = (_record(r, n, accs=(acc,), costs=(cost,)) for r, n in ((a, "a"), (b, "b")))
    aa, ab, ca, cb = float(a[acc]), float(b[acc]), float(a[cost]), float(b[cost])
    return aa >= ab and ca <= cb and (aa > ab or ca < cb)


def dominating(records: Sequence[Mapping[str, Any]], default: Mapping[str, Any], acc: str = "test_map",
               cost: str = "flops") -> list:
    """The records (every one, repeats included) that dominate `default`, sorted by cost. Pass
    `pareto_front(...)` as `records` to count distinct front configurations."""
    recs = _records(records, accs=(acc,), costs=(cost,))
    _record(default, "default", accs=(acc,), costs=(cost,))
    return sorted((r for r in recs if dominates(r, default, acc, cost)), key=lambda r: float(r[cost]))


@contextlib.contextmanager
def _figure(path: str, *args: Any, **kwargs: Any) -> Iterator[tuple[Any, Any]]:
    """`plt.subplots(*args, **kwargs)`, saved to `path` (PNG) when the block ends; closed either way."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(*args, **kwargs)
    try:
        yield fig, axes
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)


def _color(method: str, i: int) -> str:
    return METHOD_COLORS.get(method, f"C{4 + i}")


def _step(ax: Any, front: list, acc: str, cost: str, right: float, **style: Any) -> None:
    """The front as the best accuracy (in percent) affordable at each cost: a step up at each front point, flat to
    `right`."""
    if front:
        xs = [float(r[cost]) / MEGA for r in front] + [right]
        ys = [PERCENT * float(r[acc]) for r in front] + [PERCENT * float(front[-1][acc])]
        ax.step(xs, ys, where="post", **style)


def front_plot(records_by_method: Mapping[str, Sequence[Mapping[str, Any]]], default: Mapping[str, Any], path: str,
               acc: str = "test_map", title: str = "Detector search: mAP against FLOPs", seed_fronts: bool = False,
               cost: str = "flops") -> str:
    """One figure of `acc` (in percent) against MFLOPs (log axis); returns `path` (PNG).

    Every evaluated configuration is a faint point in its method's colour. Each method's front (on `acc`, the
    plotted quantity) is a thick step line over the union of its search seeds: the best that method found in all its
    runs together. With `seed_fronts`, each seed's own front is added as a thin translucent line (off by default:
    four methods times several seeds crowd the figure; the spread over seeds is in `search_curve_plot`). The
    default configuration is a black star, the region of configurations that dominate it (cheaper and more
    accurate, upper left) lightly shaded. The points of the overall front (all methods) and the default are
    labelled "64px-d5".
    """
    by = _by_method(records_by_method, accs=(acc,), costs=(cost,), ints=("resolution", "depth"))
    d = _record(default, "default", accs=(acc,), costs=(cost,), ints=("resolution", "depth"))
    right = max([float(r[cost]) for recs in by.values() for r in recs] + [float(d[cost])]) / MEGA * 1.15
    with _figure(path, figsize=(7.5, 5)) as (_, ax):
        for i, (method, recs) in enumerate(by.items()):
            color = _color(method, i)
            ax.scatter([float(r[cost]) / MEGA for r in recs], [PERCENT * float(r[acc]) for r in recs], s=14,
                       color=color, alpha=0.25, lw=0)
            if seed_fronts:
                for group in _by_seed(recs).values():
                    _step(ax, pareto_front(group, acc, cost), acc, cost, right, color=color, lw=0.8, alpha=0.4)
            front = pareto_front(recs, acc, cost)
            _step(ax, front, acc, cost, right, color=color, lw=2, label=f"{method} ({len(recs)} evaluations)")
            ax.scatter([float(r[cost]) / MEGA for r in front], [PERCENT * float(r[acc]) for r in front], s=24,
                       color=color)
        for r in pareto_front([r for recs in by.values() for r in recs], acc, cost):
            ax.annotate(config_label(r), (float(r[cost]) / MEGA, PERCENT * float(r[acc])), textcoords="offset points",
                        xytext=(3, 4), fontsize=7)
        dx, dy = float(d[cost]) / MEGA, PERCENT * float(d[acc])
        ax.scatter([dx], [dy], marker="*", s=200, color="k", zorder=5, label=f"default {config_label(d)}")
        ax.annotate(config_label(d), (dx, dy), textcoords="offset points", xytext=(6, -12), fontsize=8,
                    fontweight="bold")
        ax.set_xscale("log")
        ax.autoscale_view()
        xlim, ylim = ax.get_xlim(), ax.get_ylim()
        if not math.isnan(dy):
            ax.fill_between([xlim[0], dx], dy, ylim[1], color="k", alpha=0.06, lw=0, label="dominates the default")
        ax.set(xlim=xlim, ylim=ylim, xlabel="MFLOPs per image (log scale)", ylabel=f"{ACC_NAMES.get(acc, acc)} (%)",
               title=title)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="lower right")
    return path


def search_curve_plot(records_by_method: Mapping[str, Sequence[Mapping[str, Any]]], path: str,
                      default: Mapping[str, Any] | None = None) -> str:
    """Best reward so far against evaluation number (1, 2, ... in `step` order within each search seed), per
    method: the median over search seeds, a band from min to max when there are several. Seeds of different
    lengths: past the shortest, the statistics are over the seeds still running. A NaN reward counts as no reward.
    With `default` (a record with `reward`), its reward is a dashed line. Returns `path`."""
    by = _by_method(records_by_method, accs=("reward",), ints=("step",))
    if default is not None:
        _record(default, "default", accs=("reward",), ints=("resolution", "depth"))
    with _figure(path, figsize=(7, 4)) as (_, ax):
        for i, (method, recs) in enumerate(by.items()):
            groups = list(_by_seed(recs).values())
            curves = np.full((len(groups), max(map(len, groups))), np.nan)  # (S, T)
            for s, g in enumerate(groups):
                best = np.maximum.accumulate(np.nan_to_num([float(r["reward"]) for r in g], nan=-np.inf))
                curves[s, :len(g)] = np.where(np.isneginf(best), np.nan, best)
            x = np.arange(1, curves.shape[1] + 1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column (no reward yet) stays NaN
                med, lo, hi = np.nanmedian(curves, 0), np.nanmin(curves, 0), np.nanmax(curves, 0)
            color = _color(method, i)
            ax.plot(x, med, color=color, label=f"{method} ({len(groups)} seed{'s' * (len(groups) > 1)})")
            if len(groups) > 1:
                ax.fill_between(x, lo, hi, color=color, alpha=0.15, lw=0)
        if default is not None and not math.isnan(float(default["reward"])):
            ax.axhline(float(default["reward"]), color="gray", ls="--", lw=1, label=f"default {config_label(default)}")
        ax.set(xlabel="evaluation", ylabel="best reward so far")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return path


def _arrays(source: Any, keys: Sequence[str], field: str, n: int) -> dict[str, np.ndarray]:
    """`keys` of a dict (or of a `DetectionSplit`'s `ground_truth()`) as NumPy arrays with >= `n` rows."""
    if hasattr(source, "ground_truth") and not isinstance(source, Mapping):
        source = source.ground_truth()
    check(isinstance(source, Mapping), field, f"got {type(source).__name__}; allowed: a dict with {', '.join(keys)}")
    out = {}
    for key in keys:
        check(key in source, f"{field}.{key}", f"missing; allowed: a dict with {', '.join(keys)}")
        out[key] = np.asarray(source[key])
        check(out[key].ndim >= 2 and out[key].shape[0] >= n, f"{field}.{key}",
              f"got shape {out[key].shape}; allowed: (N >= {n}, k{', 4' if key == 'boxes' else ''})")
    check(out["boxes"].ndim == 3 and out["boxes"].shape[2] == 4, f"{field}.boxes",
          f"got shape {out['boxes'].shape}; allowed: (N, k, 4) corners x0, y0, x1, y1")
    return out


def detection_pictures(images: Any, ground_truth: Any, detections: Any, class_names: Sequence[str], path: str,
                       score_threshold: float = 0.3, max_images: int = 8, titles: Sequence[str] | None = None) -> str:
    """A grid of the first `max_images` images: ground-truth boxes green dashed, detections with a score >=
    `score_threshold` (and `valid`) red with "label score" text. `detections` is one dict (`boxes` (N, k, 4),
    `scores`, `labels`, `valid` (N, k), as `decode` returns) or a list of them, one row each (e.g. the best
    configuration and the default), `titles` naming the rows. Boxes are corners in pixels of `images` (N, H, W, C)
    in [0, 1], pixel i covering [i, i + 1); `ground_truth` a dict `boxes`, `labels`, `valid` or a `DetectionSplit`.
    Returns `path`."""
    from matplotlib.patches import Rectangle

    imgs = np.asarray(images, np.float32)
    check(imgs.ndim == 4 and imgs.shape[-1] in (1, 3) and len(imgs) > 0, "images",
          f"got shape {imgs.shape}; allowed: (N > 0, H, W, 1 or 3)")
    check(isinstance(max_images, int) and max_images > 0, "max_images", f"got {max_images!r}; allowed: an integer > 0")
    n = min(len(imgs), max_images)
    gt = _arrays(ground_truth, ("boxes", "labels", "valid"), "ground_truth", n)
    rows = [detections] if isinstance(detections, Mapping) else list(detections)
    check(len(rows) > 0, "detections", "got none; allowed: a detections dict or a non-empty list of them")
    rows = [_arrays(d, ("boxes", "scores", "labels", "valid"), f"detections[{i}]", n) for i, d in enumerate(rows)]
    check(titles is None or len(titles) == len(rows), "titles", f"got {None if titles is None else len(titles)} "
          f"titles for {len(rows)} rows of detections; allowed: one per row")
    names = list(class_names)
    shown = np.concatenate([gt["labels"][:n][gt["valid"][:n].astype(bool)]] + [
        d["labels"][:n][d["valid"][:n].astype(bool) & (d["scores"][:n] >= score_threshold)] for d in rows])
    bad = shown[(shown < 0) | (shown >= len(names))]
    check(not bad.size, "class_names", f"has {len(names)} names but label {bad[:1]} is shown; allowed: one per label")
    h, w = imgs.shape[1:3]
    with _figure(path, len(rows), n, figsize=(1.9 * n, 1.9 * len(rows) * h / w + 0.3), squeeze=False) as (fig, axes):
        for r, det in enumerate(rows):
            for j in range(n):
                ax = axes[r, j]
                img = imgs[j, ..., 0] if imgs.shape[-1] == 1 else imgs[j]
                ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest", extent=(0, w, h, 0))
                for (x0, y0, x1, y1), ok in zip(gt["boxes"][j], gt["valid"][j]):
                    if ok:
                        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="lime", ls="--", lw=1))
                for (x0, y0, x1, y1), s, lab, ok in zip(det["boxes"][j], det["scores"][j], det["labels"][j],
                                                        det["valid"][j]):
                    if ok and s >= score_threshold:
                        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="red", lw=1))
                        ax.text(x0, y0, f"{names[int(lab)]} {float(s):.2f}", color="white", fontsize=6, va="bottom",
                                bbox={"facecolor": "red", "alpha": 0.7, "pad": 0.5, "lw": 0})
                ax.set(xlim=(0, w), ylim=(h, 0), xticks=[], yticks=[])
            if titles is not None:
                axes[r, 0].set_ylabel(str(titles[r]), fontsize=9)
        fig.tight_layout()
    return path


def summary_table(records_by_method: Mapping[str, Sequence[Mapping[str, Any]]], default: Mapping[str, Any]) -> str:
    """A Markdown table, one row per method and a last row for the default: search seeds, evaluations (all seeds),
    distinct (resolution, depth) configurations, the configuration with the best validation mAP (ties: fewer
    FLOPs, then first) with its valid / test mAP (in percent) and MFLOPs, the size of the validation-mAP front, and
    how many of that front's configurations dominate the default on test mAP (chosen on validation, judged on
    test)."""
    keys = {"accs": ("valid_map", "test_map"), "costs": ("flops",), "ints": ("resolution", "depth")}
    by = _by_method(records_by_method, **keys)
    d = _record(default, "default", **keys)
    rows = []
    for method, recs in by.items():
        row = {"method": method, "seeds": len({r.get("search_seed") for r in recs}), "evaluations": len(recs),
               "configs": len({(int(r["resolution"]), int(r["depth"])) for r in recs})}
        front = pareto_front(recs, "valid_map")
        if front:
            best = front[-1]  # the most accurate; of equals the cheapest, then the first
            row.update({"best (valid)": config_label(best), "valid mAP": PERCENT * float(best["valid_map"]),
                        "test mAP": PERCENT * float(best["test_map"]), "MFLOPs": float(best["flops"]) / MEGA,
                        "front": len(front), "front > default (test)": len(dominating(front, d))})
        rows.append(row)
    rows.append({"method": "default", "best (valid)": config_label(d), "valid mAP": PERCENT * float(d["valid_map"]),
                 "test mAP": PERCENT * float(d["test_map"]), "MFLOPs": float(d["flops"]) / MEGA})
    columns = ["method", "seeds", "evaluations", "configs", "best (valid)", "valid mAP", "test mAP", "MFLOPs",
               "front", "front > default (test)"]
    return markdown_table(rows, columns)


def _best(records: Sequence[Mapping[str, Any]], default: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A method's configuration to draw: the most accurate (validation) front configuration dominating the default
    on test mAP, else its most accurate front configuration."""
    front = pareto_front(records, "valid_map") if records else []
    if not front:
        return None
    beats = [r for r in front if dominates(r, default)]
    return max(beats, key=lambda r: r["valid_map"]) if beats else front[-1]


def short_run_note(config: Any) -> str:
    """A plain warning for searches whose trainings are shorter or smaller than the default configuration's (e.g.
    `make demo`'s): their detectors have not converged, so their fronts say nothing about the methods."""
    from experiments.configs import detection_search as detection_config

    d = detection_config.get_config()
    if config.dataset != d.dataset:
        return ""
    sizes = (("training steps", config.train.steps, d.train.steps),
             ("detector width", config.detector.width, d.detector.width),
             ("training canvases", config.splits.train, d.splits.train))
    cut = [f"{what} {mine:,} (default {full:,})" for what, mine, full in sizes if mine < full]
    if not cut:
        return ""
    return (f"**Not converged: a smoke run** ({', '.join(cut)}). Its detectors are far from trained (mAPs of a few "
            "percent at most), so the fronts and the 'dominates' counts below show that every method runs end to "
            "end, not which one searches better. The default configuration (`python -m experiments.detection_search "
            "--config experiments/configs/detection_search.py --config.method=all`: roughly 40-60 minutes per seed "
            "on a 2-core CPU) gives the README's figures.")


def write_report(config: Any, results: Mapping[str, Any], data: Any, space: Any, evaluator: Any, workdir: str,
                 report: Any = None) -> None:
    """The detection search's report section (a new report.md in workdir unless `report` is given): the summary
    table, the fronts, the search curves, the gradient trajectories and detection pictures on test canvases (the first
    seed's trainings of the default and of each method's best configuration, their saved variables; trained again
    only where none were saved)."""
    from experiments.detection_gradient_report import gradient_section
    from jaxnas.common.report import Report
    from jaxnas.evaluation.detection_training import DetectionTrainer, detect
    from jaxnas.models.detector import CenterNet

    own = report is None
    report = report or Report(workdir, "Detector search: input resolution and depth")
    path = lambda name: os.path.join(workdir, name)  # noqa: E731
    by_method = {m: recs for m, recs in results["evaluations"].items() if recs}
    default = results["default"]
    seeds = results["seeds"]
    report.heading(f"Detector search on {results['dataset']}: resolution x depth, {len(seeds)} seed(s)")
    report.text(f"Space: resolutions {space.resolutions[0]}..{space.resolutions[-1]} px, depths {space.depths[0]}.."
                f"{space.depths[-1]}; default configuration {config_label(default)} (the middle of both ranges). "
                f"{results['trainings']} trainings ({results['trained_this_run']} in this run), {results['device']}. "
                "Searches select on validation mAP; 'front > default' counts front configurations with higher test "
                "mAP at no more FLOPs (or fewer FLOPs at no lower test mAP). Seeds whose front dominates the default: "
                + ", ".join(f"{m} {v['seeds_dominating_default']}/{len(seeds)}" for m, v in results["methods"].items())
                + ".")
    if note := short_run_note(config):
        report.text(note)
    report.text(summary_table(by_method, default))
    report.image(front_plot(by_method, default, path("front.png")), "test mAP against FLOPs per method")
    curves = {m: r for m, r in by_method.items() if m != "gradient"}
    if curves:
        report.image(search_curve_plot(curves, path("search_curves.png")), "best reward so far")
    gradient_section(report, results["gradient_runs"], workdir)
    n = min(config.pictures, len(data.test))
    if n > 0:
        seed, det = seeds[0], evaluator.detector
        firsts = {m: [r for r in recs if r["search_seed"] == seed] for m, recs in by_method.items()}
        picks = [("default", default)] + [(m, b) for m, recs in firsts.items() if (b := _best(recs, default))]
        dets, titles, done = [], [], {}
        for name, rec in picks:
            key = (int(rec["resolution"]), int(rec["depth"]))
            if key not in done:
                variables = evaluator.load_variables(evaluator.records.get((*key, seed), {}))
                if variables is None:  # no saved variables: train the configuration again
                    trainer = DetectionTrainer(data, key[0], key[1], evaluator.settings, det)
                    variables = trainer.score(1, seed=seed).candidate(0)
                network = CenterNet(data.num_classes, key[1], det.width, det.stride, det.head_width)
                done[key] = detect(network, variables, data.test.images[:n], key[0], det)
            dets.append(done[key])
            titles.append(f"{name}: {config_label(rec)}, {float(rec['flops']) / MEGA:.1f} MFLOPs")
        report.image(detection_pictures(data.test.images[:n], data.test.take(np.arange(n)), dets, data.class_names,
                                        path("detections.png"), titles=titles),
                     "test canvases: ground truth (green, dashed), detections (red)")
    if own:
        report.write()
