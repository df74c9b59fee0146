"""Training and scoring one detector configuration (input resolution, backbone depth) with the population engine.

A configuration is a `CenterNet` of `depth` layers fed `resolution` x `resolution` inputs. `DetectionTrainer` is the
population engine (`PopulationTrainer`: one compiled program per input shape, candidates split over devices, run
one after another on a CPU) with the detection objective injected (`jaxnas.problems.detection.Detection`: targets are
a dict of boxes, labels and valid masks, encoded for the output grid inside the loss). Its candidates are
independent trainings of the same configuration (initialisations `fold_in(seed key, id)`); after training, each
candidate decodes its top-k detections on the validation and test splits inside the compiled program, and the host
scores them with COCO mAP (`jaxnas.problems.detection_map.coco_map`, equal to pycocotools), in the dataset's native
pixels, so configurations at different resolutions are scored on the same ground truth. The trained variables come
back too (`DetectionScores.candidate(i)`), for `detect` on new images.

Images are resized once per resolution (`resize_split`: bilinear with antialiasing, `jax.image.resize`), boxes
scaled to match; the network never sees the native size. A candidate whose training loss became non-finite is
reported as diverged with NaN scores (the engine freezes it at the first non-finite loss, never training on it).

Compute: `configuration_flops` reads XLA's cost analysis of the inference forward at batch 1 (unoptimised program,
each operation counted once); `latency_ms` times the compiled inference forward (median of repeats, per image, on
the device that runs it).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.common.errors import check, check_positive
from jaxnas.evaluation.population import PopulationTrainer, TrainSettings
from jaxnas.models.detector import CenterNet, check_detector
from jaxnas.problems.detection import Detection, decode, flops
from jaxnas.problems.detection_map import coco_map

# Detector training defaults (Adam as CenterNet, at a rate for training a small network from scratch in a few
# hundred steps; coupled weight decay 1e-4; cosine schedule).
DETECTION_TRAINING = TrainSettings(steps=600, batch_size=32, learning_rate=2e-3, optimizer="adam", weight_decay=1e-4)


@dataclasses.dataclass(frozen=True)
class DetectorSettings:
    """The detector's fixed part (what the search does not change) and its decoding.

    `top_k`: detections kept per image for mAP (COCO's maxDets = 100; at most cells x classes);
    `score_threshold`: decoded peaks below it are dropped; `eval_batch`: images per forward pass when decoding.
    """

    width: int = 16
    stride: int = 4
    head_width: int | None = None
    top_k: int = 100
    score_threshold: float = 0.01
    eval_batch: int = 100

    def __post_init__(self) -> None:
        check_detector(num_classes=1, depth=int(np.log2(max(self.stride, 1))) or 1, width=self.width,
                       stride=self.stride, head_width=self.head_width)
        check_positive("top_k", self.top_k, integer=True)
        check(0 <= self.score_threshold < 1, "score_threshold", f"got {self.score_threshold}; allowed: in [0, 1)")
        check_positive("eval_batch", self.eval_batch, integer=True)


class ArchFreeDetector(nn.Module):
    """A `CenterNet` with the engine's calling convention `apply(variables, x, arch, train=...)`; `arch` is unused
    (a configuration is one network: its resolution is the input's shape, its depth the module's)."""

    detector: CenterNet

    def __call__(self, x: jax.Array, arch: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        return self.detector(x, train)


@dataclasses.dataclass(frozen=True)
class ResizedSplit:
    """One split at the network's resolution: `x` images (N, r, r, C); `y` the targets dict in resized pixels."""

    x: np.ndarray
    y: dict[str, np.ndarray]


def resize_images(images: np.ndarray, resolution: int) -> np.ndarray:
    """Images (N, H, W, C) at `resolution` x `resolution`, float32 (bilinear, antialiased; unchanged if already so)."""
    n, h, w, c = images.shape
    x = jnp.asarray(images, jnp.float32)
    if (h, w) != (resolution, resolution):
        x = jax.image.resize(x, (n, resolution, resolution, c), "linear", antialias=True)
    return np.asarray(x)


def resize_split(split: Any, resolution: int) -> ResizedSplit:
    """A `DetectionSplit` resized to `resolution` x `resolution` (bilinear, antialiased); boxes scaled per axis."""
    check(isinstance(resolution, (int, np.integer)) and resolution > 0, "resolution",
          f"got {resolution!r}; allowed: a positive integer")
    h, w = split.images.shape[1:3]
    x = resize_images(split.images, resolution)
    scale = np.array([resolution / w, resolution / h, resolution / w, resolution / h], np.float32)
    y = {"boxes": (split.boxes * scale).astype(np.float32), "labels": split.labels.astype(np.int32),
         "valid": split.valid.astype(bool)}
    return ResizedSplit(x.astype(np.float32), y)


@dataclasses.dataclass(frozen=True)
class _Arrays:
    """The engine's data layout (train/valid/test x and y) built from three resized splits."""

    train_x: np.ndarray
    train_y: dict
    valid_x: np.ndarray
    valid_y: dict
    test_x: np.ndarray
    test_y: dict


@dataclasses.dataclass(frozen=True)
class DetectionScores:
    """Per-candidate results (leading axis: the candidates), mAP / AP50 as fractions (COCO's definition)."""

    valid_map: np.ndarray
    valid_ap50: np.ndarray
    test_map: np.ndarray
    test_ap50: np.ndarray
    train_loss: np.ndarray  # (P, steps)
    diverged: np.ndarray  # (P,) bool
    variables: Any  # the trained `CenterNet` variables (`params`, `batch_stats`), each leaf with a leading P axis

    def candidate(self, i: int) -> dict:
        """Candidate i's trained variables, as `CenterNet.apply` takes them."""
        return jax.tree.map(lambda a: a[i], self.variables)


class DetectionTrainer(PopulationTrainer):
    """Trains `candidates` independent copies of one (resolution, depth) detector and scores them with COCO mAP.

    Args:
      dataset: a `jaxnas.data.detection.DetectionDataset`.
      resolution: the square input size (a multiple of the detector's stride).
      depth: backbone convolution layers (at least log2(stride)).
      settings: how each candidate is trained (default `DETECTION_TRAINING`).
      detector: the fixed part of the detector and its decoding.
      chunk_size, devices, execution: as `PopulationTrainer`.
    """

    def __init__(self, dataset: Any, resolution: int, depth: int, settings: TrainSettings = DETECTION_TRAINING,
                 detector: DetectorSettings = DetectorSettings(), chunk_size: int = 1,
                 devices: list[jax.Device] | None = None, execution: str = "auto"):
        check(isinstance(resolution, (int, np.integer)) and resolution > 0 and resolution % detector.stride == 0,
              "resolution", f"got {resolution!r}; allowed: a positive multiple of the stride {detector.stride}")
        self.dataset, self.resolution, self.depth, self.detector = dataset, int(resolution), int(depth), detector
        grid = self.resolution // detector.stride
        check(detector.top_k <= grid * grid * dataset.num_classes, "top_k",
              f"got {detector.top_k}; allowed: at most {grid * grid * dataset.num_classes} (cells x classes at "
              f"resolution {resolution})")
        self.network = CenterNet(dataset.num_classes, self.depth, detector.width, detector.stride, detector.head_width)
        splits = [resize_split(s, self.resolution) for s in (dataset.train, dataset.valid, dataset.test)]
        arrays = _Arrays(*(v for s in splits for v in (s.x, s.y)))
        super().__init__(ArchFreeDetector(self.network), arrays, settings, chunk_size=chunk_size, devices=devices,
                         objective=Detection(dataset.num_classes, detector.stride), execution=execution)

    def _detect(self, cand: Any, arch: jax.Array, x: jax.Array) -> dict[str, jax.Array]:
        """Decoded top-k detections of every image of x, `eval_batch` images per forward pass."""
        variables = {"params": cand.params, "batch_stats": cand.batch_stats}

        def one(image):
            out = self.model.apply(variables, image[None], arch, train=False)
            dets = decode(out, self.detector.top_k, self.detector.stride, self.detector.score_threshold)
            return jax.tree.map(lambda a: a[0], dets)

        return jax.lax.map(one, x, batch_size=self.detector.eval_batch)

    def _train_and_score(self, keys: jax.Array, archs: jax.Array, data: Any, data_key: jax.Array):
        self.traces += 1

        def one(key, arch):
            cand, losses, _ = self._train_from_scratch(key, arch, data, data_key)
            variables = {"params": cand.params["detector"], "batch_stats": cand.batch_stats["detector"]}
            return (self._detect(cand, arch, data.valid_x), self._detect(cand, arch, data.test_x), losses,
                    ~jnp.all(jnp.isfinite(losses)), variables)

        return self.over_population(one, keys, archs)

    def score(self, candidates: int = 1, seed: int = 0, first_id: int = 0) -> DetectionScores:  # type: ignore[override]
        """Trains `candidates` copies (ids first_id, first_id + 1, ...) and scores each on valid and test."""
        check_positive("candidates", candidates, integer=True)
        ids = first_id + np.arange(candidates)
        archs = np.zeros((candidates, 1), np.int32)
        valid, test, losses, diverged, variables = self.run_chunked(
            self._score_chunk, (self.candidate_keys(seed, ids), archs), (self.data, self.data_key(seed)))
        v = [self._map(valid, i, self.dataset.valid, diverged[i]) for i in range(candidates)]
        t = [self._map(test, i, self.dataset.test, diverged[i]) for i in range(candidates)]
        return DetectionScores(np.array([a for a, _ in v]), np.array([b for _, b in v]), np.array([a for a, _ in t]),
                               np.array([b for _, b in t]), np.asarray(losses), np.asarray(diverged), variables)

    def _map(self, dets: dict, i: int, split: Any, diverged: bool) -> tuple[float, float]:
        """(mAP, AP50) as fractions of candidate i's detections on `split`, boxes mapped back to native pixels."""
        if diverged:
            return float("nan"), float("nan")
        h, w = split.images.shape[1:3]
        scale = np.array([w, h, w, h], np.float32) / self.resolution
        ours = {"boxes": dets["boxes"][i] * scale, "scores": dets["scores"][i], "labels": dets["labels"][i],
                "valid": dets["valid"][i]}
        m = coco_map(split.ground_truth(), ours, num_classes=self.dataset.num_classes)
        return max(m["map"], 0.0), max(m["ap50"], 0.0)

    def detections(self, variables: dict, images: np.ndarray) -> dict[str, np.ndarray]:
        """Detections of trained `CenterNet` `variables` (e.g. `DetectionScores.candidate(i)`) on native-size `images`,
        boxes in native pixels."""
        return detect(self.network, variables, images, self.resolution, self.detector)


def detect(network: CenterNet, variables: dict, images: np.ndarray, resolution: int,
           detector: DetectorSettings = DetectorSettings()) -> dict[str, np.ndarray]:
    """Top-k detections of a trained `network` on native-size `images` (resized to `resolution` here, as in training),
    boxes mapped back to the images' pixels."""
    h, w = images.shape[1:3]
    out = network.apply(variables, resize_images(images, resolution), train=False)
    dets = jax.tree.map(np.asarray, decode(out, detector.top_k, detector.stride, detector.score_threshold))
    dets["boxes"] = dets["boxes"] * (np.array([w, h, w, h], np.float32) / resolution)
    return dets


def configuration_flops(num_classes: int, resolution: int, depth: int, detector: DetectorSettings = DetectorSettings(),
                        channels: int = 1) -> float:
    """Inference FLOPs of one image at (resolution, depth), from XLA's cost analysis of the unoptimised program."""
    model = CenterNet(num_classes, depth, detector.width, detector.stride, detector.head_width)
    shape = (1, resolution, resolution, channels)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False))
    variables = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), variables)
    return flops(model, variables, shape, optimized=False)


def latency_ms(num_classes: int, resolution: int, depth: int, detector: DetectorSettings = DetectorSettings(),
               channels: int = 1, batch: int = 64, repeats: int = 5) -> float:
    """Median wall time per image (ms) of the compiled inference forward on a batch of `batch` images."""
    check_positive("repeats", repeats, integer=True)
    model = CenterNet(num_classes, depth, detector.width, detector.stride, detector.head_width)
    x = jnp.zeros((batch, resolution, resolution, channels), jnp.float32)
    variables = model.init(jax.random.key(0), x[:1], train=False)
    fn = jax.jit(lambda v, x: model.apply(v, x, train=False))
    jax.block_until_ready(fn(variables, x))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(variables, x))
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times)) / batch
