"""The detector search's parts: its space and mutation, the configuration trainer (engine + host mAP), the memoised
evaluator and its resume, the search loop, and the gradient method's resampling, exits mixture and penalty."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.common.errors import ConfigError
from jaxnas.data.detection import load_detection
from jaxnas.evaluation.detection_training import (DETECTION_TRAINING, DetectionTrainer, DetectorSettings,
                                                  configuration_flops, resize_split)
from jaxnas.models.detector import CenterNet
from jaxnas.problems.detection_map import coco_map
from jaxnas.search.detector_gradient import (ExitMixtureDetector, GradientSettings, gradient_search, resample,
                                             resample_matrix)
from jaxnas.search.detector_search import ConfigurationEvaluator, SearchSettings, run_search
from jaxnas.search.pareto import mnas_reward
from jaxnas.spaces.detector import SPACE, DetectorChoices

pytestmark = pytest.mark.usefixtures("fast_compile")

TINY_TRAINING = dataclasses.replace(DETECTION_TRAINING, steps=3, batch_size=8)
TINY_DETECTOR = DetectorSettings(width=4, top_k=10)
TINY_CHOICES = DetectorChoices(resolutions=(16, 20, 24), depths=(2, 3, 4))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return load_detection(data_dir=str(tmp_path_factory.mktemp("tfds")), splits=(24, 12, 12), image_size=24,
                          digit_sizes=(8, 12), max_objects=2)


# --- space ------------------------------------------------------------------------------------------------------
def test_default_space_and_its_default_configuration():
    choices = DetectorChoices()
    assert choices.resolutions == tuple(range(32, 97, 4)) and choices.depths == tuple(range(2, 9))
    assert choices.values(choices.default) == (64, 5)
    assert SPACE.choices == (17, 7) and SPACE.size == 119
    assert choices.to_string(choices.arch_of(72, 3)) == "72px-d3"


def test_mutation_changes_one_gene_by_the_rules():
    choices = DetectorChoices()
    archs = jnp.stack(jnp.meshgrid(jnp.arange(17), jnp.arange(7), indexing="ij"), -1).reshape(-1, 2)  # all 119
    keys = jax.random.split(jax.random.key(0), 200)
    children = np.asarray(jax.vmap(lambda k: SPACE.mutate(k, archs))(keys))  # (200, 119, 2)
    parents = np.broadcast_to(np.asarray(archs), children.shape)
    changed = children != parents
    assert np.all(changed.sum(-1) == 1)  # exactly one gene changes, always
    depth_moves = (children - parents)[..., 1][changed[..., 1]]
    assert set(np.abs(depth_moves)) == {1}  # depth moves by one
    at_min = parents[..., 1] == 0
    assert np.all(children[..., 1][at_min & changed[..., 1]] == 1)  # reflected at the ends
    res_moves = (children - parents)[..., 0][changed[..., 0]]
    assert res_moves.min() < -1 and res_moves.max() > 1  # continuous steps larger than one stride happen
    assert children[..., 0].min() >= 0 and children[..., 0].max() <= 16
    both = changed.reshape(-1, 2).mean(0)
    assert 0.45 < both[0] < 0.55  # the gene is chosen uniformly (23,800 draws)
    assert choices.resolutions[1] - choices.resolutions[0] == 4  # steps are multiples of the stride


@pytest.mark.parametrize("kwargs, field", [({"resolutions": (32, 34)}, "resolutions"),
                                           ({"resolutions": (32, 40, 44)}, "resolutions"),
                                           ({"depths": (1, 2)}, "depths"), ({"depths": (2, 4)}, "depths"),
                                           ({"resolution_sigma": 0}, "resolution_sigma")])
def test_bad_choices_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        DetectorChoices(**kwargs)


# --- training one configuration -----------------------------------------------------------------------------------
def test_resize_split_scales_boxes_with_the_images(tiny_data):
    out = resize_split(tiny_data.valid, 48)
    assert out.x.shape == (12, 48, 48, 1)
    np.testing.assert_allclose(out.y["boxes"], tiny_data.valid.boxes * 2.0)
    ref = jax.image.resize(tiny_data.valid.images, (12, 48, 48, 1), "linear", antialias=True)
    np.testing.assert_allclose(out.x, ref, atol=1e-6)


def test_trainer_scores_equal_the_host_path_and_are_reproducible(tiny_data):
    trainer = DetectionTrainer(tiny_data, 20, 2, TINY_TRAINING, TINY_DETECTOR, chunk_size=2)
    scores = trainer.score(candidates=2, seed=3)
    assert scores.train_loss.shape == (2, 3) and not scores.diverged.any()
    assert np.all((scores.valid_map >= 0) & (scores.valid_map <= 1))  # fractions
    assert scores.valid_map[0] != scores.valid_map[1] or scores.train_loss[0, 0] != scores.train_loss[1, 0]
    # candidate 1's returned variables, decoded outside the program on the native images: the same mAP
    dets = trainer.detections(scores.candidate(1), tiny_data.test.images)
    m = coco_map(tiny_data.test.ground_truth(), dets, num_classes=tiny_data.num_classes)
    assert max(m["map"], 0.0) == pytest.approx(scores.test_map[1], abs=1e-6)


def test_trainer_refuses_bad_configurations(tiny_data):
    with pytest.raises(ConfigError, match="resolution"):
        DetectionTrainer(tiny_data, 22, 2, TINY_TRAINING, TINY_DETECTOR)
    with pytest.raises(ConfigError, match="top_k"):
        DetectionTrainer(tiny_data, 16, 2, TINY_TRAINING, DetectorSettings(width=4, top_k=1000))
    with pytest.raises(ConfigError, match="depth"):
        DetectionTrainer(tiny_data, 16, 1, TINY_TRAINING, TINY_DETECTOR)


def test_flops_grow_quadratically_with_resolution():
    f16, f32 = (configuration_flops(10, r, 3, TINY_DETECTOR) for r in (16, 32))
    assert f32 / f16 == pytest.approx(4.0, rel=0.02)


# --- evaluator and search loop ---------------------------------------------------------------------------------------
def test_evaluator_memoises_and_resumes_from_its_file(tiny_data, tmp_path):
    path = str(tmp_path / "evaluations.jsonl")
    first = ConfigurationEvaluator(tiny_data, TINY_TRAINING, TINY_DETECTOR, cache_path=path, log=None)
    rec = first.evaluate(16, 2, seed=0)
    assert first.evaluate(16, 2, seed=0) is rec and first.trained == 1
    again = ConfigurationEvaluator(tiny_data, TINY_TRAINING, TINY_DETECTOR, cache_path=path, log=None)
    assert again.evaluate(16, 2, seed=0) == rec and again.trained == 0
    other = ConfigurationEvaluator(tiny_data, dataclasses.replace(TINY_TRAINING, steps=4), TINY_DETECTOR,
                                   cache_path=path, log=None)
    assert not other.records  # other settings: nothing read back
    assert len(open(path).read().splitlines()) == 1 and json.loads(open(path).readline())["resolution"] == 16
    saved = again.load_variables(rec)  # the trained variables, saved beside the memo
    shapes = jax.eval_shape(lambda: CenterNet(10, 2, width=4).init(jax.random.key(0), jnp.zeros((1, 16, 16, 1))))
    assert jax.tree.map(lambda a: a.shape, saved) == jax.tree.map(lambda a: a.shape, shapes)


class _TableEvaluator:
    """A stand-in evaluator: mAP and FLOPs from a formula, so the search loop is tested without training."""

    def __init__(self, data):
        self.dataset, self.detector, self.calls = data, TINY_DETECTOR, []

    def evaluate(self, resolution, depth, seed):
        self.calls.append((resolution, depth))
        flops = configuration_flops(self.dataset.num_classes, resolution, depth, self.detector)
        return {"resolution": resolution, "depth": depth, "seed": seed, "flops": flops,
                "valid_map": (10.0 + resolution / 4 - (depth - 3) ** 2) / 100, "test_map": 0.0}


@pytest.mark.parametrize("method", ["random", "evolution", "reinforce"])
def test_search_loop_is_deterministic_and_records_rewards(tiny_data, method):
    settings = SearchSettings(method=method, evaluations=6, population_size=3, seed=1)
    a, b = _TableEvaluator(tiny_data), _TableEvaluator(tiny_data)
    h1, h2 = run_search(settings, a, TINY_CHOICES), run_search(settings, b, TINY_CHOICES)
    assert a.calls == b.calls and [(r["resolution"], r["depth"]) for r in h1] == [(r["resolution"], r["depth"]) for r in h2]
    assert [r["reward"] for r in h1] == [r["reward"] for r in h2]
    # the budget counts distinct configurations: asks go on past repeats (flagged) until 6 were evaluated
    configs = [(r["resolution"], r["depth"]) for r in h1]
    assert len(set(configs)) == 6 and configs[-1] not in configs[:-1]
    assert [r["repeat"] for r in h1] == [c in configs[:i] for i, c in enumerate(configs)]
    target = configuration_flops(tiny_data.num_classes, 20, 3, TINY_DETECTOR)  # the default: middle of both ranges
    for r in h1:  # MnasNet's hard constraint by default: mAP at or below the target, mAP x target / FLOPs above
        assert r["reward"] == pytest.approx(mnas_reward(r["valid_map"], r["flops"], target, 0.0, -1.0))
        assert r["resolution"] in TINY_CHOICES.resolutions and r["depth"] in TINY_CHOICES.depths


def test_each_method_draws_from_its_own_stream_and_a_converged_search_stops(tiny_data):
    """REINFORCE's first asks (a uniform policy) are not random search's; a search whose space holds fewer
    configurations than its budget stops after 10 x its budget of asks."""
    first = {m: [(r["resolution"], r["depth"]) for r in run_search(SearchSettings(method=m, evaluations=4, seed=1),
                                                                     _TableEvaluator(tiny_data), TINY_CHOICES)]
             for m in ("random", "reinforce")}
    assert first["random"][:4] != first["reinforce"][:4]
    size = len(TINY_CHOICES.resolutions) * len(TINY_CHOICES.depths)
    history = run_search(SearchSettings(method="random", evaluations=size + 1, seed=0), _TableEvaluator(tiny_data),
                         TINY_CHOICES)
    assert len(history) == 10 * (size + 1) and len({(r["resolution"], r["depth"]) for r in history}) == size


def test_search_settings_refuse_bad_values():
    with pytest.raises(ConfigError, match="method"):
        SearchSettings(method="darts")
    with pytest.raises(ConfigError, match="beta"):
        SearchSettings(beta=0.5)
    with pytest.raises(ConfigError, match="population_size"):
        SearchSettings(method="evolution", evaluations=4, population_size=10)


# --- gradient method --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("r", [12, 16, 24, 30, 40])
def test_resampling_equals_jax_resize_in_its_corner(r):
    x = jax.random.uniform(jax.random.key(0), (2, 24, 24, 1))
    canvas = resample(x, 40, jnp.float32(r))
    np.testing.assert_allclose(canvas[:, :r, :r], jax.image.resize(x, (2, r, r, 1), "linear", antialias=True),
                               atol=2e-6)
    assert float(jnp.abs(canvas[:, r:]).max(initial=0.0)) == 0.0
    assert float(jnp.abs(canvas[:, :, r:]).max(initial=0.0)) == 0.0


def test_resampling_is_differentiable_in_the_resolution():
    x = jax.random.uniform(jax.random.key(1), (1, 24, 24, 1))
    f = lambda r: jnp.sum(resample(x, 40, r) * jnp.linspace(0, 1, 40)[:, None, None])  # noqa: E731
    g = jax.grad(f)(30.3)
    fd = (f(30.31) - f(30.29)) / 0.02
    assert np.isfinite(g) and g == pytest.approx(float(fd), rel=2e-2)
    assert np.all(np.asarray(resample_matrix(40, 24, 30.3 / 24)).sum(1)[:30] == pytest.approx(1.0))


def test_exit_mixture_with_a_one_hot_mixture_is_that_depth(tiny_data):
    depths = (2, 3, 4)
    mix = ExitMixtureDetector(10, depths, width=4)
    x = jax.random.uniform(jax.random.key(2), (2, 16, 16, 1))
    variables = mix.init(jax.random.key(3), x, jnp.ones(3) / 3)
    for i, d in enumerate(depths):
        net = CenterNet(10, d, width=4)
        own = net.init(jax.random.key(0), x)
        sub = {k: {n: v for n, v in variables[k].items() if n in own[k]} for k in own}
        ours = mix.apply(variables, x, jax.nn.one_hot(i, 3))
        ref = net.apply(sub, x)
        for name in ref:
            np.testing.assert_allclose(ours[name], ref[name], atol=1e-5)


def test_gradient_search_penalty_moves_to_cheaper_configurations(tiny_data):
    settings = GradientSettings(penalty=50.0, resolution_lr=0.05, arch_lr=0.05, training=TINY_TRAINING,
                                record_every=1)
    out = gradient_search(tiny_data, settings, TINY_CHOICES, TINY_DETECTOR, seed=0)
    traj = out["trajectory"]
    assert traj["resolution"].shape == (3,) and traj["depth_probs"].shape == (3, 3)
    assert traj["resolution"][-1] < traj["resolution"][0] < 20.0  # started at the default 20 px, shrinks
    assert np.all(np.diff(traj["depth_probs"][:, 0]) > 0)  # the shallowest exit gains weight
    assert np.all(np.diff(traj["expected_flops"]) < 0)
    assert out["resolution"] in TINY_CHOICES.resolutions and out["depth"] in TINY_CHOICES.depths
    with pytest.raises(ConfigError, match="start_resolution"):
        gradient_search(tiny_data, dataclasses.replace(settings, start_resolution=100), TINY_CHOICES, TINY_DETECTOR)


def test_gradient_search_at_one_depth_moves_the_resolution_only(tiny_data):
    """The outer loop's inner problem: one exit, its depth kept; the penalty still shrinks the input."""
    settings = GradientSettings(penalty=50.0, resolution_lr=0.05, training=TINY_TRAINING, record_every=1)
    out = gradient_search(tiny_data, settings, TINY_CHOICES, TINY_DETECTOR, seed=0, depths=(3,))
    traj = out["trajectory"]
    assert out["depth"] == 3 and out["arch"][1] == 1 and list(traj["depths"]) == [3]
    assert np.all(traj["depth_probs"] == 1.0)
    assert traj["resolution"][-1] < traj["resolution"][0] < 20.0
    for bad in ((5,), (3, 3), ()):
        with pytest.raises(ConfigError, match="depths"):
            gradient_search(tiny_data, settings, TINY_CHOICES, TINY_DETECTOR, depths=bad)
