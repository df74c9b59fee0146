"""`coco_map` against pycocotools' COCOeval (iouType="bbox") on random and hand-made cases, and its input errors."""

import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from jaxnas.common.errors import ConfigError
from jaxnas.problems.detection_map import coco_map, to_coco

AREAS = {"small": (0, 32 ** 2), "medium": (32 ** 2, 96 ** 2), "large": (96 ** 2, 1e10)}


def cocoeval(gt, dt, num_classes=None, max_dets=None):
    """pycocotools' COCOeval after evaluate / accumulate / summarize on the same data, its prints silenced."""
    gt_dict, results = to_coco(gt, dt, num_classes)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt_dict
        coco_gt.createIndex()
        if results:
            coco_dt = coco_gt.loadRes(results)
        else:  # loadRes fails on an empty list
            coco_dt = COCO()
            coco_dt.dataset = {"images": gt_dict["images"], "categories": gt_dict["categories"], "annotations": []}
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        if max_dets is not None:
            evaluator.params.maxDets = list(max_dets)
        evaluator.evaluate()
        evaluator.accumulate()
        if max_dets is None:
            evaluator.summarize()
    return evaluator


def random_case(seed, n_images=40, n_classes=3):
    """Images with 0-6 gts (a class without gt on odd seeds, some images without gt), up to 10 detections:
    jittered copies of gts (IoU about 0.3-1.0, some duplicates, some with the wrong class) and random false
    positives; box sides 5-200 px so all three COCO area ranges occur. Even seeds round scores to create ties."""
    rng = np.random.default_rng(seed)
    gt_classes = np.arange(n_classes) if seed % 2 == 0 else np.arange(n_classes - 1)
    gt, dt = [], []
    for _ in range(n_images):
        n = 0 if rng.random() < 0.15 else int(rng.integers(0, 7))
        size = rng.uniform(5, 200, (n, 2))
        corner = rng.uniform(0, 400, (n, 2))
        boxes = np.concatenate([corner, corner + size], 1)
        labels = rng.choice(gt_classes, n)
        if n >= 2 and rng.random() < 0.2:  # an exact duplicate gt: equal IoUs, pycocotools' tie rule decides
            boxes[1], labels[1] = boxes[0], labels[0]
        d_boxes, d_labels = [], []
        for box, label in zip(boxes, labels):
            for _ in range(int(rng.choice([0, 1, 1, 1, 2]))):
                w, h = box[2:] - box[:2]
                jitter = rng.normal(0, rng.uniform(0.02, 0.25), 4) * np.array([w, h, w, h])
                shifted = box + jitter
                shifted[2:] = np.maximum(shifted[2:], shifted[:2] + 1)
                d_boxes.append(shifted)
                d_labels.append(label if rng.random() < 0.9 else rng.integers(n_classes))
        for _ in range(int(rng.integers(0, 4))):
            corner = rng.uniform(0, 400, 2)
            d_boxes.append(np.concatenate([corner, corner + rng.uniform(5, 200, 2)]))
            d_labels.append(rng.integers(n_classes))
        d_boxes, d_labels = np.array(d_boxes).reshape(-1, 4)[:10], np.array(d_labels, np.int64)[:10]
        scores = rng.random(len(d_labels))
        if seed % 2 == 0:
            scores = np.round(scores, 1)
        gt.append({"boxes": boxes, "labels": labels})
        dt.append({"boxes": d_boxes, "scores": scores, "labels": d_labels})
    return gt, dt


def test_random_cases_equal_cocoeval():
    for seed in range(6):
        gt, dt = random_case(seed)
        evaluator = cocoeval(gt, dt, num_classes=3)
        ours = coco_map(gt, dt, num_classes=3)
        stats = evaluator.stats
        np.testing.assert_allclose([ours["map"], ours["ap50"], ours["ap75"], ours["ar"]],
                                   [stats[0], stats[1], stats[2], stats[8]], rtol=0, atol=1e-6, err_msg=str(seed))
        assert 0.1 < ours["map"] < 0.9 and ours["ap50"] > ours["ap75"], (seed, ours["map"])
        # the full arrays, per class: area "all" and maxDets 100 are index 0 and -1 in COCOeval's defaults
        np.testing.assert_allclose(ours["precision"], evaluator.eval["precision"][..., 0, -1], rtol=0, atol=1e-12)
        np.testing.assert_allclose(ours["recall"], evaluator.eval["recall"][..., 0, -1], rtol=0, atol=1e-12)
        assert (ours["per_class"][2] == -1) == (seed % 2 == 1)
        for index, (name, area) in enumerate(AREAS.items()):
            by_area = coco_map(gt, dt, num_classes=3, area_rng=area)
            np.testing.assert_allclose([by_area["map"], by_area["ar"]], [stats[3 + index], stats[9 + index]],
                                       rtol=0, atol=1e-6, err_msg=f"{seed} {name}")


def test_max_dets_per_image_and_class_equal_cocoeval():
    gt, dt = random_case(7)
    evaluator = cocoeval(gt, dt, num_classes=3, max_dets=(1, 2, 3))
    for m, max_dets in enumerate((1, 2, 3)):
        ours = coco_map(gt, dt, num_classes=3, max_dets=max_dets)
        theirs = evaluator.eval["precision"][:, :, :, 0, m]
        assert ours["map"] == pytest.approx(float(np.mean(theirs[theirs > -1])), abs=1e-6)
    assert coco_map(gt, dt, max_dets=1)["map"] < coco_map(gt, dt, max_dets=3)["map"]


def test_padded_and_batched_inputs_equal_lists():
    gt, dt = random_case(2, n_images=12)
    expected = coco_map(gt, dt, num_classes=3)
    pad_g = max(len(g["labels"]) for g in gt)
    pad_d = 10
    batched_gt = {"boxes": np.zeros((12, pad_g, 4)), "labels": np.zeros((12, pad_g), np.int32),
                  "valid": np.zeros((12, pad_g), bool)}
    batched_dt = {"boxes": np.tile([0.0, 0.0, -1.0, 5.0], (12, pad_d, 1)), "scores": np.full((12, pad_d), np.nan),
                  "labels": np.full((12, pad_d), -1), "valid": np.zeros((12, pad_d), bool)}
    for i, (g, d) in enumerate(zip(gt, dt)):  # padding rows hold garbage (NaN, negative labels): never checked
        n, m = len(g["labels"]), len(d["labels"])
        batched_gt["boxes"][i, :n], batched_gt["labels"][i, :n], batched_gt["valid"][i, :n] = g["boxes"], g["labels"], 1
        batched_dt["boxes"][i, :m], batched_dt["scores"][i, :m] = d["boxes"], d["scores"]
        batched_dt["labels"][i, :m], batched_dt["valid"][i, :m] = d["labels"], True
    got = coco_map(batched_gt, batched_dt, num_classes=3)
    assert got["map"] == expected["map"] and got["ap50"] == expected["ap50"]
    tuples = coco_map([(g["boxes"], g["labels"]) for g in gt],
                      [(b, s, lab, v) for b, s, lab, v in zip(*(batched_dt[k] for k in ("boxes", "scores",
                                                                                        "labels", "valid")))],
                      num_classes=3)
    assert tuples["map"] == expected["map"]


def test_perfect_and_missed_detections():
    gt, _ = random_case(4, n_images=10)
    perfect = [{"boxes": g["boxes"], "scores": np.linspace(1, 0.5, len(g["labels"])), "labels": g["labels"]}
               for g in gt]
    result = coco_map(gt, perfect)
    assert result["map"] == result["ap50"] == result["ap75"] == result["ar"] == 1.0
    # every detection moved right by half its width: IoU = 0.5 w h / 1.5 w h = 1/3 < 0.5
    shifted = [{**d, "boxes": d["boxes"] + (d["boxes"][:, 2:3] - d["boxes"][:, 0:1]) * np.array([0.5, 0, 0.5, 0])}
               for d in perfect]
    result = coco_map(gt, shifted)
    assert result["map"] == result["ap50"] == result["ar"] == 0.0
    for ours, stats in ((coco_map(gt, perfect), cocoeval(gt, perfect).stats),
                        (coco_map(gt, shifted), cocoeval(gt, shifted).stats)):
        assert [ours["map"], ours["ap50"], ours["ap75"]] == pytest.approx(list(stats[:3]), abs=1e-12)


def test_hand_computed_case():
    # One class, gts A = [0,0,10,10] and B = [20,0,30,10]. Detections by score: d1 (0.9) = [0,0,10,8.8], IoU 0.88
    # with A; d2 (0.8) = [50,50,60,60], no overlap; d3 (0.7) = [20,0,30,6.2], IoU 0.62 with B.
    # t in {.5, .55, .6}: TP, FP, TP -> recall .5, .5, 1; precision 1, 1/2, 2/3, monotone 1, 2/3, 2/3. The 51 recall
    #   thresholds 0..0.50 read 1, the 50 in 0.51..1 read 2/3: AP = (51 + 50 * 2/3) / 101 = 253/303.
    # t in {.65, ..., .85} (5): TP, FP, FP -> recall stays .5: 51 thresholds read 1, 50 are never reached (0):
    #   AP = 51/101.
    # t in {.9, .95}: no TP, AP = 0.
    # mAP = (3 * 253/303 + 5 * 51/101) / 10 = (253 + 255) / 1010 = 508/1010; AP50 = 253/303; AP75 = 51/101.
    gt = [{"boxes": [[0, 0, 10, 10], [20, 0, 30, 10]], "labels": [0, 0]}]
    dt = [{"boxes": [[0, 0, 10, 8.8], [50, 50, 60, 60], [20, 0, 30, 6.2]], "scores": [0.9, 0.8, 0.7],
           "labels": [0, 0, 0]}]
    ours = coco_map(gt, dt)
    assert ours["map"] == pytest.approx(508 / 1010, abs=1e-12)
    assert ours["ap50"] == pytest.approx(253 / 303, abs=1e-12)
    assert ours["ap75"] == pytest.approx(51 / 101, abs=1e-12)
    stats = cocoeval(gt, dt).stats
    assert list(stats[:3]) == pytest.approx([508 / 1010, 253 / 303, 51 / 101], abs=1e-12)
    # the detections given in another order: the same result
    assert coco_map(gt, [{k: np.asarray(v)[::-1] for k, v in dt[0].items()}])["map"] == ours["map"]


def test_tie_goes_to_the_later_gt_as_in_cocoeval():
    # d1 = [0,0,10,10] has IoU 100/140 = 0.714 with both A = [0,0,10,14] and B = [0,-4,10,10]; pycocotools gives it
    # the later gt, B, so d2 = [0,-4,10,9] (IoU 130/140 = 0.929 with B, 90/180 = 0.5 with A) is left with A.
    # t = .5: d1 -> B, d2 -> A, AP 1. t = .55 ... .7 (4): d1 TP, d2 FP, AP 51/101. t = .75 ... .9 (4): d1 misses,
    # d2 -> B: FP, TP, precision .5 up to recall .5, AP 25.5/101. t = .95: 0. mAP = (1 + 4 * 76.5/101) / 10
    # = 407/1010. Had d1 taken A, d2 would match B up to t = .9: mAP = (5 + 4 * 25.5/101) / 10 = 0.601.
    gt = [{"boxes": [[0, 0, 10, 14], [0, -4, 10, 10]], "labels": [1, 1]}]
    dt = [{"boxes": [[0, 0, 10, 10], [0, -4, 10, 9]], "scores": [0.9, 0.8], "labels": [1, 1]}]
    ours = coco_map(gt, dt)
    stats = cocoeval(gt, dt).stats
    assert ours["map"] == pytest.approx(407 / 1010, abs=1e-12)
    assert [ours["map"], ours["ap50"], ours["ap75"]] == pytest.approx(list(stats[:3]), abs=1e-12)


def test_class_without_detections_counts_zero_and_class_without_gt_is_left_out():
    gt = [{"boxes": [[0, 0, 10, 10], [0, 0, 20, 20]], "labels": [0, 1]}]
    dt = [{"boxes": [[0, 0, 10, 10], [5, 5, 9, 9]], "scores": [0.5, 0.9], "labels": [0, 2]}]
    ours = coco_map(gt, dt)
    # precision of a lone TP is 1 / (1 + eps), as in pycocotools
    assert ours["per_class"].tolist() == pytest.approx([1.0, 0.0, -1.0], abs=1e-12)
    assert ours["map"] == pytest.approx(0.5, abs=1e-12)
    assert ours["map"] == pytest.approx(cocoeval(gt, dt).stats[0], abs=1e-12)
    empty = coco_map([{"boxes": np.zeros((0, 4)), "labels": []}], [{"boxes": [], "scores": [], "labels": []}])
    assert empty["map"] == empty["ap50"] == -1.0 and empty["num_classes"] == 0
    no_dets = [{"boxes": np.zeros((0, 4)), "scores": [], "labels": []}]
    assert coco_map(gt, no_dets)["map"] == 0.0 == cocoeval(gt, no_dets).stats[0]


def test_speed_500_images_of_20_detections():
    rng = np.random.default_rng(0)
    corner = rng.uniform(0, 300, (500, 20, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(10, 100, (500, 20, 2))], -1)
    labels = rng.integers(0, 5, (500, 20))
    gt = {"boxes": boxes[:, :8], "labels": labels[:, :8]}
    dt = {"boxes": boxes + rng.normal(0, 5, boxes.shape).clip(-4, 4), "scores": rng.random((500, 20)),
          "labels": labels}
    import time
    start = time.perf_counter()
    result = coco_map(gt, dt)
    assert time.perf_counter() - start < 5.0  # ~0.1 s alone; generous for a busy machine
    assert 0 < result["map"] < 1


def good_case():
    gt = [{"boxes": [[0, 0, 10, 10]], "labels": [0]}, {"boxes": np.zeros((0, 4)), "labels": []}]
    dt = [{"boxes": [[0, 0, 10, 10]], "scores": [0.5], "labels": [0]}, {"boxes": [], "scores": [], "labels": []}]
    return gt, dt


@pytest.mark.parametrize("change, field", [
    (lambda gt, dt: (gt, dt[:1]), "dt"),
    (lambda gt, dt: (gt, [{**dt[0], "labels": [0, 0]}, dt[1]]), "dt[0].labels"),
    (lambda gt, dt: (gt, [{**dt[0], "scores": [0.5, 0.1]}, dt[1]]), "dt[0].scores"),
    (lambda gt, dt: ([{**gt[0], "boxes": [[5, 0, 4, 10]]}, gt[1]], dt), "gt[0].boxes"),
    (lambda gt, dt: (gt, [{**dt[0], "boxes": [[0, 5, 10, 4]]}, dt[1]]), "dt[0].boxes"),
    (lambda gt, dt: (gt, [{**dt[0], "boxes": [[0, 0, 10]]}, dt[1]]), "dt[0].boxes"),
    (lambda gt, dt: (gt, [{**dt[0], "scores": [np.nan]}, dt[1]]), "dt[0].scores"),
    (lambda gt, dt: (gt, [{**dt[0], "scores": [np.inf]}, dt[1]]), "dt[0].scores"),
    (lambda gt, dt: ([{**gt[0], "labels": [-1]}, gt[1]], dt), "gt[0].labels"),
    (lambda gt, dt: (gt, [{**dt[0], "labels": [-2]}, dt[1]]), "dt[0].labels"),
    (lambda gt, dt: (gt, [{**dt[0], "labels": [0.5]}, dt[1]]), "dt[0].labels"),
    (lambda gt, dt: ([{**gt[0], "iscrowd": [1]}, gt[1]], dt), "gt[0].iscrowd"),
    (lambda gt, dt: (gt, [{**dt[0], "score": [0.5]}, dt[1]]), "dt[0]"),
    (lambda gt, dt: (gt, [{**dt[0], "valid": [True, False]}, dt[1]]), "dt[0].valid"),
    (lambda gt, dt: ("boxes", dt), "gt"),
])
def test_bad_inputs_name_the_field(change, field):
    gt, dt = change(*good_case())
    with pytest.raises(ConfigError) as error:
        coco_map(gt, dt)
    assert error.value.field == field
    with pytest.raises(ConfigError):
        to_coco(gt, dt)


@pytest.mark.parametrize("kwargs, field", [
    ({"num_classes": 0}, "num_classes"), ({"num_classes": 1.5}, "num_classes"),
    ({"max_dets": 0}, "max_dets"), ({"iou_thresholds": [0.5, 1.5]}, "iou_thresholds"),
    ({"iou_thresholds": []}, "iou_thresholds"), ({"area_rng": (10, 1)}, "area_rng"),
])
def test_bad_settings_name_the_field(kwargs, field):
    gt, dt = good_case()
    with pytest.raises(ConfigError) as error:
        coco_map(gt, dt, **kwargs)
    assert error.value.field == field
    gt[0]["labels"] = [3]
    with pytest.raises(ConfigError, match="num_classes = 2"):
        coco_map(gt, dt, num_classes=2)
