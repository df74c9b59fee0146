"""Speed-ups: weight sharing trains one supernet on sampled paths and scores candidates with it."""

import json

import jax
import numpy as np
import pytest

from experiments import speedups
from experiments.configs import speedups as speedups_config
from jaxnas.common.errors import ConfigError


def test_rank_agreement_against_hand_computed_values():
    ref = np.array([1.0, 2.0, 3.0, 4.0])
    assert speedups.rank_agreement(ref, ref)["kendall_tau"] == pytest.approx(1.0)
    assert speedups.rank_agreement(ref, -ref)["kendall_tau"] == pytest.approx(-1.0)
    # one discordant pair of six: tau = (5 - 1) / 6
    out = speedups.rank_agreement(ref, np.array([1.0, 3.0, 2.0, 4.0]))
    assert out["kendall_tau"] == pytest.approx(4 / 6) and out["proxy_top1_reference_rank"] == 1
    assert speedups.rank_agreement(ref, np.array([4.0, 0, 0, 1]))["proxy_top1_reference_rank"] == 4


@pytest.mark.slow
def test_weight_sharing_report(tmp_path):
    c = speedups_config.get_config("small")
    c.data_dir, c.progress = str(tmp_path / "tfds"), False
    out = speedups.run(c, str(tmp_path / "work"))
    saved = json.loads((tmp_path / "work" / "weight_sharing.json").read_text())
    assert saved["candidates"] == 8 and len(saved["inherited_valid"]) == 8
    assert all(0 <= v <= 100 for v in saved["inherited_valid"])
    assert -1 <= out["kendall_tau"] <= 1 and out["compute_ratio"] == pytest.approx(8 * 20 / 150)
    # the supernet really was trained: inherited weights beat chance (10%) for most candidates
    assert np.median(saved["inherited_valid"]) > 20.0
    assert (tmp_path / "work" / "weight_sharing.png").exists()


def test_unknown_speedup_names_the_field(tmp_path):
    c = speedups_config.get_config("small")
    c.speedup = "distillation"
    with pytest.raises(ConfigError, match="^speedup: got 'distillation'; allowed: weight_sharing$"):
        speedups.run(c, str(tmp_path))
