"""Bad input to the search and MTL entry points (issue 20): `experiments.nb201` (the table protocol),
`experiments.nas_search` (trained search) and `experiments.mtl`, each case run as a user would and refused
with exit status 2 and one line naming the setting as typed, in under 5 s, the workdir left as it was.
The runner is test_bad_input's; `{dir}` in an override is a folder holding the small files below.
"""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest

from test_bad_input import CONFIGS, REPO, Case, assert_refused, run_entry, snapshot

NB201_CSV = os.path.join(REPO, "..", "shared", "data", "nasbench201", "nb201_cifar10_valid.csv")
SEPARATE = ("--config.data.source=separate", "--config.data.corpora.topic.path={dir}/topic.tsv",
            "--config.data.corpora.sentiment.path={dir}/sentiment.tsv")

CASES = [
    # reported in issue 20: an unbounded budget, inf as an OverflowError traceback
    Case("nb201", ("--config.budget_s=inf",), "config.budget_s", "got inf; allowed: a number in (0, 1000000]"),
    Case("nb201", ("--config.budget_s=1e12",), "config.budget_s", "allowed: a number in (0, 1000000]"),
    Case("nb201", ("--config.budget_s=nan",), "config.budget_s", "got nan"),
    # a table whose evaluations are almost free: the budget would plan millions of evaluations per run
    Case("nb201", ("--config.table_path={dir}/cheap.csv",), "config.budget_s",
         "evaluations per run (the budget / the table's cheapest evaluation"),
    Case("nb201", ("--config.runs=1000000",), "config.runs", "allowed: an integer in [1, 10000]"),
    Case("nb201", ("--config.runs=2.5",), "config.runs", "allowed: an integer"),
    Case("nb201", ("--config.chunk_steps=100000000",), "config.chunk_steps", "got 100000000"),
    Case("nb201", ("--config.seed=-1",), "config.seed", "got -1"),
    Case("nb201", ("--config.benchmark=macro", "--config.macro.budget=0"), "config.macro.budget", "got 0"),
    Case("nb201", ("--config.macro.search_run=3",), "config.macro.search_run", "allowed: an integer in [0, 2]"),
    Case("nb201", ("--config.tournament.sample_fraction=nan",), "config.tournament.sample_fraction", "got nan"),
    Case("nb201", ("--config.reinforce.hidden_size=1000000",), "config.reinforce.hidden_size"),
    Case("nb201", ("--config.table_path={dir}/missing.csv",), "config.table_path", "file not found"),
    Case("nb201", ("--config.table_path={dir}/not_a_table.csv",), "config.table_path", "lacks columns"),
    Case("nb201", ("--config.benchmark=macro", "--config.macro.path={dir}/not_a_table.csv"), "config.macro.path"),
    # nas_search: caps that keep the training finite, and the .npz file named by its setting
    Case("nas_search", ("--config.network.channels=100000",), "config.network.channels", "allowed: an integer in [1, 512]"),
    Case("nas_search", ("--config.network.cells_per_stage=1000",), "config.network.cells_per_stage", "[1, 16]"),
    Case("nas_search", ("--config.evaluations=100000000",), "config.evaluations", "[1, 10000]"),
    Case("nas_search", ("--config.image_size=4096",), "config.image_size", "[4, 256]"),
    Case("nas_search", ("--config.train.learning_rate=inf",), "config.train.learning_rate", "got inf"),
    Case("nas_search", ("--config.baseline_random=-1",), "config.baseline_random", "got -1"),
    Case("nas_search", ("--config.npz_path={dir}/one_class.npz",), "config.npz_path", "labels: "),
    Case("nas_search", ("--config.npz_path={dir}/edited.npz",), "config.npz_path", "images: values must lie in [0, 1]"),
    Case("nas_search", ("--config.npz_path={dir}/not_npz.npz",), "config.npz_path", "cannot read"),
    Case("nas_search", ("--config.npz_path={dir}/missing.npz",), "config.npz_path", "file not found"),
    # MetaQNN's space and its training recipe (issue 22)
    Case("nas_search", ("--config.space=metaqnn", "--config.metaqnn.layer_types=('conv','dense')"),
         "config.metaqnn.layer_types", "allowed: distinct names among conv, pool, fc, gap"),
    Case("nas_search", ("--config.space=metaqnn", "--config.metaqnn.layer_limit=0"), "config.metaqnn.layer_limit",
         "allowed: an integer in [1, 32]"),
    Case("nas_search", ("--config.metaqnn.conv_sizes=(2,)",), "config.metaqnn.conv_sizes", "odd receptive fields"),
    Case("nas_search", ("--config.space=metaqnn", "--config.metaqnn.train.restart_check_epochs=10"),
         "config.metaqnn.train.restart_check_epochs", "fewer than epochs"),
    Case("nas_search", ("--config.space=metaqnn", "--config.strategy=qlearning", "--config.evaluations=48",
                        "--config.qlearning.epsilon_schedule=1.0:40,0.5:4"), "config.qlearning.epsilon_schedule", "48"),
    Case("nas_search", ("--config.dataset=npz",), "config.npz_path", "dataset=npz needs npz_path"),
    # AmoebaNet's cells and hierarchical NAS (issue 23)
    Case("nas_search", ("--config.space=nasnet", "--config.nasnet.B=0"), "config.nasnet.B", "allowed: an integer in [1, 16]"),
    Case("nas_search", ("--config.space=nasnet", "--config.nasnet.ops=('identity','conv_9x9')"), "config.nasnet.ops",
         "allowed: two or more distinct names among identity, sep_conv_3x3"),
    Case("nas_search", ("--config.hierarchical.primitives=('identity','conv5x5')",), "config.hierarchical.primitives",
         "allowed: distinct names among conv1x1"),
    Case("nas_search", ("--config.space=hierarchical", "--config.strategy=tournament",
                        "--config.tournament.sample_fraction=1.5"), "config.tournament.sample_fraction", "[0, 1]"),
    Case("nas_search", ("--config.space=hierarchical", "--config.image_size=6"), "config.image_size",
         "allowed: divisible by 4"),
    # mtl: every setting named as typed, sizes that plan work capped, a subset that loses a class refused
    Case("mtl", ("--config.seeds=1000",), "config.seeds", "[1, 100]"),
    Case("mtl", ("--config.sparsity.l1=0.1,inf",), "config.sparsity.l1", "got 'inf'"),
    Case("mtl", ("--config.sparsity.l1=lots",), "config.sparsity.l1", "comma-separated numbers"),
    Case("mtl", ("--config.train.steps=100000000",), "config.train.steps", "[1, 1000000]"),
    Case("mtl", ("--config.freezing.max_length=1000",), "config.freezing.max_length", "[2, 512]"),
    Case("mtl", ("--config.loss.focal_alpha=weird",), "config.loss.focal_alpha", "allowed: '', class_balanced"),
    Case("mtl", ("--config.data.test_fraction=0",), "config.data.test_fraction", "got 0.0"),
    Case("mtl", ("--config.data.vader_path={dir}/missing.tsv",), "config.data.vader_path", "file not found"),
    Case("mtl", ("--config.encoder.path={dir}/no_encoder",), "config.encoder.path"),
    Case("mtl", (*SEPARATE, "--config.data.max_examples=10"), "config.data.max_examples",
         "keeps no example of topic class 'c'"),
    Case("mtl", ("--config.data.source=separate", "--config.data.corpora.topic.path={dir}/sentiment.tsv",
                 "--config.data.corpora.sentiment.path={dir}/three_classes.tsv", "--config.freezing.train_examples=10"),
         "config.freezing.train_examples", "keeps no example of sentiment class 'neu'"),  # after loading, before training
    Case("mtl", (*SEPARATE[:2], "--config.data.corpora.sentiment.path={dir}/one_class.tsv"),
         "config.data.corpora.sentiment.path"),
]


def _cheap_table(path: str) -> None:
    """NAS-Bench-201's CSV with every training time divided by 10^5 (a plausible unit mistake)."""
    if not os.path.isfile(NB201_CSV):
        pytest.skip("no NAS-Bench-201 table")
    with open(NB201_CSV, newline="") as src, open(path, "w", newline="") as dst:
        rows = csv.DictReader(src)
        out = csv.DictWriter(dst, rows.fieldnames)
        out.writeheader()
        for row in rows:
            out.writerow({**row, "train_time_s": float(row["train_time_s"]) * 1e-5})


def _npz(path: str, labels: np.ndarray, scale: float = 1.0) -> None:
    images = np.random.default_rng(0).random((len(labels), 8, 8)).astype(np.float32) * scale  # (N, H, W)
    np.savez(path, images=images, labels=labels)


def _tsv(path: str, labels: list[str]) -> None:
    with open(path, "w") as f:
        f.write("text\tlabel\n" + "".join(f"sentence number {i}\t{label}\n" for i, label in enumerate(labels)))


FILES = {
    "cheap.csv": _cheap_table,
    "not_a_table.csv": lambda p: open(p, "w").write("just,some\n1,2\n"),
    "one_class.npz": lambda p: _npz(p, np.zeros(20, np.int64)),
    "edited.npz": lambda p: _npz(p, np.arange(20) % 2, scale=255.0),  # uint8 pixels not divided by 255
    "not_npz.npz": lambda p: open(p, "w").write("not an archive"),
    "topic.tsv": lambda p: _tsv(p, ["a"] * 20 + ["b"] * 19 + ["c"]),  # class c: a single sentence
    "sentiment.tsv": lambda p: _tsv(p, ["pos", "neg"] * 20),
    "one_class.tsv": lambda p: _tsv(p, ["pos"] * 10),
    "three_classes.tsv": lambda p: _tsv(p, ["pos"] * 20 + ["neg"] * 17 + ["neu"] * 3),  # one 'neu' left to train on
}


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c.overrides) + f" ({c.entry})" for c in CASES])
def test_bad_input_is_refused_in_one_line_before_any_work(tmp_path, case):
    files = tmp_path / "files"
    files.mkdir()
    for name, write in FILES.items():
        if any(f"{{dir}}/{name}" in o for o in case.overrides):
            write(str(files / name))
    workdir = tmp_path / "work"  # an existing workdir with a result in it: the refusal must not touch it
    workdir.mkdir()
    (workdir / "results.json").write_text('{"kept": true}')
    before = snapshot(workdir)
    overrides = [o.replace("{dir}", str(files)) for o in case.overrides]
    proc, seconds = run_entry(case.entry, "--config", CONFIGS[case.entry], *overrides, "--workdir", str(workdir))
    assert_refused(proc, seconds, case.field, case.says)
    assert snapshot(workdir) == before


def _leaves(config) -> set[str]:
    from experiments import cli

    return {k for k in cli.dotted_keys(config) if not isinstance(cli.lookup(config, k), type(config))}


def test_every_setting_of_the_three_configs_has_a_rule():
    """Each field of configs/{nb201,nas_search,mtl}.py is bounded, a choice, a string or a file, and the shipped
    variants pass (a field added without a rule fails here)."""
    from experiments import mtl, nas_search, nb201
    from experiments.configs import mtl as mtl_config, nas_search as nas_config, nb201 as nb201_config

    ruled = set(nb201.BOUNDS) | {"benchmark", "strategy", "progress", "table_path", "macro.path"}
    assert _leaves(nb201_config.get_config()) == ruled
    ruled = (set(nas_search.BOUNDS) | nas_search.SPACE_SETTINGS
             | {"space", "strategy", "progress", "download", "execution", "dataset", "data_dir", "npz_path"})
    assert _leaves(nas_config.get_config()) == ruled
    config = mtl_config.get_config()
    corpora = {f"data.corpora.{n}.{f}" for n in config.data.corpora
               for f in ("path", "tfds", "split", "text_column", "label_column", "max_examples")}
    ruled = (set(mtl.BOUNDS) | set(mtl.CHOICES) | set(mtl.STRINGS) | set(mtl.FLAGS) | corpora)
    assert _leaves(config) == ruled
    for variant in (None, "small"):
        assert nb201.validate(nb201_config.get_config(variant))
        nas_search.validate(nas_config.get_config(variant))
        assert mtl.validate(mtl_config.get_config(variant))[0] == ["ce", "weighted", "class_balanced", "focal"]
    for variant in ("demo", "metaqnn", "nasnet", "hierarchical"):  # nas_search's other variants
        nas_search.validate(nas_config.get_config(variant))


def test_a_budget_planning_too_many_evaluations_names_its_setting():
    """BudgetedSearch bounds the evaluations a budget plans per run by the table's cheapest evaluation, naming
    the setting that holds the budget; a budget within the bound plans exactly budget / min_cost steps."""
    from jaxnas.common.errors import ConfigError
    from jaxnas.problems import BENCHMARKS
    from jaxnas.search import BudgetedSearch
    from jaxnas.search.budgeted import MAX_EVALUATIONS_PER_RUN
    from jaxnas.strategies import STRATEGIES

    bench = BENCHMARKS.get("macro")
    table = bench.load(None)  # every evaluation costs 1
    strategy = STRATEGIES.get("random")(bench.space)
    assert BudgetedSearch(strategy, table, MAX_EVALUATIONS_PER_RUN, 8).max_steps == MAX_EVALUATIONS_PER_RUN + 2
    with pytest.raises(ConfigError, match=r"^macro.budget: got 100001; that plans up to 100,001 evaluations per run"):
        BudgetedSearch(strategy, table, MAX_EVALUATIONS_PER_RUN + 1, 8, budget_field="macro.budget")
    with pytest.raises(ConfigError, match=r"^budget_s: got inf; allowed: a finite number > 0$"):
        BudgetedSearch(strategy, table, float("inf"), 8)
