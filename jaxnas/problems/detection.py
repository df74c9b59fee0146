"""CenterNet's training targets, loss and decoding (Zhou, Wang & Krähenbühl, "Objects as Points", 2019), a fixed-size
greedy box NMS, and FLOP counts for `jaxnas.models.detector.CenterNet`.

Reproduced from the paper and its code (xingyizhou/CenterNet, `src/lib/datasets/sample/ctdet.py`,
`utils/image.py`, `models/losses.py`, `models/decode.py`):

* targets (`encode_targets`): for each object, its centre c = ((x0 + x1) / 2, (y0 + y1) / 2) / S on the output grid
  (stride S), the cell floor(c), a Gaussian exp(-(dx^2 + dy^2) / (2 sigma^2)) in the (2r + 1)^2 window around the
  cell with r = floor(max(0, gaussian_radius((ceil(h), ceil(w)), 0.7))) (CornerNet's radius formula, as CenterNet
  uses it, size in cells) and sigma = (2r + 1) / 6, values below float64 eps dropped; a class's heatmap is the
  pixel-wise maximum over its objects. Size target (w, h) / S, offset target c - floor(c), the flat cell index
  y * W + x and a mask per object (objects padded to M; padding rows and empty boxes are masked out).
* loss (`detection_loss`): the penalty-reduced pixel-wise focal loss (alpha 2, beta 4) over all cells and classes,
  summed over the batch and divided by the number of positive cells (heatmap == 1), plus 0.1 x L1 size loss and
  1 x L1 offset loss at the objects' cells, each divided by (2 x number of objects + 1e-4) (CenterNet's `RegL1Loss`).
* decoding (`decode`): sigmoid, 3x3 max-pool "NMS" (a cell is kept iff it equals its neighbourhood's maximum), top-k
  over (positions x classes), box = centre (cell + offset) x S -/+ size x S / 2, in input pixels.

Deviations: the heatmap loss reads logits through log-sigmoid instead of clamping the sigmoid to [1e-4, 1 - 1e-4]
(same value inside the clamp, finite gradients outside it); with no object in the batch the heatmap loss is divided
by 1 (CenterNet's `if num_pos == 0` branch gives the same value). Decoding keeps a fixed k with a `valid` mask
(score >= `score_threshold`) instead of a variable-length list, and does not clip boxes to the image; the top-k
breaks score ties by the lower flat index (position-major, then class); predicted sizes are clamped at 0 (CenterNet
leaves a negative size as it is, giving an inverted box). Targets are built with array operations for
`jit` (fixed shapes), not drawn object by object; with two objects on one cell the later one's size wins in
CenterNet, here both rows stay (the loss reads the same cell twice). No augmentation (flip, affine crop) here.

`nms` is the classic greedy box NMS (not part of CenterNet's pipeline), fixed-size for `jit`; `nms_reference` is
its plain-Python specification. `flops` reads XLA's cost analysis of the compiled forward pass; `conv_flops_by_hand`
counts 2 k^2 C_in C_out H W per convolution (backbone and heads), without the element-wise operations.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.common.errors import check, check_positive

FOCAL_ALPHA = 2.0
FOCAL_BETA = 4.0
SIZE_WEIGHT = 0.1
OFFSET_WEIGHT = 1.0
MIN_OVERLAP = 0.7


def gaussian_radius(height: jax.Array, width: jax.Array, min_overlap: float = MIN_OVERLAP) -> jax.Array:
    """CenterNet's `gaussian_radius` (from CornerNet, kept as written there): the minimum of three radii."""
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + jnp.sqrt(b1**2 - 4 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + jnp.sqrt(b2**2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + jnp.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return jnp.minimum(jnp.minimum(r1, r2), r3)


def _encode_one(boxes, labels, valid, grid: int, stride: int, num_classes: int) -> dict:
    """Targets of one image: boxes (M, 4) in input pixels, labels (M,), valid (M,)."""
    b = boxes.astype(jnp.float32) / stride  # (M, 4) in output cells
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    ok = valid.astype(bool) & (w > 0) & (h > 0) & (labels >= 0) & (labels < num_classes)  # (M,)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    ix = jnp.clip(jnp.floor(cx), 0, grid - 1).astype(jnp.int32)
    iy = jnp.clip(jnp.floor(cy), 0, grid - 1).astype(jnp.int32)
    radius = jnp.floor(jnp.maximum(0.0, gaussian_radius(jnp.ceil(h), jnp.ceil(w))))  # (M,)
    sigma = (2 * radius + 1) / 6
    dy = jnp.arange(grid)[None, :, None] - iy[:, None, None]  # (M, G, 1)
    dx = jnp.arange(grid)[None, None, :] - ix[:, None, None]  # (M, 1, G)
    g = jnp.exp(-(dx**2 + dy**2) / (2 * sigma[:, None, None] ** 2))  # (M, G, G)
    r = radius[:, None, None]
    inside = (jnp.abs(dx) <= r) & (jnp.abs(dy) <= r) & (g >= np.finfo(np.float64).eps) & ok[:, None, None]
    g = jnp.where(inside, g, 0.0)
    onehot = (labels[:, None] == jnp.arange(num_classes)[None, :]) & ok[:, None]  # (M, K)
    heatmap = jnp.max(jnp.where(onehot[:, None, None, :], g[..., None], 0.0), axis=0)  # (G, G, K)
    mask = ok.astype(jnp.float32)
    return {
        "heatmap": heatmap,
        "size": jnp.stack([w, h], -1) * mask[:, None],  # (M, 2)
        "offset": jnp.stack([cx - ix, cy - iy], -1) * mask[:, None],  # (M, 2)
        "index": jnp.where(ok, iy * grid + ix, 0).astype(jnp.int32),  # (M,)
        "mask": mask,  # (M,)
    }


def encode_targets(boxes: jax.Array, labels: jax.Array, valid: jax.Array, image_size: int, stride: int,
                   num_classes: int) -> dict[str, jax.Array]:
    """CenterNet's targets for a batch of square `image_size` x `image_size` images (see the module docstring).

    Args:
      boxes: (B, M, 4) corners (x0, y0, x1, y1) in input pixels; labels (B, M) int; valid (B, M) bool.
      image_size, stride, num_classes: static ints; `image_size` must be a multiple of `stride`.

    Returns:
      dict of `heatmap` (B, G, G, K) with G = image_size / stride, `size` and `offset` (B, M, 2) in cells,
      `index` (B, M) int32 flat cell index, `mask` (B, M) float32.
    """
    check_positive("stride", stride, integer=True)
    check_positive("num_classes", num_classes, integer=True)
    check(isinstance(image_size, int) and image_size > 0 and image_size % stride == 0, "resolution",
          f"got {image_size!r}; allowed: a positive multiple of the output stride {stride}")
    check(boxes.ndim == 3 and boxes.shape[-1] == 4, "boxes", f"got shape {boxes.shape}; allowed: (B, M, 4)")
    fn = lambda b, l, v: _encode_one(b, l, v, image_size // stride, stride, num_classes)  # noqa: E731
    return jax.vmap(fn)(boxes, jnp.asarray(labels), jnp.asarray(valid))


def _gather(dense: jax.Array, index: jax.Array) -> jax.Array:
    """dense (B, H, W, C) at flat cells index (B, M) -> (B, M, C)."""
    b, h, w, c = dense.shape
    return jnp.take_along_axis(dense.reshape(b, h * w, c), index[..., None], axis=1)


def detection_losses(outputs: dict[str, jax.Array], targets: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """CenterNet's loss terms: `heatmap` (focal), `size`, `offset` (L1) and the weighted `total`."""
    logits = outputs["heatmap_logits"].astype(jnp.float32)  # (B, G, G, K)
    gt = targets["heatmap"]
    pos = (gt == 1).astype(jnp.float32)
    p = jax.nn.sigmoid(logits)
    pos_loss = jax.nn.log_sigmoid(logits) * (1 - p) ** FOCAL_ALPHA * pos
    neg_loss = jax.nn.log_sigmoid(-logits) * p**FOCAL_ALPHA * (1 - gt) ** FOCAL_BETA * (1 - pos)
    heat = -(pos_loss.sum() + neg_loss.sum()) / jnp.maximum(pos.sum(), 1.0)

    mask = targets["mask"][..., None]  # (B, M, 1)
    denom = 2 * targets["mask"].sum() + 1e-4

    def l1(name):
        return jnp.sum(jnp.abs(_gather(outputs[name], targets["index"]) - targets[name]) * mask) / denom

    size, offset = l1("size"), l1("offset")
    total = heat + SIZE_WEIGHT * size + OFFSET_WEIGHT * offset
    return {"total": total, "heatmap": heat, "size": size, "offset": offset}


def detection_loss(outputs: dict[str, jax.Array], targets: dict[str, jax.Array]) -> jax.Array:
    """CenterNet's total loss, a scalar to minimise: focal + 0.1 L1(size) + L1(offset)."""
    return detection_losses(outputs, targets)["total"]


def decode(outputs: dict[str, jax.Array], k: int, stride: int, score_threshold: float = 0.05) -> dict[str, jax.Array]:
    """Fixed-size CenterNet decoding: 3x3 max-pool peaks, top-`k` over (positions x classes), boxes in input pixels.

    Returns a dict `coco_map` accepts as detections: `boxes` (B, k, 4) corners, `scores` (B, k), `labels` (B, k)
    int32, `valid` (B, k) = scores >= score_threshold; sorted by score, descending.
    """
    heat = jax.nn.sigmoid(outputs["heatmap_logits"].astype(jnp.float32))  # (B, G, G, K)
    b, h, w, c = heat.shape
    check_positive("k", k, integer=True)
    check(k <= h * w * c, "k", f"got {k}; allowed: at most {h * w * c} (cells x classes)")
    peak = jax.lax.reduce_window(heat, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 1, 1, 1), "SAME")
    heat = jnp.where(heat == peak, heat, 0.0)
    scores, flat = jax.lax.top_k(heat.reshape(b, h * w * c), k)  # (B, k)
    cell, labels = flat // c, flat % c
    xs, ys = (cell % w).astype(jnp.float32), (cell // w).astype(jnp.float32)
    size, offset = _gather(outputs["size"], cell), _gather(outputs["offset"], cell)  # (B, k, 2)
    cx, cy = (xs + offset[..., 0]) * stride, (ys + offset[..., 1]) * stride
    size = jnp.maximum(size, 0.0)  # a size head can predict negative sizes (untrained, early); no inverted boxes
    half_w, half_h = size[..., 0] * stride / 2, size[..., 1] * stride / 2
    boxes = jnp.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], -1)
    return {"boxes": boxes, "scores": scores, "labels": labels.astype(jnp.int32), "valid": scores >= score_threshold}


def box_iou_matrix(a: jax.Array, b: jax.Array) -> jax.Array:
    """IoU of corner boxes a (N, 4) with b (N', 4) -> (N, N'); 0 where the union is empty."""
    iw = jnp.clip(jnp.minimum(a[:, None, 2], b[None, :, 2]) - jnp.maximum(a[:, None, 0], b[None, :, 0]), 0)
    ih = jnp.clip(jnp.minimum(a[:, None, 3], b[None, :, 3]) - jnp.maximum(a[:, None, 1], b[None, :, 1]), 0)
    inter = iw * ih
    area = lambda x: jnp.clip(x[:, 2] - x[:, 0], 0) * jnp.clip(x[:, 3] - x[:, 1], 0)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1.0), 0.0)


def nms(boxes: jax.Array, scores: jax.Array, iou_threshold: float, max_out: int) -> tuple[jax.Array, jax.Array]:
    """Greedy NMS with fixed-size output, jit-able: boxes (N, 4) corners, scores (N,).

    Boxes are visited by score, descending (ties: lower index first); a box is kept unless its IoU with a kept box
    is > `iou_threshold`; at most `max_out` are kept. Returns (indices (max_out,) int32 of the kept boxes in
    order, padded with -1; valid (max_out,) bool).
    """
    n = boxes.shape[0]
    order = jnp.argsort(-scores, stable=True)  # (N,)
    iou = box_iou_matrix(boxes[order], boxes[order])  # (N, N) in visiting order

    def body(i, carry):
        suppressed, kept, count = carry
        take = ~suppressed[i] & (count < max_out)
        kept = jnp.where(take, kept.at[jnp.minimum(count, max_out - 1)].set(order[i].astype(jnp.int32)), kept)
        suppressed = suppressed | (take & (iou[i] > iou_threshold))
        return suppressed, kept, count + take.astype(jnp.int32)

    init = (jnp.zeros((n,), bool), jnp.full((max_out,), -1, jnp.int32), jnp.zeros((), jnp.int32))
    _, kept, _ = jax.lax.fori_loop(0, n, body, init)
    return kept, kept >= 0


def nms_reference(boxes: Any, scores: Any, iou_threshold: float, max_out: int) -> list[int]:
    """Plain-Python greedy NMS, the specification `nms` is tested against: the kept indices in order."""
    boxes, scores = np.asarray(boxes, np.float64).tolist(), np.asarray(scores).tolist()

    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        union = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1]) + max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]) - iw * ih
        return iw * ih / union if union > 0 else 0.0

    kept: list[int] = []
    for i in sorted(range(len(scores)), key=lambda j: (-scores[j], j)):
        if len(kept) < max_out and all(iou(boxes[i], boxes[j]) <= iou_threshold for j in kept):
            kept.append(i)
    return kept


def flops(model: Any, variables: Any, input_shape: tuple[int, ...], optimized: bool = True) -> float:
    """FLOPs of one inference forward pass (`train=False`) on float32 inputs of `input_shape`, from XLA's cost
    analysis: 2 per multiply-add of a matmul, plus 1 per element-wise operation.

    `optimized=True` reads the compiled program (`jit(f).lower(...).compile().cost_analysis()`); XLA:CPU fuses each
    layer's BN + ReLU into every one of the next 3x3 convolution's nine patch slices, so their element-wise work is
    counted up to 9 times (measured +35% over the convolutions alone for width 8, +5% for width 64). `False` reads
    the unoptimised program (`Lowered.cost_analysis()`), where each operation counts once (+5% / +0.6%)."""
    fn = jax.jit(lambda v, x: model.apply(v, x, train=False))
    lowered = fn.lower(variables, jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32))
    cost = lowered.compile().cost_analysis() if optimized else lowered.cost_analysis()
    if isinstance(cost, (list, tuple)):  # older jax: one dict per program
        cost = cost[0]
    return float(cost["flops"])


def conv_flops_by_hand(model: Any, input_shape: tuple[int, ...]) -> float:
    """2 k^2 C_in C_out H_out W_out per convolution of a `CenterNet` (backbone + the three heads), times the batch."""
    from jaxnas.models.detector import layer_strides

    batch, h, w, c_in = input_shape
    total = 0
    for s in layer_strides(model.depth, model.stride):
        h, w = h // s, w // s
        total += 2 * 9 * c_in * model.width * h * w
        c_in = model.width
    hidden = model.head_width or model.width
    for out in (model.num_classes, 2, 2):
        total += 2 * 9 * model.width * hidden * h * w + 2 * hidden * out * h * w
    return float(batch * total)


def output_grid(resolution: int, stride: int) -> int:
    """Cells per side of the output grid; `resolution` must be a multiple of `stride`."""
    check(resolution % stride == 0, "resolution", f"got {resolution}; allowed: a multiple of the stride {stride}")
    return resolution // stride



@dataclasses.dataclass(frozen=True)
class Detection:
    """Object detection as the population engine's objective (`PopulationTrainer(objective=...)`).

    Targets are the batch's ground truth as a dict of `boxes` (B, M, 4) corners in the network's input pixels,
    `labels` (B, M) and `valid` (B, M); `loss` encodes CenterNet's targets for the output grid it is given (the input
    size is read from the heatmap's grid times `stride`, so one objective serves every searched resolution) and
    returns CenterNet's total loss. `metric` is the negative loss, the in-program score the engine's generic paths
    (restarts, incremental training) read; mAP needs the whole split's detections and is computed on the host
    (`jaxnas.evaluation.detection_training`).
    """

    num_classes: int
    stride: int = 4

    def __post_init__(self) -> None:
        check_positive("num_classes", self.num_classes, integer=True)
        check_positive("stride", self.stride, integer=True)

    def loss(self, outputs: dict[str, jax.Array], targets: dict[str, jax.Array]) -> jax.Array:
        size = outputs["heatmap_logits"].shape[1] * self.stride
        encoded = encode_targets(targets["boxes"], targets["labels"], targets["valid"], size, self.stride,
                                 self.num_classes)
        return detection_loss(outputs, encoded)

    def metric(self, outputs: dict[str, jax.Array], targets: dict[str, jax.Array]) -> jax.Array:
        return -self.loss(outputs, targets)
