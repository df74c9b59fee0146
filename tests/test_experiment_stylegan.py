"""The StyleGAN entry point end to end on the tiny config: results.json fields and the report's images."""

import json
import math
import os

import pytest

from experiments import stylegan
from experiments.configs import stylegan as stylegan_config
from jaxnas.common.errors import ConfigError


@pytest.mark.slow
def test_small_run_writes_results_and_images(tmp_path):
    summary = stylegan.run(stylegan_config.get_config("small"), str(tmp_path))
    results = json.load(open(tmp_path / "results.json"))
    for key in ("fid", "kid", "steps", "images_per_s", "classifier_test_accuracy", "fid_init"):
        assert key in results and math.isfinite(results[key]), key
    assert results["steps"] == 4 and [c["step"] for c in results["curve"]] == [0, 2, 4]
    assert summary["fid"] == results["fid"] > 0
    for png in ("stylegan_fid.png", "stylegan_samples.png", "stylegan_mixing.png", "stylegan_truncation.png"):
        assert os.path.getsize(tmp_path / png) > 500


def test_bad_model_setting_names_the_field(tmp_path):
    config = stylegan_config.get_config("small")
    config.model.resolution = 12
    with pytest.raises(ConfigError, match="resolution"):
        stylegan.run(config, str(tmp_path))
