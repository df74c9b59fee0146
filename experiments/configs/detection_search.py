"""Searching a detector's input resolution and depth (issue 25): REINFORCE, aging evolution, random search and the
gradient method, judged on COCO mAP against FLOPs, on the embedded digits-on-canvases set by default.

Command:
  python -m experiments.detection_search --config experiments/configs/detection_search.py \
      --config.method=all --workdir runs/detection_search
Methods: reinforce | evolution | random | gradient | all. Each search of `seeds` seeds evaluates `evaluations`
distinct configurations (memoised: a configuration is trained once per training seed, shared by the methods of that
seed; a search's repeats cost nothing, and it stops after 10 x `evaluations` asks);
the gradient method runs once per penalty of `gradient.penalties` and depth (`gradient.depth_search=outer`, the
default) or once per penalty with a softmax over depth exits (`mixture`), and trains each rounded result from scratch.
Space: resolutions `space.resolution_min` .. `space.resolution_max` in steps of `space.resolution_step` (multiples of
the stride), depths `space.depth_min` .. `space.depth_max`; the default configuration is the middle of both ranges.
Variants: `:small` (tests), `:demo` (`make demo`).

Expected runtime on the 2-core CPU (default): a configuration trains in about 20 s (32 px) to 90 s (96 px, depth 8),
compile included; a seed of the three discrete methods trains about 35-45 distinct configurations (20-40 minutes);
a gradient run 1 (depth 2) to 2 (depth 8) minutes, about 10 minutes per seed and penalty in the outer loop, plus the
from-scratch trainings of its results.
"""

from ml_collections import config_dict

METHODS = ("reinforce", "evolution", "random", "gradient", "all")
DEPTH_SEARCHES = ("outer", "mixture")

BOUNDS = {
    "seed": (int, 0, 2**31 - 1), "data_seed": (int, 0, 2**31 - 1), "seeds": (int, 1, 64),
    "evaluations": (int, 1, 10_000),
    "image_size": (int, 8, 1024), "max_objects": (int, 1, 100),
    "digit_min": (int, 1, 1024), "digit_max": (int, 1, 1024),
    "splits.train": (int, 1, 10_000_000), "splits.valid": (int, 1, 10_000_000), "splits.test": (int, 1, 10_000_000),
    "space.resolution_min": (int, 4, 4096), "space.resolution_max": (int, 4, 4096),
    "space.resolution_step": (int, 1, 4096), "space.depth_min": (int, 1, 64), "space.depth_max": (int, 1, 64),
    "space.resolution_sigma": (float, 0.0, 4096.0, True),
    "detector.width": (int, 1, 1024), "detector.stride": (int, 1, 64), "detector.top_k": (int, 1, 10_000),
    "detector.score_threshold": (float, 0.0, 0.999),
    "train.steps": (int, 1, 1_000_000), "train.batch_size": (int, 1, 4096),
    "train.learning_rate": (float, 0.0, 10.0, True), "train.weight_decay": (float, 0.0, 1.0),
    "reward.alpha": (float, -10.0, 0.0), "reward.beta": (float, -10.0, 0.0),
    "evolution.population_size": (int, 1, 10_000), "evolution.sample_size": (int, 1, 10_000),
    "gradient.arch_lr": (float, 0.0, 10.0, True), "gradient.resolution_lr": (float, 0.0, 10.0, True),
    "pictures": (int, 0, 64),
}


def get_config(variant: str | None = None) -> config_dict.ConfigDict:
    c = config_dict.ConfigDict()
    c.method = "all"
    c.dataset = "digits_detection"  # digits_detection (embedded) | coco_files | a prepared TFDS name (voc, coco/2017)
    c.data_dir = ""
    c.download = False  # True: TFDS may download and prepare a catalogue dataset missing from data_dir (needs internet)
    c.images_dir = ""  # coco_files: the images folder
    c.annotations_json = ""  # coco_files: the COCO annotations file
    c.image_size = 64  # native size the dataset is loaded at (square)
    c.max_objects = 4
    c.digit_min, c.digit_max = 12, 28  # digits_detection: pasted digits' sizes in px
    c.splits = config_dict.ConfigDict({"train": 2000, "valid": 500, "test": 500})  # digits_detection only
    c.data_seed = 0  # the generated canvases (digits_detection), the random split (coco_files, TFDS without one)
    c.seed = 0  # searches use seeds seed .. seed + seeds - 1; a seed is also its configurations' training seed
    c.seeds = 3
    c.evaluations = 24  # distinct configurations evaluated per search (its repeats cost nothing)
    c.progress = True
    c.pictures = 8  # test canvases drawn with the default's and the best configurations' detections
    c.space = config_dict.ConfigDict({"resolution_min": 32, "resolution_max": 96, "resolution_step": 4,
                                      "depth_min": 2, "depth_max": 8, "resolution_sigma": 8.0})
    c.detector = config_dict.ConfigDict({"width": 16, "stride": 4, "top_k": 100, "score_threshold": 0.01})
    c.train = config_dict.ConfigDict({"steps": 600, "batch_size": 32, "learning_rate": 2e-3, "weight_decay": 1e-4})
    # MnasNet's reward mAP x (FLOPs / default's FLOPs)^w: alpha at or below, beta above; its hard constraint (0, -1),
    # the best mAP within the default's compute (soft: both -0.07; jaxnas.search.detector_search says why not)
    c.reward = config_dict.ConfigDict({"alpha": 0.0, "beta": -1.0})
    c.evolution = config_dict.ConfigDict({"population_size": 10, "sample_size": 3})  # NAS-Bench-201's REA
    # gradient method: penalties (comma-separated), the weight of log(E[FLOPs] / default's FLOPs); depth_search
    # "outer": one run per penalty and depth, the resolution alone moved by gradient descent (its front spans the
    # depths; one penalty, the middle of the 0.03-0.3 first tried, keeps it to 7 runs per seed), "mixture": one run
    # per penalty with a softmax over depth exits; arch_lr (the mixture's) is 10x DARTS's 3e-4 (its search makes
    # ~20,000 architecture steps, this one train.steps = 600); none of these tuned
    c.gradient = config_dict.ConfigDict({"depth_search": "outer", "penalties": "0.1", "arch_lr": 3e-3,
                                         "resolution_lr": 0.01})
    if variant == "small":  # tests: a tiny set, a tiny detector, a few steps
        c.image_size = 24
        c.max_objects = 2
        c.digit_min, c.digit_max = 8, 12
        c.splits.train, c.splits.valid, c.splits.test = 24, 12, 12
        c.seeds = 1
        c.evaluations = 2
        c.pictures = 2
        c.space.resolution_min, c.space.resolution_max, c.space.resolution_step = 16, 20, 4
        c.space.depth_min, c.space.depth_max = 2, 3
        c.detector.width, c.detector.top_k = 4, 10
        c.train.steps, c.train.batch_size = 3, 8
        c.evolution.population_size, c.evolution.sample_size = 2, 2
        c.gradient.penalties = "0.1"
    elif variant == "demo":  # `make demo`: one seed, a short search over a smaller space
        c.splits.train, c.splits.valid, c.splits.test = 1000, 300, 300
        c.seeds = 1
        c.evaluations = 4
        c.pictures = 4
        c.space.resolution_min, c.space.resolution_max, c.space.resolution_step = 32, 48, 8
        c.space.depth_min, c.space.depth_max = 2, 3
        c.detector.width = 8
        c.train.steps = 150
        c.evolution.population_size, c.evolution.sample_size = 2, 2
        c.gradient.penalties = "0.1"
    return c
