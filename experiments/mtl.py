"""Multi-task learning on imbalanced labels (the course unit's question 3), every claim with numbers.

    python -m experiments.mtl --config experiments/configs/mtl.py --workdir runs/mtl

1. Model-side remedies for imbalance: plain, class-weighted (inverse frequency; Cui et al.'s effective
   number) and focal cross-entropy, each over several seeds, per-task macro-F1, accuracy and the F1 of
   each task's rarest class, on held-out test sentences.
2. Why not resampling: oversampling to balance one task shifts the other task's label distribution
   (shared sentences carry both labels), and a model trained on it is measured too.
3. Freezing strategies: trainable parameters, macro-F1 per task and time per step.
4. What the heads share: L1 on each head's first layer, shared vs task-specific encoder features.
Everything goes to `<workdir>/results.json` and `<workdir>/report.md` (with plots).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import time
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from ml_collections import config_dict

from experiments.cli import launch, lookup, prefixed
from experiments.validation import Bounds, check_bounds, check_choices, check_files, check_strings
from jaxnas.common.checkpoint import check_same_settings, fingerprint
from jaxnas.common.errors import ConfigError, check, check_choice
from jaxnas.common.loop import flat_settings
from jaxnas.common.metrics import device_summary, read_jsonl, write_json, JsonlWriter
from jaxnas.data.images import stratified_split
from mtl import corpora, sampling
from mtl import data as mdata
from mtl.encoder import COMPUTE_DTYPES, POOLINGS, BertConfig, Tokenizer, load_pretrained
from mtl.freezing import DESCRIPTIONS, FREEZING
from mtl.losses import FOCAL_ALPHA_SCHEMES, LOSSES, make_loss
from mtl.metrics import classification_report
from mtl.saved_classifier import keep_best, save_classifier
from mtl.model import HeadConfig, MultiTaskModel, init_params, split_params
from mtl.train import MultiTaskTrainer, TrainSettings

if TYPE_CHECKING:  # the report (and matplotlib) load for a run: a refused setting need not wait ~1 s
    from jaxnas.common.report import Report


@dataclasses.dataclass
class Setup:
    """Everything the studies share: data, tokenizer, model, pretrained encoder."""

    tasks: tuple[mdata.TextTask, ...]
    train: list[mdata.Corpus]          # training corpora (one joint corpus, or one per task)
    test: dict[str, mdata.Corpus]      # task -> held-out corpus with that task's labels
    joint: bool                        # every training sentence carries every task's label
    tokenizer: Tokenizer
    model: MultiTaskModel
    encoder_params: Any


_UNIT, _COUNT = Bounds(float, 0.0, 1.0), Bounds(int, 0, 10_000_000)  # learning rates, fractions; sizes
# Every number of configs/mtl.py as the user types it; the upper bounds keep a typo from planning an unbounded run
# (seeds x losses x train.steps steps of train.batch_size sentences of up to max_length tokens; 512: MiniLM's positions).
BOUNDS = {
    "seed": Bounds(int, 0, 2**31 - 1), "seeds": Bounds(int, 1, 100), "loss.gamma": Bounds(float, 0.0, 100.0),
    "loss.beta": Bounds(float, 0.0, 0.999999), "data.neutral_low": Bounds(float, -4.0, 4.0),
    "data.neutral_high": Bounds(float, -4.0, 4.0), "data.max_examples": _COUNT,
    "data.valid_fraction": Bounds(float, 0.0, 0.9), "data.test_fraction": Bounds(float, 0.0, 0.9, open_low=True),
    "data.split_seed": Bounds(int, 0, 2**31 - 1), "head.hidden": Bounds(int, 0, 4096),
    "head.dropout": Bounds(float, 0.0, 0.99), "train.steps": Bounds(int, 1, 1_000_000),
    "train.batch_size": Bounds(int, 1, 4096), "train.max_length": Bounds(int, 2, 512),
    "train.pad_multiple": Bounds(int, 1, 512), "train.lr_encoder": _UNIT, "train.lr_heads": _UNIT,
    "train.weight_decay": Bounds(float, 0.0, 1.0), "train.warmup_fraction": _UNIT, "train.l1": Bounds(float, 0, 100),
    "train.task_alpha": _UNIT, "train.eval_batch_size": Bounds(int, 1, 8192),
    "train.checkpoint_every": Bounds(int, 1, 1_000_000), "freezing.steps": Bounds(int, 1, 1_000_000),
    "freezing.batch_size": Bounds(int, 1, 4096), "freezing.max_length": Bounds(int, 2, 512),
    "freezing.train_examples": _COUNT, "freezing.lr_encoder": _UNIT, "freezing.lr_heads": _UNIT,
}
CHOICES = {"freeze": tuple(FREEZING), "data.source": ("vader", "separate"), "encoder.pooling": POOLINGS,
           "encoder.dtype": tuple(COMPUTE_DTYPES), "freezing.loss": tuple(LOSSES.names()),
           "sparsity.loss": tuple(LOSSES.names()), "loss.focal_alpha": ("''", *FOCAL_ALPHA_SCHEMES)}
STRINGS = ("losses", "freezing.strategies", "sparsity.l1", "data.tfds_data_dir", "encoder.path", "data.vader_path")
FLAGS = ("progress", "encoder.pretrained", "freezing.random_init", "oversample", "data.download")


def validate(config: config_dict.ConfigDict) -> tuple[list[str], list[str], list[float]]:
    """Checks every setting before any data is read or compiled; returns the losses, freezing rows, L1 strengths."""
    check_bounds(config, {**BOUNDS, **{f"data.corpora.{n}.max_examples": _COUNT for n in config.data.corpora}})
    check_choices(config, {field: (True, False) for field in FLAGS})
    check_strings(config, STRINGS + tuple(f"data.corpora.{n}.{f}" for n in config.data.corpora
                                          for f in ("path", "tfds", "split", "text_column", "label_column")))
    check_files(config, ("data.vader_path", *(f"data.corpora.{n}.path" for n in config.data.corpora)))
    for field, allowed in CHOICES.items():
        check_choice(field, lookup(config, field) or "''", allowed)  # '': no focal alpha
    d = config.data
    check(d.neutral_low <= d.neutral_high, "data.neutral_low", f"got {d.neutral_low} > data.neutral_high "
          f"({d.neutral_high}); allowed: at most data.neutral_high")
    check(d.valid_fraction + d.test_fraction < 1, "data.test_fraction", f"got {d.test_fraction} with data.valid_"
          f"fraction {d.valid_fraction}; allowed: the two fractions together below 1")
    check(not config.encoder.path or os.path.isdir(config.encoder.path), "encoder.path",
          f"got {config.encoder.path!r}; allowed: '' (the bundled MiniLM) or a folder with a BERT in HF layout")
    if d.source == "separate":
        for name, spec in d.corpora.items():
            check(bool(spec.path) != bool(spec.tfds), f"data.corpora.{name}",
                  "set .path (JSONL/CSV/TSV) or .tfds (a prepared dataset)" if not spec.path else
                  f"got both .path ({spec.path!r}) and .tfds ({spec.tfds!r}); allowed: one of them")
    losses = _names(config.losses, "losses", LOSSES.names())
    check(bool(losses), "losses", f"got ''; allowed: one or more of {', '.join(LOSSES.names())}, comma-separated")
    strategies = _names(config.freezing.strategies, "freezing.strategies", FREEZING)
    for x in (l1s := [x.strip() for x in config.sparsity.l1.split(",") if x.strip()]):
        check(re.fullmatch(r"\d+(\.\d*)?([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?", x) is not None and float(x) <= 100,
              "sparsity.l1", f"got {x!r}; allowed: comma-separated numbers in [0, 100] ('' skips the study)")
    return losses, strategies, [float(x) for x in l1s]


def _names(text: str, field: str, allowed) -> list[str]:
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    return [n for n in names if check_choice(field, n, allowed) is None]


def _subsample(corpus: mdata.Corpus, n: int, seed: int, field: str) -> mdata.Corpus:
    """A stratified subset of `n` examples (0: all). A class it would leave without an example (a single sentence:
    two or more keep one) is refused naming `field`: its head output and macro-F1 would have an empty class."""
    if not n or n >= len(corpus):
        return corpus
    code = np.zeros(len(corpus), np.int64)
    for t in corpus.tasks:
        code = code * (len(t.class_names) + 1) + corpus.labels[t.name] + 1
    keep = stratified_split(code, (n / len(corpus),), seed)[1]
    subset = corpus.subset(np.sort(keep))
    for t in corpus.tasks:
        lost = [c for c, before, after in zip(t.class_names, corpus.counts(t.name), subset.counts(t.name))
                if before and not after]
        check(not lost, field, f"got {n}; a subset of {n} of the {len(corpus)} sentences keeps no example of "
              f"{t.name} class {', '.join(map(repr, lost))}; allowed: 0 (all) or a size that keeps every class")
    return subset


def load_setup(config: config_dict.ConfigDict) -> Setup:
    d = config.data
    check_choice("data.source", d.source, ("vader", "separate"))
    split = dict(valid_fraction=d.valid_fraction, test_fraction=d.test_fraction, seed=d.split_seed)
    if d.source == "vader":
        corpus = _named("data.", VADER_FIELDS, lambda: corpora.load_vader(
            d.vader_path or None, neutral_low=d.neutral_low, neutral_high=d.neutral_high))
        splits = _named("data.", {}, lambda: sampling.split_corpus(
            _subsample(corpus, d.max_examples, d.split_seed, "data.max_examples"), **split))
        train, test, tasks = [splits.train], {t.name: splits.test for t in corpus.tasks}, corpus.tasks
    else:
        train, test, tasks = [], {}, []
        for name, spec in d.corpora.items():
            if spec.tfds:
                corpus = _named(f"data.corpora.{name}.", TFDS_FIELDS, lambda: corpora.load_tfds_task(
                    spec.tfds, task=name, split=spec.split, text_key=spec.text_column or None,
                    label_key=spec.label_column or None, data_dir=d.tfds_data_dir or None,
                    download=d.download))
            else:  # validate() saw a path or a dataset
                corpus = corpora.load_table_task(spec.path, task=name, text_column=spec.text_column,
                                               label_column=spec.label_column, field=f"data.corpora.{name}.path")
            field = f"data.corpora.{name}.max_examples" if spec.max_examples else "data.max_examples"
            splits = _named("data.", {}, lambda: sampling.split_corpus(
                _subsample(corpus, spec.max_examples or d.max_examples, d.split_seed, field), **split))
            train.append(splits.train)
            test[name] = splits.test
            tasks.append(corpus.tasks[0])
    e = config.encoder
    tokenizer = Tokenizer(e.path or None)
    bert, encoder_params = load_pretrained(e.path or None) if e.pretrained else (BertConfig(), None)
    head = prefixed("head", lambda: HeadConfig(**config.head.to_dict()))
    model = MultiTaskModel(bert, tuple((t.name, len(t.class_names)) for t in tasks), head, e.pooling,
                           COMPUTE_DTYPES[e.dtype])
    if encoder_params is None:
        encoder_params = init_params(model, jax.random.key(config.seed))["encoder"]
    return Setup(tuple(tasks), train, test, d.source == "vader", tokenizer, model, encoder_params)


# The loaders' fields, as configs/mtl.py names them (after the prefix `data.` or `data.corpora.NAME.`).
VADER_FIELDS = {"path": "vader_path", "sdist_path": "vader_path", "data": "vader_path", "cache_dir": "vader_path"}
TFDS_FIELDS = {"dataset": "tfds", "text_key": "text_column", "label_key": "label_column"}


def _named(prefix: str, fields: dict[str, str], fn):
    """Calls `fn()`; a ConfigError from a loader is re-raised under the setting the user typed."""
    try:
        return fn()
    except ConfigError as err:
        if err.field.startswith(("data.", "encoder.", "train.")):
            raise
        raise ConfigError(prefix + fields.get(err.field, err.field), str(err).split(": ", 1)[1]) from None


def _settings(config: config_dict.ConfigDict, **overrides) -> TrainSettings:
    values = {**config.train.to_dict(), "seed": config.seed, **overrides}
    settings = prefixed("train", lambda: TrainSettings(**values))
    settings.validate()
    return settings


def _counts(setup: Setup, task: str, sources: list[mdata.Corpus] | None = None) -> np.ndarray:
    return sum(c.counts(task) for c in (sources or setup.train) if task in c.labels)


def train_and_score(setup: Setup, config: config_dict.ConfigDict, *, name: str, workdir: str, loss: str,
                    freeze: str, settings: TrainSettings, seed: int, sources: list[mdata.Corpus] | None = None,
                    encoder_params: Any = None, keep_weights: bool = False) -> dict[str, Any]:
    """One training run, evaluated on the test corpora; its result is cached in `<workdir>/runs/<name>/`, its
    final weights too with `keep_weights` (`<name>/classifier/`, for `mtl.saved_classifier`).

    A rerun in the same workdir reuses a finished run only if it was made with the same settings (data,
    encoder, head, loss, optimisation); otherwise it stops with a `ConfigError("workdir")`.
    """
    settings = dataclasses.replace(settings, seed=seed)  # each seed: its own init, dropout and batch order
    run_dir = os.path.join(workdir, "runs", name)
    done = os.path.join(run_dir, "result.json")
    heads_file = os.path.join(run_dir, "first_layers.npz")
    recorded = {
        "loss": loss, "freeze": freeze, "seed": seed, "train": dataclasses.asdict(settings),
        "loss_settings": config.loss.to_dict(), "data": config.data.to_dict(), "encoder": config.encoder.to_dict(),
        "head": config.head.to_dict(), "sources": [len(c) for c in sources or setup.train],
        "random_encoder": encoder_params is not None,
        # the texts and labels themselves: a corpus file edited in place is another run, not a cached one
        "content": fingerprint([(c.texts, c.labels) for c in sources or setup.train],
                               [(c.texts, c.labels) for c in setup.test.values()])}
    meta = flat_settings(recorded)  # dotted keys: a refusal names e.g. `train.steps`, not the whole section
    if os.path.exists(done):  # finished before an interruption: not repeated
        result = next(read_jsonl(done))
        check_same_settings(result.get("settings", {}), meta)
        if settings.l1 > 0:
            with np.load(heads_file) as z:
                result["heads"] = {t: {"first": {"kernel": z[t]}} for t in z.files}
        return result
    sources = sources or setup.train
    lc = config.loss
    alpha = lc.focal_alpha or None
    losses = {t.name: prefixed("loss", lambda t=t: make_loss(loss, _counts(setup, t.name, sources), gamma=lc.gamma,
                                                             beta=lc.beta, focal_alpha=alpha)) for t in setup.tasks}
    params = init_params(setup.model, jax.random.key(seed),
                         setup.encoder_params if encoder_params is None else encoder_params)
    trainer = MultiTaskTrainer(setup.model, params, sources, losses, freeze, setup.tokenizer, settings)
    start = time.perf_counter()
    # the checkpoints record every setting of this run (the trainer adds its own training settings and key)
    state, history = trainer.train(jax.random.key(seed), workdir=os.path.join(run_dir, "checkpoints"),
                                   progress=config.progress, desc=f"[{name}]",
                                   metrics_path=os.path.join(run_dir, "metrics.jsonl"),
                                   settings_meta={"name": name, **{k: v for k, v in recorded.items() if k != "train"}})
    seconds = time.perf_counter() - start
    full = trainer.full_params(state.params)
    logits = {}
    for t in setup.tasks:  # a joint corpus is predicted once for all tasks
        corpus = setup.test[t.name]
        cached = next((v for c, v in logits.values() if c is corpus), None) if logits else None
        logits[t.name] = (corpus, cached if cached is not None else trainer.predict(state.params, corpus))
    result = {"name": name, "loss": loss, "freeze": freeze, "seed": seed, "train_seconds": seconds,
              "trainable_params": trainer.trainable, "total_params": trainer.total_params,
              "step_seconds_median": float(np.median([h["seconds"] for h in history[1:]] or [np.nan])),
              "loss_curve": [h["loss"] for h in history], "tasks": {}, "settings": meta}
    for t in setup.tasks:
        corpus, out = logits[t.name]
        result["tasks"][t.name] = classification_report(corpus.labels[t.name], out[t.name].argmax(1), t.class_names)
    with JsonlWriter(done) as w:
        w.write(result)
    if settings.l1 > 0:
        kernels = {t: np.asarray(p["first"]["kernel"]) for t, p in split_params(full)[1].items()}
        np.savez(heads_file, **kernels)
        result["heads"] = {t: {"first": {"kernel": k}} for t, k in kernels.items()}
    if keep_weights:  # an unchanged pretrained encoder is named, not copied
        frozen = freeze == "encoder" and encoder_params is None and config.encoder.pretrained
        save_classifier(os.path.join(run_dir, "classifier"), setup.model, full,
                        {t.name: t.class_names for t in setup.tasks}, settings.max_length,
                        config.encoder.path if frozen else None)
    shutil.rmtree(os.path.join(run_dir, "checkpoints"), ignore_errors=True)  # the result is kept instead
    return result


def minority(setup: Setup, task: str) -> int:
    return int(np.argmin(_counts(setup, task)))


def summarise(runs: list[dict[str, Any]], setup: Setup) -> dict[str, Any]:
    """Mean and std over seeds of macro-F1, accuracy and the rarest class's F1, per task."""
    out = {}
    for t in setup.tasks:
        rare = t.class_names[minority(setup, t.name)]
        rows = [r["tasks"][t.name] for r in runs]
        f1 = np.array([r["macro_f1"] for r in rows])
        acc = np.array([r["accuracy"] for r in rows])
        rare_f1 = np.array([r["per_class"][rare]["f1"] for r in rows])
        out[t.name] = {"macro_f1": float(f1.mean()), "macro_f1_std": float(f1.std()), "accuracy": float(acc.mean()),
                       "accuracy_std": float(acc.std()), "minority_class": rare, "minority_f1": float(rare_f1.mean()),
                       "per_class_f1": {c: float(np.mean([r["per_class"][c]["f1"] for r in rows])) for c in t.class_names},
                       "seeds": len(rows)}
    return out


def run(config: config_dict.ConfigDict, workdir: str, report: Report | None = None) -> dict[str, Any]:
    losses, strategies, l1s = validate(config)
    start = time.perf_counter()
    setup = load_setup(config)
    for c in setup.train if strategies else ():  # the freezing table's subsets: refused now, not after the losses
        sub = _subsample(c, config.freezing.train_examples, config.data.split_seed, "freezing.train_examples")
        check(len(sub) >= config.freezing.batch_size, "freezing.batch_size", f"got {config.freezing.batch_size}; "
              f"the freezing table trains on {len(sub)} sentences (freezing.train_examples of the training split)")
    print(f"data: {sum(len(c) for c in setup.train)} training sentences, tasks "
          + ", ".join(f"{t.name} {_counts(setup, t.name).tolist()}" for t in setup.tasks), flush=True)
    results: dict[str, Any] = {"device": device_summary(), "freeze": config.freeze, "seeds": config.seeds,
                               "data": {t.name: {"train_counts": _counts(setup, t.name).tolist(),
                                                 "test_counts": setup.test[t.name].counts(t.name).tolist(),
                                                 "classes": list(t.class_names)} for t in setup.tasks}}
    settings = _settings(config)
    # 1. the losses
    runs = {loss: [train_and_score(setup, config, name=f"{loss}_seed{s}", workdir=workdir, loss=loss,
                                   freeze=config.freeze, settings=settings, seed=config.seed + s, keep_weights=True)
                   for s in range(config.seeds)] for loss in losses}
    results["losses"] = {loss: summarise(rs, setup) for loss, rs in runs.items()}
    # the best loss's first run's weights, for mtl.saved_classifier.load_classifier(workdir)
    results["classifier"] = keep_best(
        workdir, {loss: float(np.mean([v["macro_f1"] for v in results["losses"][loss].values()])) for loss in runs},
        {loss: [r["name"] for r in rs] for loss, rs in runs.items()})
    results["loss_curves"] = {loss: rs[0]["loss_curve"] for loss, rs in runs.items()}
    results["confusion"] = {loss: {t.name: rs[0]["tasks"][t.name]["confusion_matrix"] for t in setup.tasks}
                            for loss, rs in runs.items()}
    # 2. resampling vs the other task
    if config.oversample and setup.joint and len(setup.tasks) >= 2:
        results["oversampling"] = oversampling_study(setup, config, workdir, settings)
    # 3. freezing strategies
    results["freezing"] = [freezing_row(setup, config, workdir, s) for s in strategies]
    if config.freezing.random_init and config.encoder.pretrained and strategies:
        results["freezing"].append(freezing_row(setup, config, workdir, "none", random_init=True))
    # 4. sparsity
    if l1s and len(setup.tasks) >= 2:
        results["sparsity"] = sparsity_study(setup, config, workdir, settings, l1s)
    results["wall_seconds"] = time.perf_counter() - start
    from experiments.mtl_report import report_all
    from jaxnas.common.report import Report

    own = report is None
    report = report or Report(workdir, "Multi-task learning on imbalanced labels")
    report_all(report, workdir, results, setup, config)
    if "sparsity" in results:
        results["sparsity"]["last"].pop("masks")
    write_json(os.path.join(workdir, "results.json"), results)
    if own:
        report.write()
    summary = {"losses": results["losses"], "freezing": results["freezing"], "wall_seconds": results["wall_seconds"]}
    if "oversampling" in results:
        summary["oversampling"] = results["oversampling"]
    if "sparsity" in results:
        summary["sparsity"] = results["sparsity"]["lambdas"]
    return summary


def oversampling_study(setup: Setup, config, workdir: str, settings: TrainSettings) -> dict[str, Any]:
    """Oversample to balance each task in turn; report the other tasks' shift and a CE model trained on it."""
    train = setup.train[0]
    out = {}
    for t in setup.tasks:
        idx = sampling.oversample_to_balance(train, t.name, config.seed)
        shifted = train.subset(idx)
        entry = {"size": len(idx), "shift": {o.name: sampling.label_shift(train, idx, o.name) for o in setup.tasks}}
        run = train_and_score(setup, config, name=f"oversample_{t.name}_ce", workdir=workdir, loss="ce",
                              freeze=config.freeze, settings=settings, seed=config.seed, sources=[shifted])
        entry["trained"] = {o.name: {"macro_f1": run["tasks"][o.name]["macro_f1"],
                                     "accuracy": run["tasks"][o.name]["accuracy"]} for o in setup.tasks}
        out[t.name] = entry
    return out


def freezing_row(setup: Setup, config, workdir: str, strategy: str, random_init: bool = False) -> dict[str, Any]:
    """One row of the freezing table; `random_init` trains the same encoder from random weights instead."""
    f = config.freezing
    settings = _settings(config, steps=f.steps, batch_size=f.batch_size, max_length=f.max_length,
                         lr_encoder=f.lr_encoder, lr_heads=f.lr_heads, checkpoint_every=max(f.steps // 2, 1))
    sources = [_subsample(c, f.train_examples, config.data.split_seed, "freezing.train_examples") for c in setup.train]
    encoder = init_params(setup.model, jax.random.key(config.seed))["encoder"] if random_init else None
    r = train_and_score(setup, config, name=f"freeze_{strategy}" + ("_random_init" if random_init else ""),
                        workdir=workdir, loss=f.loss, freeze=strategy, settings=settings, seed=config.seed,
                        sources=sources, encoder_params=encoder)
    row = {"strategy": strategy + (" (random init)" if random_init else ""),
           "description": DESCRIPTIONS[strategy] + (", encoder from random weights" if random_init else ""),
           "trainable_params": r["trainable_params"],
           "total_params": r["total_params"], "step_seconds": r["step_seconds_median"],
           "train_seconds": r["train_seconds"]}
    print(f"  freeze={strategy}: {r['trainable_params']:,} of {r['total_params']:,} parameters trainable", flush=True)
    for t in setup.tasks:
        row[f"{t.name}_macro_f1"] = r["tasks"][t.name]["macro_f1"]
    return row


def sparsity_study(setup: Setup, config, workdir: str, settings: TrainSettings, l1s: list[float]) -> dict[str, Any]:
    from mtl.sparsity import sharing_analysis  # here: it loads matplotlib (~1 s a refused setting need not wait)

    out = {"lambdas": [], "last": None}
    for lam in l1s:
        s = dataclasses.replace(settings, l1=lam)
        r = train_and_score(setup, config, name=f"l1_{lam:g}", workdir=workdir, loss=config.sparsity.loss,
                            freeze="encoder", settings=s, seed=config.seed)
        a = sharing_analysis(r["heads"])
        row = {"l1": lam, "shared": a["shared"], "unused": a["unused"], "jaccard": a["jaccard"],
               **{f"{t}_used": v for t, v in a["used"].items()}, **{f"{t}_only": v for t, v in a["specific"].items()},
               **{f"{t.name}_macro_f1": r["tasks"][t.name]["macro_f1"] for t in setup.tasks}}
        out["lambdas"].append(row)
        out["last"] = a
    out["last"]["features"] = {t: np.flatnonzero(m).tolist() for t, m in out["last"]["masks"].items()}
    return out


if __name__ == "__main__":
    launch(run, os.path.join(os.path.dirname(__file__), "configs", "mtl.py"))
