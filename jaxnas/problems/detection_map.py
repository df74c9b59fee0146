"""COCO box detection metric (mAP@[.5:.95], AP50, AP75, AR@100) in numpy, equal to pycocotools' COCOeval.

The metric is COCO's (Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014); its reference
implementation is pycocotools' `COCOeval` (cocodataset/cocoapi, `PythonAPI/pycocotools/cocoeval.py`, box IoU in
`common/maskApi.c: bbIou`). `coco_map` reproduces `COCOeval(..., iouType="bbox")` with one area range and one
detection limit; the tests compare it with pycocotools on random and hand-made cases. Reproduced exactly:

- IoU of (x, y, w, h) boxes without the +1 pixel convention: the intersection's width is
  `min(x_d + w_d, x_g + w_g) - max(x_d, x_g)` (zero overlap if <= 0), the union `w_d h_d + w_g h_g - inter`,
  in float64 and in the same order of operations as `bbIou`, so ties and values on a threshold agree bit for bit
  (checked on x86-64 against pycocotools 2.0.11 with integer boxes, where such ties are common).
  Our corners (x0, y0, x1, y1) become (x0, y0, x1 - x0, y1 - y0) first, as `to_coco` writes them for pycocotools.
- Per image and class: detections sorted by score, descending, stably (pycocotools' mergesort), and only the first
  `max_dets` kept (`maxDets` applies per image *and* class, not per image). Ground truths outside `area_rng` are
  "ignored" and sorted after the others (stably).
- Greedy matching at each IoU threshold t (clipped to 1 - 1e-10): each detection in score order takes, among the
  ground truths of its class not yet taken, the one of largest IoU >= t, a later one winning a tie; an ignored
  ground truth only if no regular one qualifies. A detection matched to an ignored ground truth, or unmatched with
  an area (w h) outside `area_rng`, is ignored: neither a true nor a false positive.
- Per class: the detections of all images (in image order) sorted again by score, stably; cumulative TP and FP,
  recall TP / #non-ignored gts, precision TP / (TP + FP + eps), made monotone from the right; precision read at the
  101 recall thresholds 0, 0.01, ..., 1 (first detection with recall >= r; 0 beyond the last recall reached).
- A class without (non-ignored) ground truth has precision -1 and is left out of every mean; a class with ground
  truth but no detection scores 0. mAP, AP50, AP75 and AR are the means over the entries > -1 of the precision
  array (IoU thresholds x recall thresholds x classes) or the recall array (IoU thresholds x classes), i.e.
  `COCOeval.stats[0]`, `[1]`, `[2]` and `[8]` with the default `area_rng` and `max_dets=100`; a summary with no
  class to average is -1 as in pycocotools.

Omitted: crowd regions (a ground truth with a true `iscrowd` is refused, so crowd IoU, ignoring and multiple
matches never arise), segmentation and keypoint IoU, several area ranges or detection limits in one call (call
once per setting: `area_rng=(0, 32**2)` gives COCO's "small", `(32**2, 96**2)` "medium", `(96**2, 1e10)`
"large"; the default is "all", `(0, 1e10)`), `useCats=0`, and the per-threshold score array. Per-image
`evalImgs` are not built; images and classes are array indices, not COCO ids (`to_coco` maps image i to id i + 1
and label k to category id k + 1).

Input, per image: ground truth `boxes` (n, 4) corners (x0, y0, x1, y1) in pixels and integer `labels` (n,);
detections `boxes` (m, 4), `scores` (m,) and `labels` (m,). Each image is a dict with those keys or a tuple in
that order; either may add `valid` (bool, one per row) to mark the rows of a fixed-size, padded output that count.
Instead of a list, `gt` or `dt` may be one dict of batched arrays with a leading image axis (`boxes` (N, m, 4),
...), as a jitted detector's top-k emits them. Rows with `valid` false are dropped unchecked. Ground truths may
carry `iscrowd` if it is all 0.

Cost: one broadcast IoU tensor per chunk of images and one sequential step per detection rank, vectorised over
images, thresholds and ground truths. Measured on a busy 2-core CPU: 0.17 s for 500 images of 20 detections
(pycocotools: 2.1 s), mostly the per-image checks and sorting; 4 s for 5,000 images of 100 detections in 80
classes (pycocotools: 114 s); both results equal to pycocotools' bit for bit.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxnas.common.errors import ConfigError, check

COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # as pycocotools' Params.setDetParams
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
AREA_ALL = (0.0, 1e10)  # pycocotools' areaRng "all" = [0 ** 2, 1e5 ** 2]
_GT_KEYS = ("boxes", "labels")
_DT_KEYS = ("boxes", "scores", "labels")
_CHUNK_ELEMENTS = 1 << 22  # images per matching chunk: at most this many (image, threshold, detection, gt) cells


def _images(data: Any, name: str) -> list:
    """The per-image entries of `data`: a list as given, or a dict of batched arrays split along axis 0."""
    if isinstance(data, Mapping):
        arrays = {key: np.asarray(value) for key, value in data.items()}
        check("boxes" in arrays, f"{name}.boxes", "missing from the dict of batched arrays")
        check(arrays["boxes"].ndim == 3, f"{name}.boxes",
              f"got shape {arrays['boxes'].shape}; allowed: (images, rows, 4) for batched arrays")
        n = arrays["boxes"].shape[0]
        for key, value in arrays.items():
            check(value.ndim >= 1 and value.shape[0] == n, f"{name}.{key}",
                  f"got shape {value.shape}; allowed: a leading axis of {n} images like {name}.boxes")
        return [{key: value[i] for key, value in arrays.items()} for i in range(n)]
    check(isinstance(data, Sequence) and not isinstance(data, (str, bytes)), name,
          f"got {type(data).__name__}; allowed: a list with one entry per image, or a dict of batched arrays")
    return list(data)


def _array(value: Any, field: str, dtype: Any = None) -> np.ndarray:
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise ConfigError(field, f"not a numeric array ({error})") from None


def _parse_image(entry: Any, name: str, i: int, keys: tuple, num_classes: int | None) -> dict:
    """One image's valid rows as float64 boxes (n, 4), int64 labels (n,) and, for detections, float64 scores."""
    where = f"{name}[{i}]"
    optional = ("valid",) if name == "dt" else ("valid", "iscrowd")
    if isinstance(entry, Mapping):
        unknown = sorted(set(entry) - set(keys) - set(optional))
        check(not unknown, where, f"unknown keys {unknown}; allowed: {', '.join(keys + optional)}")
        for key in keys:
            check(key in entry, f"{where}.{key}", "missing")
        fields = dict(entry)
    elif isinstance(entry, (tuple, list)):
        check(len(entry) in (len(keys), len(keys) + 1), where,
              f"a tuple of {len(entry)}; allowed: ({', '.join(keys)}) or ({', '.join(keys)}, valid)")
        fields = dict(zip(keys + ("valid",), entry))
    else:
        raise ConfigError(where, f"got {type(entry).__name__}; allowed: a dict with keys {', '.join(keys)} or a tuple")

    boxes = _array(fields["boxes"], f"{where}.boxes", np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    check(boxes.ndim == 2 and boxes.shape[1] == 4, f"{where}.boxes",
          f"got shape {boxes.shape}; allowed: (n, 4) corners (x0, y0, x1, y1)")
    n = boxes.shape[0]
    columns = {}
    for key in keys[1:] + tuple(k for k in optional if k in fields):
        value = _array(fields[key], f"{where}.{key}")
        if value.size == 0:
            value = value.reshape(0)
        check(value.shape == (n,), f"{where}.{key}", f"got shape {value.shape}; allowed: ({n},), one per box")
        columns[key] = value
    keep = np.ones(n, bool)
    if "valid" in columns:
        valid = columns["valid"]
        check(valid.dtype.kind == "b" or (valid.dtype.kind in "iu" and np.isin(valid, (0, 1)).all()),
              f"{where}.valid", f"got dtype {valid.dtype}; allowed: booleans (or 0/1)")
        keep = valid.astype(bool)
    boxes = boxes[keep]
    columns = {key: value[keep] for key, value in columns.items() if key != "valid"}

    if "iscrowd" in columns:
        check(not np.any(columns["iscrowd"]), f"{where}.iscrowd",
              "crowd regions are not supported (COCOeval's crowd handling is omitted); allowed: all 0")
    check(bool(np.isfinite(boxes).all()), f"{where}.boxes", "non-finite coordinates; allowed: finite numbers")
    bad = np.flatnonzero((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))
    if bad.size:
        raise ConfigError(f"{where}.boxes", f"valid row {bad[0]} is {boxes[bad[0]].tolist()}; allowed: corners "
                          "(x0, y0, x1, y1) with x0 <= x1 and y0 <= y1")
    labels = columns["labels"]
    integral = labels.dtype.kind in "iu" or (
        labels.dtype.kind == "f" and bool(np.isfinite(labels).all()) and bool((labels == np.round(labels)).all()))
    check(integral, f"{where}.labels", f"got dtype {labels.dtype} with non-integer values; allowed: integers")
    labels = labels.astype(np.int64)
    check(bool((labels >= 0).all()), f"{where}.labels",
          f"got {labels.min() if labels.size else ''}; allowed: class indices >= 0")
    if num_classes is not None:
        check(bool((labels < num_classes).all()), f"{where}.labels",
              f"got {labels.max() if labels.size else ''}; allowed: class indices < num_classes = {num_classes}")
    parsed = {"boxes": boxes, "labels": labels}
    if "scores" in columns:
        scores = _array(columns["scores"], f"{where}.scores", np.float64)
        check(bool(np.isfinite(scores).all()), f"{where}.scores", "non-finite scores; allowed: finite numbers")
        parsed["scores"] = scores
    return parsed


def _prepare(gt: Any, dt: Any, num_classes: int | None) -> tuple[list, list, int]:
    """Validated per-image ground truths and detections, and the number of classes."""
    if num_classes is not None:
        check(isinstance(num_classes, numbers.Integral) and not isinstance(num_classes, bool) and num_classes > 0,
              "num_classes", f"got {num_classes!r}; allowed: None (max label + 1) or an integer > 0")
        num_classes = int(num_classes)
    gts, dts = _images(gt, "gt"), _images(dt, "dt")
    check(len(dts) == len(gts), "dt",
          f"got {len(dts)} images of detections for {len(gts)} images of ground truth; allowed: one per image")
    gts = [_parse_image(entry, "gt", i, _GT_KEYS, num_classes) for i, entry in enumerate(gts)]
    dts = [_parse_image(entry, "dt", i, _DT_KEYS, num_classes) for i, entry in enumerate(dts)]
    if num_classes is None:
        num_classes = 1 + max((int(x["labels"].max()) for x in gts + dts if x["labels"].size), default=-1)
    return gts, dts, num_classes


def _xywh(corners: np.ndarray) -> np.ndarray:
    return np.stack([corners[:, 0], corners[:, 1], corners[:, 2] - corners[:, 0], corners[:, 3] - corners[:, 1]],
                    axis=1)


def box_iou(d: np.ndarray, g: np.ndarray) -> np.ndarray:
    """IoU of (x, y, w, h) boxes `d` (..., 4) and `g` (..., 4), broadcast over the leading axes, as pycocotools'
    `bbIou` (no +1 pixel; 0 without overlap) and with its order of float64 operations."""
    dx, dy, dw, dh = np.moveaxis(d, -1, 0)
    gx, gy, gw, gh = np.moveaxis(g, -1, 0)
    iw = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    ih = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    inter = iw * ih
    union = dw * dh + gw * gh - inter
    overlap = (iw > 0) & (ih > 0)
    return np.divide(inter, union, out=np.zeros(np.shape(inter)), where=overlap)


def _image(gt: dict, dt: dict, area_rng: tuple, max_dets: int) -> dict:
    """One image in evaluation order: regular gts before ignored ones, detections by score with at most
    `max_dets` per class."""
    lo, hi = area_rng
    g = _xywh(gt["boxes"])
    g_area = g[:, 2] * g[:, 3]
    g_ignore = (g_area < lo) | (g_area > hi)
    g_order = np.argsort(g_ignore, kind="stable")
    order = np.argsort(-dt["scores"], kind="stable")
    labels = dt["labels"][order]
    n = labels.size
    by_class = np.argsort(labels, kind="stable")  # score order within each class
    starts = np.zeros(n, np.int64)
    first = np.flatnonzero(np.r_[True, np.diff(labels[by_class]) != 0]) if n else np.zeros(0, np.int64)
    starts[first] = first
    rank = np.empty(n, np.int64)
    rank[by_class] = np.arange(n) - np.maximum.accumulate(starts)
    order = order[rank < max_dets]
    d = _xywh(dt["boxes"][order])
    d_area = d[:, 2] * d[:, 3]
    return {"gt_boxes": g[g_order], "gt_labels": gt["labels"][g_order], "gt_ignore": g_ignore[g_order],
            "dt_boxes": d, "dt_labels": dt["labels"][order], "dt_scores": dt["scores"][order],
            "dt_area_out": (d_area < lo) | (d_area > hi)}


def _match_chunk(images: list, thresholds: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Greedy matching of a chunk of images together: per image (T, D) matched and matched-to-ignored flags."""
    t, b = thresholds.size, len(images)
    dmax = max(im["dt_labels"].size for im in images)
    gmax = max(im["gt_labels"].size for im in images)
    d_boxes, g_boxes = np.zeros((b, dmax, 4)), np.zeros((b, gmax, 4))
    d_labels, g_labels = np.full((b, dmax), -1), np.full((b, gmax), -2)
    g_ignore = np.zeros((b, gmax), bool)
    for k, im in enumerate(images):
        nd, ng = im["dt_labels"].size, im["gt_labels"].size
        d_boxes[k, :nd], d_labels[k, :nd] = im["dt_boxes"], im["dt_labels"]
        g_boxes[k, :ng], g_labels[k, :ng], g_ignore[k, :ng] = im["gt_boxes"], im["gt_labels"], im["gt_ignore"]
    iou = box_iou(d_boxes[:, :, None, :], g_boxes[:, None, :, :])  # (B, D, G)
    iou[d_labels[:, :, None] != g_labels[:, None, :]] = -1.0  # other class or padding: never >= a threshold
    taken = np.zeros((b, t, gmax), bool)
    matched = np.zeros((b, t, dmax), bool)
    to_ignored = np.zeros((b, t, dmax), bool)
    limit = np.minimum(thresholds, 1 - 1e-10)[None, :, None]
    regular = ~g_ignore[:, None, :]
    rows, cols = np.meshgrid(np.arange(b), np.arange(t), indexing="ij")
    for j in range(dmax):
        row = iou[:, None, j, :]  # (B, 1, G)
        candidate = (row >= limit) & ~taken  # (B, T, G)
        preferred = candidate & regular
        use = np.where(preferred.any(-1, keepdims=True), preferred, candidate)
        value = np.where(use, row, -np.inf)
        best = gmax - 1 - np.argmax(value[..., ::-1], axis=-1)  # the last of equal maxima, as pycocotools
        hit = use.any(-1)  # (B, T)
        taken[rows[hit], cols[hit], best[hit]] = True
        matched[:, :, j] = hit
        to_ignored[:, :, j] = hit & np.take_along_axis(g_ignore, best, axis=1)
    return [(matched[k, :, :im["dt_labels"].size], to_ignored[k, :, :im["dt_labels"].size])
            for k, im in enumerate(images)]


def _match(images: list, thresholds: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per image (T, D) flags: matched, and ignored (matched to an ignored gt, or unmatched and out of range)."""
    t = thresholds.size
    out = [(np.zeros((t, im["dt_labels"].size), bool), np.zeros((t, im["dt_labels"].size), bool)) for im in images]
    todo = sorted((i for i, im in enumerate(images) if im["dt_labels"].size and im["gt_labels"].size),
                  key=lambda i: (images[i]["gt_labels"].size, images[i]["dt_labels"].size))
    start = 0
    while start < len(todo):
        end, dmax, gmax = start, 0, 0
        while end < len(todo):
            im = images[todo[end]]
            dn, gn = max(dmax, im["dt_labels"].size), max(gmax, im["gt_labels"].size)
            if end > start and (end - start + 1) * t * dn * gn > _CHUNK_ELEMENTS:
                break
            dmax, gmax, end = dn, gn, end + 1
        for i, flags in zip(todo[start:end], _match_chunk([images[i] for i in todo[start:end]], thresholds)):
            out[i] = flags
        start = end
    return [(m, ig | (~m & im["dt_area_out"][None, :])) for (m, ig), im in zip(out, images)]


def _mean_valid(values: np.ndarray) -> float:
    """pycocotools' summary: the mean of the entries > -1, or -1 if there are none."""
    kept = values[values > -1]
    return float(np.mean(kept)) if kept.size else -1.0


def _check_settings(iou_thresholds: Any, area_rng: Any, max_dets: Any) -> tuple[np.ndarray, tuple]:
    thresholds = _array(iou_thresholds, "iou_thresholds", np.float64)
    check(thresholds.ndim == 1 and thresholds.size > 0 and bool(np.isfinite(thresholds).all())
          and bool(((thresholds >= 0) & (thresholds <= 1)).all()), "iou_thresholds",
          f"got {np.asarray(iou_thresholds).tolist()}; allowed: a non-empty 1-D array of numbers in [0, 1]")
    if area_rng is None:
        area_rng = AREA_ALL
    rng = _array(area_rng, "area_rng", np.float64)
    check(rng.shape == (2,) and not np.isnan(rng).any() and rng[0] <= rng[1], "area_rng",
          f"got {area_rng!r}; allowed: None (COCO's 'all', (0, 1e10)) or (low, high) box areas with low <= high")
    check(isinstance(max_dets, numbers.Integral) and not isinstance(max_dets, bool) and max_dets > 0, "max_dets",
          f"got {max_dets!r}; allowed: an integer > 0")
    return thresholds, (float(rng[0]), float(rng[1]))


def coco_map(gt: Any, dt: Any, num_classes: int | None = None, iou_thresholds: Any = COCO_IOU_THRESHOLDS,
             area_rng: Any = None, max_dets: int = 100) -> dict:
    """COCO box AP of detections `dt` against ground truths `gt` (see the module docstring for formats).

    `num_classes`: labels are 0..num_classes-1 (default: the largest label + 1); `iou_thresholds`: COCO's
    0.5:0.05:0.95; `area_rng`: (low, high) box areas counted (default COCO's "all"); `max_dets`: detections kept
    per image and class, highest scores first.

    Returns a dict: `map` (AP averaged over IoU thresholds, recall thresholds and classes with ground truth;
    COCOeval's stats[0]), `ap50` / `ap75` (the same at IoU 0.5 / 0.75, -1 if not among `iou_thresholds`;
    stats[1] / stats[2]), `ar` (recall averaged over thresholds and classes; stats[8] for max_dets=100),
    `per_class` (K,) AP@`iou_thresholds` per class, `precision` (T, 101, K) and `recall` (T, K) as COCOeval's
    eval["precision"][..., a, m] and eval["recall"][..., a, m]; -1 marks classes without ground truth (and a
    summary with nothing to average), `num_classes`.
    """
    thresholds, area = _check_settings(iou_thresholds, area_rng, max_dets)
    gts, dts, k_count = _prepare(gt, dt, num_classes)
    images = [_image(g, d, area, int(max_dets)) for g, d in zip(gts, dts)]
    flags = _match(images, thresholds)
    t_count, r_count = thresholds.size, COCO_RECALL_THRESHOLDS.size

    scores = np.concatenate([im["dt_scores"] for im in images] + [np.zeros(0)])
    labels = np.concatenate([im["dt_labels"] for im in images] + [np.zeros(0, np.int64)])
    matched = np.concatenate([m for m, _ in flags] + [np.zeros((t_count, 0), bool)], axis=1)
    ignored = np.concatenate([ig for _, ig in flags] + [np.zeros((t_count, 0), bool)], axis=1)
    gt_labels = np.concatenate([im["gt_labels"][~im["gt_ignore"]] for im in images] + [np.zeros(0, np.int64)])
    positives = np.bincount(gt_labels, minlength=k_count)
    order = np.lexsort((-scores, labels))  # by class, then score descending; stable, so image order breaks ties
    bounds = np.searchsorted(labels[order], np.arange(k_count + 1))

    precision = -np.ones((t_count, r_count, k_count))
    recall = -np.ones((t_count, k_count))
    for k in np.flatnonzero(positives):
        sel = order[bounds[k]:bounds[k + 1]]
        count = sel.size
        tp = np.cumsum(matched[:, sel] & ~ignored[:, sel], axis=1).astype(float)
        fp = np.cumsum(~matched[:, sel] & ~ignored[:, sel], axis=1).astype(float)
        rc = tp / positives[k]
        pr = tp / (fp + tp + np.spacing(1))
        recall[:, k] = rc[:, -1] if count else 0.0
        pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
        for t in range(t_count):
            index = np.searchsorted(rc[t], COCO_RECALL_THRESHOLDS, side="left")
            reached = index < count
            precision[t, :, k] = 0.0
            precision[t, reached, k] = pr[t, index[reached]]

    def at(iou: float) -> float:
        return _mean_valid(precision[np.flatnonzero(thresholds == iou)])

    return {"map": _mean_valid(precision), "ap50": at(0.5), "ap75": at(0.75), "ar": _mean_valid(recall),
            "per_class": np.array([_mean_valid(precision[:, :, k]) for k in range(k_count)]),
            "precision": precision, "recall": recall, "num_classes": k_count}


def to_coco(gt: Any, dt: Any, num_classes: int | None = None) -> tuple[dict, list]:
    """The same data in pycocotools' formats: (a ground-truth dataset dict for `COCO`, a results list for
    `COCO.loadRes`). Image i gets id i + 1, label k category id k + 1 (named str(k)), ground truths ids from 1;
    boxes become [x0, y0, x1 - x0, y1 - y0], area w * h, iscrowd 0; rows with `valid` false are left out.
    (pycocotools' `loadRes` fails on an empty results list: build the detections' `COCO` by hand then.)"""
    gts, dts, k_count = _prepare(gt, dt, num_classes)
    images = [{"id": i + 1} for i in range(len(gts))]
    categories = [{"id": k + 1, "name": str(k)} for k in range(k_count)]
    annotations, results = [], []
    for i, (g, d) in enumerate(zip(gts, dts)):
        for box, label in zip(_xywh(g["boxes"]).tolist(), g["labels"].tolist()):
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": label + 1,
                                "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
        for box, score, label in zip(_xywh(d["boxes"]).tolist(), d["scores"].tolist(), d["labels"].tolist()):
            results.append({"image_id": i + 1, "category_id": label + 1, "bbox": box, "score": score})
    return {"images": images, "annotations": annotations, "categories": categories}, results
