"""A trained multi-task classifier saved beside its run and loaded again to label new texts.

    from mtl.saved_classifier import load_classifier

    clf = load_classifier("runs/mtl")          # the experiment's best configuration (workdir/classifier/)
    clf.predict(["what a film", "rates rise again"])         # {"topic": [...class names], "sentiment": [...]}
    clf.predict_proba(texts)                                  # {task: (N, C) float32 softmax}

`experiments.mtl` saves every loss run's final weights while it runs and keeps, in `workdir/classifier/`, those of
the best one: the loss with the highest macro-F1 averaged over the tasks and seeds (scored on the test split,
the only held-out split the loss comparison measures), its first seed. A frozen pretrained encoder is not
copied: `classifier.json` names it and it is loaded from the weights folder (`mtl.fetch_weights`); a fine-tuned
or randomly initialised encoder is saved with the heads. Predictions equal the trainer's (tested).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from jaxnas.common.errors import ConfigError
from jaxnas.common.metrics import write_bytes, write_json
from mtl.encoder import COMPUTE_DTYPES, BertConfig, Tokenizer, load_pretrained
from mtl.model import HeadConfig, MultiTaskModel

META, WEIGHTS = "classifier.json", "classifier.msgpack"


def save_classifier(folder: str, model: MultiTaskModel, params: Any, class_names: dict[str, Sequence[str]],
                    max_length: int, pretrained_encoder: str | None) -> None:
    """`params`: the whole model's. `pretrained_encoder`: the weights folder ('' for the default) when the encoder
    is the unchanged pretrained one (then it is not written), None when its weights must be saved."""
    dtype = next(k for k, v in COMPUTE_DTYPES.items() if v == model.dtype)
    meta = {"tasks": [[name, list(class_names[name])] for name, _ in model.tasks],
            "head": dataclasses.asdict(model.head),
            "pooling": model.pooling, "dtype": dtype, "encoder_config": dataclasses.asdict(model.encoder_config),
            "max_length": int(max_length), "pretrained_encoder": pretrained_encoder}
    tree = {k: v for k, v in params.items() if not (k == "encoder" and pretrained_encoder is not None)}
    write_bytes(os.path.join(folder, WEIGHTS), serialization.to_bytes(jax.device_get(tree)))
    write_json(os.path.join(folder, META), meta)  # last: a folder with classifier.json is complete


class Classifier:
    """A saved multi-task classifier: `predict(texts)` gives each task's class names."""

    def __init__(self, folder: str):
        with open(os.path.join(folder, META)) as f:
            meta = json.load(f)
        self.class_names = {name: list(names) for name, names in meta["tasks"]}
        self.max_length = meta["max_length"]
        self.model = MultiTaskModel(BertConfig(**meta["encoder_config"]),
                                    tuple((name, len(names)) for name, names in meta["tasks"]),
                                    HeadConfig(**meta["head"]), meta["pooling"], COMPUTE_DTYPES[meta["dtype"]])
        ids = jnp.zeros((1, 2), jnp.int32)
        mask = jnp.ones((1, 2), jnp.int32)
        template = jax.eval_shape(lambda: self.model.init(jax.random.key(0), ids, mask))["params"]
        path = meta["pretrained_encoder"]
        stored = {k: v for k, v in template.items() if not (k == "encoder" and path is not None)}
        with open(os.path.join(folder, WEIGHTS), "rb") as f:
            params = dict(serialization.from_bytes(stored, f.read()))
        if path is not None:
            params["encoder"] = load_pretrained(path or None)[1]
        self.params = params
        self.tokenizer = Tokenizer(path or None)
        model = self.model
        self._logits = jax.jit(lambda p, i, m: model.apply({"params": p}, i, m))

    def predict_proba(self, texts: Sequence[str] | str, batch_size: int = 64) -> dict[str, np.ndarray]:
        """{task: (N, C) class probabilities} of `texts` (truncated to the training's max_length tokens)."""
        from mtl.sentence_encoder import token_batches

        if isinstance(texts, str):
            texts = [texts]
        out = {t: np.zeros((len(texts), len(n)), np.float32) for t, n in self.class_names.items()}
        for start, n, ids, mask in token_batches(self.tokenizer, texts, self.max_length, batch_size):
            logits = self._logits(self.params, ids, mask)
            for t in out:
                out[t][start:start + n] = np.asarray(jax.nn.softmax(logits[t], axis=-1))[:n]
        return out

    def predict(self, texts: Sequence[str] | str, batch_size: int = 64) -> dict[str, list[str]]:
        """{task: the most probable class name of each text}."""
        probs = self.predict_proba(texts, batch_size)
        return {t: [self.class_names[t][i] for i in p.argmax(1)] for t, p in probs.items()}


def load_classifier(workdir: str) -> Classifier:
    """The classifier `experiments.mtl` kept in `workdir/classifier/` (or a folder save_classifier wrote)."""
    for folder in (os.path.join(workdir, "classifier"), workdir):
        if os.path.isfile(os.path.join(folder, META)):
            return Classifier(folder)
    raise ConfigError("workdir", f"{workdir!r} has no classifier/{META}: a finished run of experiments.mtl writes it "
                                 "(runs before this version did not)")


def keep_best(workdir: str, scores: dict[str, float], run_names: dict[str, list[str]]) -> dict[str, Any]:
    """Moves the saved weights of the best candidate's first run (`scores`: candidate -> score, higher is better;
    `run_names`: candidate -> its runs, each saved in `workdir/runs/<name>/classifier/`) to `workdir/classifier/`
    and deletes the other runs' saved weights. A rerun finds the move already made."""
    import shutil

    best = max(scores, key=lambda k: scores[k])
    name = run_names[best][0]
    src, dst = os.path.join(workdir, "runs", name, "classifier"), os.path.join(workdir, "classifier")
    mark = os.path.join(dst, "run.json")
    if os.path.isfile(os.path.join(src, META)):
        if os.path.isdir(dst):
            shutil.rmtree(dst)
        os.replace(src, dst)
        with open(mark, "w") as f:
            json.dump({"run": name, "score": scores[best]}, f)
    for names in run_names.values():
        for other in names:
            shutil.rmtree(os.path.join(workdir, "runs", other, "classifier"), ignore_errors=True)
    kept = False
    if os.path.isfile(mark):
        with open(mark) as f:
            kept = json.load(f)["run"] == name
    return {"candidate": best, "run": name, "score": scores[best], "path": dst if kept else None}
