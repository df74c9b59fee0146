"""Multi-task training: a jit-compiled, data-parallel train step over a shared encoder and task heads.

Batches follow MT-DNN (Liu et al., ACL 2019): with several corpora, each batch comes from one corpus,
chosen with probability proportional to its size**alpha (alpha=1 is MT-DNN's proportional sampling);
a corpus labelled for several tasks (the embedded VADER data: domain and sentiment on every sentence)
trains all of them in every batch. A missing label is -1 and does not count. The loss is the sum over
tasks of each task's (weighted) mean loss over the whole global batch: every device computes its share
and the shares, counts and gradients are summed across devices, so 8 devices give the 1-device result.

Sequences are padded only to the longest one in the batch, rounded up to `pad_multiple` (a handful of
compiled shapes instead of always `max_length`). With the encoder frozen (`freeze="encoder"`) it runs
without dropout, so its pooled features are constant: they are computed once (`extract_features`) and
only the heads are trained, which is exactly the frozen-encoder computation at a fraction of the cost.

A step whose loss or gradients are not finite is not applied; training stops with an error naming the
step. Checkpoints (orbax) hold the parameters, optimiser state and step; the batch order is a pure
function of (seed, step), so a resumed run ends with the same parameters as an uninterrupted one.

Several processes (`jaxnas.common.distributed`, one per host): the mesh holds every process's devices, each
process computes the same global batch and places only its own devices' part of it, and the replicated state
is updated identically everywhere, so two processes of one device each give the one-process, two-device
result; evaluations run on each process's own copy of the weights.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, PartitionSpec as P

from jaxnas.common import distributed
from jaxnas.common.errors import check, check_positive, check_range
from jaxnas.common.loop import run_loop
from jaxnas.common.tree import tree_where
from mtl import freezing
from mtl.data import Corpus
from mtl.sampling import TaskSampler
from mtl.losses import LossFn, weighted_mean
from mtl.model import MultiTaskModel


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings (defaults: BERT fine-tuning practice, heads at a higher learning rate)."""

    steps: int = 300
    batch_size: int = 32
    max_length: int = 64
    pad_multiple: int = 16
    lr_encoder: float = 5e-5
    lr_heads: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    l1: float = 0.0
    task_alpha: float = 1.0
    eval_batch_size: int = 128
    checkpoint_every: int = 100
    seed: int = 0

    def validate(self) -> None:
        for name in ("steps", "batch_size", "max_length", "pad_multiple", "eval_batch_size", "checkpoint_every"):
            check_positive(f"train.{name}", getattr(self, name), integer=True)
        check(self.max_length >= 2, "train.max_length", f"got {self.max_length}; allowed: >= 2")
        for name in ("lr_encoder", "lr_heads"):
            check_range(f"train.{name}", getattr(self, name), 0.0, 1.0)
        check_range("train.warmup_fraction", self.warmup_fraction, 0.0, 1.0)
        check_range("train.task_alpha", self.task_alpha, 0.0, 1.0)


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    opt_state: Any


@dataclasses.dataclass(frozen=True)
class Tokens:
    """A tokenised corpus: ids and mask (N, max_length) int32, true lengths (N,)."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    lengths: np.ndarray

    def take(self, idx: np.ndarray, pad_multiple: int) -> dict[str, np.ndarray]:
        width = int(self.lengths[idx].max()) if len(idx) else 2
        width = min(self.input_ids.shape[1], -(-width // pad_multiple) * pad_multiple)
        return {"input_ids": self.input_ids[idx, :width], "attention_mask": self.attention_mask[idx, :width]}


def tokenize(tokenizer: Any, corpus: Corpus, max_length: int) -> Tokens:
    enc = tokenizer.encode(corpus.texts, max_length=max_length, pad_to=max_length)
    return Tokens(enc["input_ids"], enc["attention_mask"], enc["attention_mask"].sum(1))


def _in_batches(n: int, size: int, lengths: np.ndarray | None = None):
    order = np.argsort(lengths, kind="stable") if lengths is not None else np.arange(n)
    for start in range(0, n, size):
        yield order[start : start + size]


def _padded(idx: np.ndarray, size: int) -> np.ndarray:
    """`idx` padded to `size` by repeating its first element (for a fixed compiled batch shape)."""
    return np.concatenate([idx, np.full(size - len(idx), idx[0], idx.dtype)]) if len(idx) < size else idx


_FEATURES: dict[tuple, tuple[Any, dict[bytes, np.ndarray]]] = {}


def extract_features(model: MultiTaskModel, encoder_params: Any, tokens: Tokens, settings: TrainSettings) -> np.ndarray:
    """Pooled encoder features (N, D) float32, deterministic (no dropout), batched by length.

    Memoised within the process per distinct token row (for given encoder parameters, model and padding):
    runs over several losses and seeds, the test set of every run, and resampled training sets (which
    repeat sentences) share one frozen encoder, so each sentence is encoded once.
    """
    key = (id(encoder_params), model, settings.pad_multiple, settings.eval_batch_size)
    cache = _FEATURES.setdefault(key, (encoder_params, {}))[1]  # the reference keeps id() valid
    ids = np.ascontiguousarray(tokens.input_ids)
    rows = ids.view(np.dtype((np.void, ids.dtype.itemsize * ids.shape[1]))).ravel()
    uniq, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    missing = np.array([i for i, r in enumerate(uniq) if r.tobytes() not in cache], np.int64)
    if len(missing):
        pick = first[missing]
        new = _extract(model, encoder_params, Tokens(ids[pick], tokens.attention_mask[pick], tokens.lengths[pick]),
                       settings)
        cache.update((uniq[i].tobytes(), f) for i, f in zip(missing, new))
    return np.stack([cache[r.tobytes()] for r in uniq])[inverse.ravel()]


@functools.cache
def _encode_fn(model: MultiTaskModel) -> Callable:
    return jax.jit(lambda p, ids, m: model.apply({"params": {"encoder": p}}, ids, m, method=MultiTaskModel.encode))


def _extract(model: MultiTaskModel, encoder_params: Any, tokens: Tokens, settings: TrainSettings) -> np.ndarray:
    fn = _encode_fn(model)
    out = np.zeros((len(tokens.lengths), model.encoder_config.hidden_size), np.float32)
    for idx in _in_batches(len(tokens.lengths), settings.eval_batch_size, tokens.lengths):
        batch = tokens.take(_padded(idx, settings.eval_batch_size), settings.pad_multiple)
        out[idx] = np.asarray(fn(encoder_params, batch["input_ids"], batch["attention_mask"]))[: len(idx)]
    return out


class BatchSchedule:
    """The batch of every step as a pure function of (seed, step): which corpus and which examples."""

    def __init__(self, sizes: Sequence[int], batch_size: int, steps: int, seed: int, alpha: float):
        self.sizes, self.batch_size, self.seed = list(sizes), batch_size, seed
        for j, n in enumerate(self.sizes):
            check(n >= batch_size, "train.batch_size", f"got {batch_size}; corpus {j} has only {n} examples")
        sampler = TaskSampler.from_sizes({str(j): n for j, n in enumerate(self.sizes)}, alpha)
        self.source = sampler.schedule(steps, seed).astype(np.int64)
        # k-th batch drawn from each source, for every step
        self.draw = np.zeros(steps, np.int64)
        seen = np.zeros(len(sizes), np.int64)
        for s, j in enumerate(self.source):
            self.draw[s] = seen[j]
            seen[j] += 1

    def __call__(self, step: int) -> tuple[int, np.ndarray]:
        j, k = int(self.source[step]), int(self.draw[step])
        per_epoch = self.sizes[j] // self.batch_size
        epoch, pos = divmod(k, per_epoch)
        perm = np.random.default_rng([self.seed, j, epoch]).permutation(self.sizes[j])
        return j, perm[pos * self.batch_size : (pos + 1) * self.batch_size]


def _labels(corpus: Corpus, idx: np.ndarray, tasks: Sequence[str]) -> dict[str, np.ndarray]:
    return {t: (corpus.labels[t][idx] if t in corpus.labels else np.full(len(idx), -1)).astype(np.int32) for t in tasks}


def _apply(model: MultiTaskModel, frozen_encoder: bool, params: Any, inputs: dict[str, jax.Array],
           rng: jax.Array | None = None) -> dict[str, jax.Array]:
    """Logits per task from token inputs or cached features; training mode (dropout) when `rng` is given."""
    train = rng is not None
    rngs = {"dropout": rng} if train else {}
    if "features" in inputs:
        return model.apply({"params": params}, inputs["features"], not train, rngs=rngs, method=MultiTaskModel.classify)
    if not frozen_encoder:
        return model.apply({"params": params}, inputs["input_ids"], inputs["attention_mask"], not train, rngs=rngs)
    # A frozen encoder never sees dropout (the cached-features path computes exactly this).
    features = model.apply({"params": params}, inputs["input_ids"], inputs["attention_mask"], True,
                           method=MultiTaskModel.encode)
    return model.apply({"params": params}, features, not train, rngs=rngs, method=MultiTaskModel.classify)


@functools.cache
def _predict_fn(model: MultiTaskModel, frozen_encoder: bool) -> Callable:
    return jax.jit(functools.partial(_apply, model, frozen_encoder))


class MultiTaskTrainer:
    """Trains a `MultiTaskModel` on one or more corpora with the configured loss per task and freezing.

    Args:
      model: the model (encoder config, tasks, head, pooling).
      params: initial parameters (`mtl.model.init_params`, with the pretrained encoder).
      sources: training corpora; each holds labels for some of the model's tasks (-1 elsewhere).
      losses: {task: loss function} (`mtl.losses.make_loss`), configured with the training counts.
      freeze: one of `mtl.freezing.FREEZING`.
      tokenizer: turns texts into ids (`mtl.encoder.Tokenizer`).
      devices: devices for the data-parallel step (default: every device, those of all processes in a
        multi-process run, `jaxnas.common.distributed`); the batch is split over them.
      cache_features: with `freeze="encoder"`, compute the encoder's features once and train the heads on
        them (default); False runs the frozen encoder in every step (same result, for checking).
    """

    def __init__(
        self,
        model: MultiTaskModel,
        params: Any,
        sources: Sequence[Corpus],
        losses: Mapping[str, LossFn],
        freeze: str,
        tokenizer: Any,
        settings: TrainSettings,
        devices: Sequence[jax.Device] | None = None,
        cache_features: bool = True,
    ):
        settings.validate()
        self.model, self.settings, self.freeze, self.tokenizer = model, settings, freeze, tokenizer
        self.tasks = tuple(name for name, _ in model.tasks)
        check(set(losses) == set(self.tasks), "loss", f"need one loss per task {self.tasks}, got {sorted(losses)}")
        self.losses = dict(losses)
        self.sources = list(sources)
        self.devices = list(devices or jax.devices())  # several processes: all of theirs (the batch split over them)
        check(settings.batch_size % len(self.devices) == 0, "train.batch_size",
              f"got {settings.batch_size}; allowed: a multiple of the number of devices ({len(self.devices)})")
        self.mesh = Mesh(np.array(self.devices), ("data",))
        self.features_mode = freeze == "encoder" and cache_features
        self.frozen_encoder = freeze == "encoder"
        self.encoder_params = params["encoder"]
        self.initial_params = {k: v for k, v in params.items() if k != "encoder"} if self.features_mode else params
        self.trainable = freezing.trainable_count(params, freeze)
        self.total_params = int(sum(x.size for x in jax.tree.leaves(params)))
        warmup = int(round(settings.warmup_fraction * settings.steps))
        self.tx = freezing.make_optimizer(
            self.initial_params, "none" if self.features_mode else freeze, lr_encoder=settings.lr_encoder,
            lr_heads=settings.lr_heads, weight_decay=settings.weight_decay, warmup_steps=warmup,
            total_steps=settings.steps, l1=settings.l1,
        )
        self.schedule = BatchSchedule([len(c) for c in self.sources], settings.batch_size, settings.steps,
                                      settings.seed, settings.task_alpha)
        self._inputs = [self._prepare_inputs(c) for c in self.sources]
        self._step = self._build_step()
        self._logits = functools.partial(_apply, model, self.frozen_encoder)
        self._predict = _predict_fn(model, self.frozen_encoder)

    # ------------------------------------------------------------------ inputs
    def _prepare_inputs(self, corpus: Corpus) -> Tokens | np.ndarray:
        tokens = tokenize(self.tokenizer, corpus, self.settings.max_length)
        if self.features_mode:
            return extract_features(self.model, self.encoder_params, tokens, self.settings)
        return tokens

    def _batch_inputs(self, inputs: Tokens | np.ndarray, idx: np.ndarray) -> dict[str, np.ndarray]:
        if isinstance(inputs, Tokens):
            return inputs.take(idx, self.settings.pad_multiple)
        return {"features": inputs[idx]}

    # ------------------------------------------------------------------ the step
    def _build_step(self) -> Callable:
        tasks, losses, tx = self.tasks, self.losses, self.tx

        def local_step(state: TrainState, inputs: dict, labels: dict, key: jax.Array):
            rng = jax.random.fold_in(jax.random.fold_in(key, state.step), jax.lax.axis_index("data"))

            def loss_fn(params):
                logits = self._logits(params, inputs, rng)
                total, per_task = 0.0, {}
                for t in tasks:
                    share, count = losses[t](logits[t], labels[t], (labels[t] >= 0).astype(jnp.float32))
                    count = jax.lax.stop_gradient(jax.lax.psum(count, "data"))
                    per_task[t] = weighted_mean(share, count)  # this device's share of the global mean
                    total = total + per_task[t]
                return total, per_task

            (loss, per_task), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
            grads = jax.lax.psum(grads, "data")
            loss = jax.lax.psum(loss, "data")
            per_task = jax.lax.psum(per_task, "data")
            updates, opt_state = tx.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
            finite = jnp.isfinite(loss) & jnp.all(
                jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
            new = TrainState(state.step + 1, params, opt_state)
            new = tree_where(finite, new, state)
            return new, {"loss": loss, "finite": finite, **{f"loss_{t}": v for t, v in per_task.items()}}

        step = jax.shard_map(local_step, mesh=self.mesh, in_specs=(P(), P("data"), P("data"), P()),
                             out_specs=(P(), P()), check_vma=False)
        return jax.jit(step, donate_argnums=(0,))

    # ------------------------------------------------------------------ public API
    def init_state(self) -> TrainState:
        params = jax.tree.map(jnp.array, self.initial_params)  # a copy: the state's buffers are donated
        return distributed.place(TrainState(jnp.zeros([], jnp.int32), params, self.tx.init(params)), self.mesh, P())

    def batch(self, step: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        j, idx = self.schedule(step)
        return self._batch_inputs(self._inputs[j], idx), _labels(self.sources[j], idx, self.tasks)

    def train(
        self,
        key: jax.Array,
        *,
        workdir: str | None = None,
        stop_at: int | None = None,
        progress: bool = False,
        settings_meta: Mapping[str, Any] | None = None,
        metrics_path: str | None = None,
        desc: str = "MTL",
    ) -> tuple[TrainState, list[dict[str, float]]]:
        """Runs (or resumes) training to `settings.steps` (or `stop_at`); returns the state and the history.

        Through `jaxnas.common.loop.run_loop`: with `workdir`, checkpoints every `checkpoint_every` steps and at
        the end and resumes from the latest, refusing one made with other settings (the training settings, the
        freezing, the key and `settings_meta`, e.g. the corpora's content). `progress` shows a bar named `desc`;
        `metrics_path` receives one JSON line per step.
        """
        state = self.init_state()
        meta = {"train": dataclasses.asdict(self.settings), "freeze": self.freeze,
                "key": np.asarray(jax.random.key_data(key)).tolist(), **(settings_meta or {})}
        placed_key = distributed.place(key, self.mesh, P())

        def step(s: int, st: TrainState) -> tuple[TrainState, dict[str, float]]:
            batch = self.batch(s)
            t0 = time.perf_counter()  # the step alone (with its transfer), as the freezing study's have always been
            inputs, labels = distributed.place(batch, self.mesh, P("data"))
            st, metrics = self._step(st, inputs, labels, placed_key)
            metrics = {k: float(v) for k, v in metrics.items()}
            return st, {**metrics, "seconds": time.perf_counter() - t0}

        out = run_loop(step, state, end=min(stop_at or self.settings.steps, self.settings.steps), settings=meta,
                       checkpoint_dir=workdir, metrics_path=metrics_path,
                       checkpoint_every=self.settings.checkpoint_every,
                       place=lambda st: distributed.place(st, self.mesh, P()),
                       progress=progress, desc=desc, label="MTL training",
                       hint="a loss or a gradient is not finite; lower train.lr_encoder / train.lr_heads")
        return out.state, out.history

    def predict(self, params: Any, corpus: Corpus) -> dict[str, np.ndarray]:
        """Logits per task (N, C_t) of the model in evaluation mode (each process computes them all)."""
        params = distributed.local(params)
        tokens = tokenize(self.tokenizer, corpus, self.settings.max_length)
        inputs = extract_features(self.model, self.encoder_params, tokens, self.settings) if self.features_mode \
            else tokens
        size = self.settings.eval_batch_size
        out = {t: np.zeros((len(corpus), n), np.float32) for t, n in self.model.tasks}
        for idx in _in_batches(len(corpus), size, tokens.lengths):
            logits = self._predict(params, self._batch_inputs(inputs, _padded(idx, size)))
            for t in out:
                out[t][idx] = np.asarray(logits[t])[: len(idx)]
        return out

    def full_params(self, params: Any) -> Any:
        """Parameters of the whole model (the frozen encoder added back in features mode)."""
        return {"encoder": self.encoder_params, **params} if self.features_mode else params

