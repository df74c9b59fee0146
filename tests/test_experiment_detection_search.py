"""The detector search's entry point: settings refused by name (exit status 2), a whole tiny run of every method
(results, report, pictures), and a restart on the same workdir that retrains nothing and gives the same results."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from experiments import detection_search as entry
from experiments.configs import detection_search as ds_config
from experiments.detection_tables import SEARCH_NAMES, detection_search
from jaxnas.common.errors import ConfigError

pytestmark = pytest.mark.usefixtures("fast_compile")


def small(data_dir, **overrides):
    c = ds_config.get_config("small")
    c.data_dir, c.progress = data_dir, False
    for k, v in overrides.items():
        node, *rest = k.split(".")
        if rest:
            c[node][rest[0]] = v
        else:
            c[k] = v
    return c


@pytest.mark.parametrize("overrides, field", [
    ({"method": "darts"}, "method"), ({"gradient.penalties": "0.1,x"}, "gradient.penalties"),
    ({"gradient.penalties": "-1"}, "gradient.penalties"), ({"space.resolution_max": 12}, "space.resolution_max"),
    ({"space.depth_max": 2}, "space.depth_max"), ({"space.resolution_step": 3}, "space.resolution_step"),
    ({"space.depth_min": 1}, "space.depth_min"), ({"evolution.sample_size": 5}, "evolution.sample_size"),
    ({"evolution.population_size": 3}, "evolution.population_size"), ({"reward.beta": 0.5}, "reward.beta"),
    ({"train.steps": 0}, "train.steps"), ({"gradient.depth_search": "inner"}, "gradient.depth_search")])
def test_bad_settings_name_the_field(tmp_path, overrides, field):
    with pytest.raises(ConfigError) as err:
        entry.run(small(str(tmp_path), **overrides), str(tmp_path / "w"))
    assert err.value.field == field
    assert not (tmp_path / "w").exists()  # refused before any work


def test_cli_refusal_exits_2_with_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "experiments.detection_search", "--config",
                          "experiments/configs/detection_search.py:small", "--config.gradient.penalties=oops",
                          "--workdir", str(tmp_path / "w")], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("error: config.gradient.penalties: got 'oops'")


def test_tiny_run_of_every_method_then_a_restart_retrains_nothing(tmp_path):
    data_dir, workdir = str(tmp_path / "tfds"), str(tmp_path / "run")
    summary = entry.run(small(data_dir), workdir)
    with open(os.path.join(workdir, "results.json")) as f:
        results = json.load(f)
    assert set(results["evaluations"]) == {"reinforce", "evolution", "random", "gradient"}
    # each search evaluates 2 distinct configurations (its repeats, flagged, cost nothing); gradient: one penalty,
    # one run per depth (the outer loop) in the order of the depths, each keeping its depth
    assert [len({(r["resolution"], r["depth"]) for r in results["evaluations"][m]})
            for m in ("reinforce", "evolution", "random", "gradient")] == [2, 2, 2, 2]
    assert [r["depth"] for r in results["evaluations"]["gradient"]] == [2, 3]
    assert [(g["depth_search"], g["depth"], len(g["final_probs"])) for g in results["gradient_runs"]] == [
        ("outer", 2, 1), ("outer", 3, 1)]
    for m in ("reinforce", "evolution", "random"):
        assert sum(not r["repeat"] for r in results["evaluations"][m]) == 2
    distinct = {(r["resolution"], r["depth"]) for recs in results["evaluations"].values() for r in recs} | {(16, 2)}
    assert summary["trainings"] == len(distinct) == summary["trained_this_run"]  # memoised across methods
    assert summary["methods"] == json.loads(json.dumps(results["methods"]))  # the published summary has the fronts
    published = {"figures": json.loads(json.dumps(summary)), "settings": small(data_dir).to_dict(),
                 "provenance": {"device": {"jax_backend": "cpu", "cores": 2, "cpu": "x"}}}
    table = detection_search(({"detection_search": published}))
    assert table.count("\n| ") == 1 + 4 and "seeds 0 (" in table and "results/detection_search.json" in table
    for m, v in summary["methods"].items():
        assert f"| {v['seeds_dominating_default']} of 1 |" in table.split(SEARCH_NAMES[m])[1].splitlines()[0]
    for recs in results["evaluations"].values():
        for r in recs:
            assert r["flops"] > 0 and r["latency_ms"] > 0  # mAP and AP50 as fractions
            assert all(0 <= r[k] <= 1 for k in ("valid_map", "test_map", "valid_ap50", "test_ap50"))
    g = results["gradient_runs"][0]
    assert g["penalty"] == 0.1 and len(g["trajectory"]["resolution"]) == len(g["trajectory"]["step"])
    report = open(os.path.join(workdir, "report.md")).read()
    for name in ("front.png", "search_curves.png", "detections.png", "gradient_seed0_penalty0.1.png"):
        assert name in report and os.path.getsize(os.path.join(workdir, name)) > 0
    # a restart (e.g. after a kill) replays the same decisions from evaluations.jsonl and gradient/
    again = entry.run(small(data_dir, pictures=0), workdir)
    assert again["trained_this_run"] == 0 and again["trainings"] == summary["trainings"]
    with open(os.path.join(workdir, "results.json")) as f:
        second = json.load(f)
    assert second["evaluations"] == results["evaluations"]
    # the gradient method's depth search is free on a workdir (its cached runs are named by it): the mixture's one run
    mixture = entry.run(small(data_dir, method="gradient", pictures=0, **{"gradient.depth_search": "mixture"}), workdir)
    with open(os.path.join(workdir, "results.json")) as f:
        runs = json.load(f)["gradient_runs"]
    assert [(g["depth_search"], len(g["final_probs"])) for g in runs] == [("mixture", 2)]
    assert mixture["trainings"] >= summary["trainings"]
    # other training settings on the same workdir: refused before any work, naming what differs
    with pytest.raises(ConfigError, match=r"train\.steps \(saved 3, now 4\)") as err:
        entry.run(small(data_dir, **{"train.steps": 4}), workdir)
    assert err.value.field == "workdir"


def test_picks_choose_on_validation_and_report_test():
    """By hand (mAP as fractions): default 10 MFLOPs at 20% valid. At <= 10 MFLOPs the most accurate on validation is
    (48, 6) (22%, though its test mAP is below (40, 3)'s); the cheapest at >= 20% valid is (40, 5) at 6 MFLOPs;
    (72, 7) is neither."""
    def rec(r, d, flops, valid, test):
        return {"resolution": r, "depth": d, "flops": flops, "valid_map": valid, "test_map": test, "test_ap50": 0.0,
                "latency_ms": 1.0}

    front = [rec(40, 3, 4e6, 0.15, 0.19), rec(40, 5, 6e6, 0.205, 0.18), rec(48, 6, 9e6, 0.22, 0.17),
             rec(72, 7, 30e6, 0.30, 0.29)]
    out = entry.picks(front, rec(64, 5, 10e6, 0.20, 0.20))
    assert (out["best_within_default_flops"]["resolution"], out["best_within_default_flops"]["depth"]) == (48, 6)
    assert (out["cheapest_at_default_map"]["resolution"], out["cheapest_at_default_map"]["depth"]) == (40, 5)
    assert out["cheapest_at_default_map"]["test_map"] == 0.18
    none = entry.picks([rec(72, 7, 30e6, 0.19, 0.19)], rec(64, 5, 10e6, 0.20, 0.20))
    assert none == {"best_within_default_flops": None, "cheapest_at_default_map": None}


def test_table_hypervolume_by_hand():
    """Fronts measured on test against (0 %, the costliest front point), the files' fractions in mAP % x MFLOPs:
    random's one point (10 %, 2 of 4 MFLOPs) covers 10 x 2 = 20; evolution's two, (10 %, 1) and (20 %, 4), cover
    10 x 3 + 20 x 0 = 30, so 1.50x random; the default's test mAP 5 % prints as 5.0%."""
    def rec(flops, test):
        return {"resolution": 32, "depth": 2, "flops": flops * 1e6, "valid_map": test, "test_map": test,
                "test_ap50": 0.0, "latency_ms": 1.0}

    def method(front):
        return {"seeds_dominating_default": 0, "per_seed": [{"seed": 0, "distinct": len(front), "front": front,
                                                              "best_within_default_flops": None,
                                                              "cheapest_at_default_map": None}]}

    figures = {"dataset": "d", "image_shape": [8, 8, 1], "seeds": [0], "default": {**rec(3, 0.05), "depth": 5},
               "default_per_seed": [rec(3, 0.05)],
               "methods": {"random": method([rec(2, 0.10)]), "evolution": method([rec(1, 0.10), rec(4, 0.20)])}}
    settings = small(".").to_dict()
    table = detection_search({"detection_search": {"figures": figures, "settings": settings, "provenance": {}}})
    assert "| 20 (1.00x random) |" in table and "| 30 (1.50x random) |" in table and "4.0 MFLOPs (the most" in table
    assert "test mAP 5.0% (mean of the seeds; 5.0)" in table


def test_short_runs_say_plainly_they_have_not_converged():
    from experiments.detection_report import short_run_note

    assert short_run_note(ds_config.get_config()) == ""
    note = short_run_note(ds_config.get_config("demo"))
    assert note.startswith("**Not converged: a smoke run**")
    assert "training steps 150 (default 600)" in note and "detector width 8 (default 16)" in note
    own = ds_config.get_config()
    own.dataset = "coco_files"  # another dataset: the embedded set's defaults say nothing about it
    own.train.steps = 10
    assert short_run_note(own) == ""
