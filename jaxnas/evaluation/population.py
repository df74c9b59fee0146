"""The population training engine: train and score many candidate architectures in one compiled call.

A chunk of candidates is one `jax.jit` program: the candidate axis is split over all devices with
`shard_map` (candidates are independent, so no collective is needed), and each candidate runs its whole
training as a `lax.scan` of SGD steps followed by evaluation. Populations larger than a chunk go through
the same compiled program chunk after chunk, so peak memory is bounded by the chunk size whatever the
population size.

How a device runs its candidates (`execution`): on a CPU one after another (`lax.map`), each network
computing only the ops its architecture chose (`jaxnas.models.dispatch`, real `lax.switch` branches), since
one candidate's batch already fills the cores; on accelerators all at once (`vmap`), the network in its
vectorisable form. Both give the same candidate to float tolerance (tests/test_dispatch.py).

Every candidate sees the same sequence of mini-batches (epoch permutations from one data key), and its
initial weights come from `fold_in(seed key, candidate id)`, so a candidate's result does not depend
on which chunk or device it ran on: sharded equals unsharded and chunked equals unchunked.

Training defaults follow the NAS-Bench-201 recipe (Dong & Yang 2020, Sec. 2.3): SGD with Nesterov
momentum 0.9, weight decay 5e-4 (coupled, as PyTorch's SGD), learning rate 0.1 with cosine annealing,
cross-entropy loss. Only the length of training differs (a few hundred steps on small data, not 200
epochs on CIFAR-10).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxnas.common.distributed import gather_rows, share
from jaxnas.common.errors import check, check_choice, check_positive
from jaxnas.models.dispatch import DISPATCH_FOR_EXECUTION, with_dispatch
from jaxnas.problems.classification import Classification


EXECUTIONS = ("auto", "map", "vmap")


OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "step")


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """How each candidate is trained (defaults: NAS-Bench-201's optimiser, a short schedule).

    `optimizer`: "sgd" (Nesterov momentum, NAS-Bench-201) or "adam" (MetaQNN; `momentum` is then unused); weight
    decay is coupled (added to the gradient, as PyTorch's SGD and Caffe do). `schedule`: "cosine" annealing to 0
    over the training, or "step": the rate times `decay_factor` every `decay_steps` steps (MetaQNN: 0.2 every 5
    epochs). `restarts` > 0: MetaQNN's restarts (Baker et al. 2017, Sec. 4.2; published `INITIAL_LEARNING_RATES`,
    `ACC_THRESHOLD`): after `restart_check_steps` steps a candidate whose validation metric is not above
    `restart_threshold` (in the objective's units: an accuracy fraction for classification) is trained again from a new
    initialisation with the learning rate times `restart_factor`, at most `restarts` times; the last attempt is
    kept whatever its score.
    """

    steps: int = 200
    batch_size: int = 64
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    optimizer: str = "sgd"
    schedule: str = "cosine"
    decay_steps: int = 0
    decay_factor: float = 0.2
    restarts: int = 0
    restart_factor: float = 0.4
    restart_check_steps: int = 0
    restart_threshold: float = 0.0

    def __post_init__(self):
        check_positive("steps", self.steps, integer=True)
        check_positive("batch_size", self.batch_size, integer=True)
        check_positive("learning_rate", self.learning_rate)
        check(0 <= self.momentum < 1, "momentum", f"got {self.momentum}; allowed: in [0, 1)")
        check(self.weight_decay >= 0, "weight_decay", f"got {self.weight_decay}; allowed: >= 0")
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        check(self.schedule != "step" or (isinstance(self.decay_steps, int) and self.decay_steps >= 1), "decay_steps",
              f"got {self.decay_steps!r}; allowed: an integer >= 1 with schedule='step'")
        check(0 < self.decay_factor <= 1, "decay_factor", f"got {self.decay_factor}; allowed: in (0, 1]")
        check(isinstance(self.restarts, int) and self.restarts >= 0, "restarts",
              f"got {self.restarts!r}; allowed: an integer >= 0")
        check(0 < self.restart_factor <= 1, "restart_factor", f"got {self.restart_factor}; allowed: in (0, 1]")
        check(self.restarts == 0 or (isinstance(self.restart_check_steps, int) and 1 <= self.restart_check_steps < self.steps),
              "restart_check_steps", f"got {self.restart_check_steps!r}; allowed: an integer in [1, steps={self.steps}) "
              f"when restarts > 0")

    def make_optimizer(self, total_steps: int | None = None) -> optax.GradientTransformation:
        if self.schedule == "step":
            schedule = optax.exponential_decay(self.learning_rate, self.decay_steps, self.decay_factor, staircase=True)
        else:
            schedule = optax.cosine_decay_schedule(self.learning_rate, total_steps or self.steps)
        if self.optimizer == "adam":
            return optax.chain(optax.add_decayed_weights(self.weight_decay), optax.adam(schedule))
        return optax.chain(optax.add_decayed_weights(self.weight_decay),
                           optax.sgd(schedule, momentum=self.momentum, nesterov=True))


@struct.dataclass
class Data:
    """Device-resident splits (replicated on every device). Inputs (N, H, W, C) float32; targets int32 labels (N,), or
    any pytree of arrays with a leading example axis (a detector's boxes, labels and valid masks)."""

    train_x: jax.Array
    train_y: jax.Array
    valid_x: jax.Array
    valid_y: jax.Array
    test_x: jax.Array
    test_y: jax.Array

    @classmethod
    def from_dataset(cls, ds: Any) -> "Data":
        fields = ("train_x", "train_y", "valid_x", "valid_y", "test_x", "test_y")
        return cls(*(jax.tree.map(jnp.asarray, getattr(ds, f)) for f in fields))


@struct.dataclass
class Candidate:
    """One candidate's training state (a population has a leading axis on every leaf)."""

    params: Any
    batch_stats: Any
    opt_state: Any
    step: jax.Array  # () int32


@struct.dataclass
class Scores:
    """Per-candidate results, each with a leading population axis (numpy on the host)."""

    valid_acc: np.ndarray  # (P,) the objective's metric (classification: accuracy, a fraction)
    test_acc: np.ndarray  # (P,) the same on the test split, reported only
    valid_loss: np.ndarray  # (P,)
    train_loss: np.ndarray  # (P, steps): the learning curve
    diverged: np.ndarray  # (P,) bool: a non-finite loss appeared; such a candidate's accuracy is NaN
    restarts: np.ndarray  # (P,) int32: restarts used (TrainSettings.restarts; 0 without)


def take_rows(tree: Any, idx: jax.Array) -> Any:
    """The rows `idx` of every leaf of `tree` (targets may be a pytree, e.g. a detector's boxes and labels)."""
    return jax.tree.map(lambda a: a[idx], tree)


def batch_indices(data_key: jax.Array, step: jax.Array, n: int, batch_size: int) -> jax.Array:
    """Mini-batch `step` of epoch-wise random permutations of n examples (drop-last)."""
    per_epoch = n // batch_size
    epoch, pos = step // per_epoch, step % per_epoch
    perm = jax.random.permutation(jax.random.fold_in(data_key, epoch), n)
    return jax.lax.dynamic_slice_in_dim(perm, pos * batch_size, batch_size)


class PopulationTrainer:
    """Trains and scores populations of architectures for a network `model(x, arch, train)`.

    Args:
      model: a Flax module called as `model.apply(variables, x, arch, train=...)`.
      data: an `ImageDataset`-like object (train/valid/test arrays).
      settings: how each candidate is trained.
      chunk_size: candidates per compiled call (bounds memory); rounded up to a multiple of the devices.
      devices: devices to split candidates over (default: all).
      post_update: `f(params, step) -> params` applied after every update (e.g. a pruner).
      objective: what candidates train on and are scored by: `loss(outputs, targets)` (a scalar to minimise)
        and `metric(outputs, targets)` (a scalar to maximise, reported as the validation / test score);
        default `Classification()`: cross-entropy, top-1 accuracy as a fraction.
      execution: how a chunk's candidates run on a device: `"map"` one after another (`lax.map`), each
        network computing only its architecture's ops (`jaxnas.models.dispatch`, `"switch"`); `"vmap"` all at
        once, the network in its vectorisable form (`"select"`); `"auto"` (default): `"map"` on CPU, where
        one candidate already fills the cores, `"vmap"` on accelerators. Results agree to float tolerance.
    """

    def __init__(self, model: Any, data: Any, settings: TrainSettings = TrainSettings(), chunk_size: int = 8,
                 devices: list[jax.Device] | None = None,
                 post_update: Callable[[Any, jax.Array], Any] | None = None, objective: Any = Classification(),
                 execution: str = "auto"):
        check_positive("chunk_size", chunk_size, integer=True)
        check_choice("execution", execution, EXECUTIONS)
        self.settings, self.post_update, self.objective = settings, post_update, objective
        self.devices = list(devices) if devices is not None else jax.local_devices()
        if execution == "auto":
            execution = "map" if self.devices[0].platform == "cpu" else "vmap"
        self.execution = execution
        self.model = with_dispatch(model, DISPATCH_FOR_EXECUTION[execution])
        n_dev = len(self.devices)
        self.chunk_size = -(-chunk_size // n_dev) * n_dev
        check(data.train_x.shape[0] >= settings.batch_size, "batch_size",
              f"got {settings.batch_size}; the training split has only {data.train_x.shape[0]} examples")
        mesh = Mesh(np.array(self.devices), ("pop",))
        self._pop, self._rep = NamedSharding(mesh, PartitionSpec("pop")), NamedSharding(mesh, PartitionSpec())
        self.data = jax.device_put(Data.from_dataset(data), self._rep)
        self.traces = 0
        self._score_chunk = self._compile(self._train_and_score, n_pop_args=2, n_rep_args=2)

    # --- one candidate ------------------------------------------------------------------------
    def init_candidate(self, key: jax.Array, arch: jax.Array, data: Data, total_steps: int | None = None) -> Candidate:
        variables = self.model.init(key, data.train_x[:1], arch, train=True)
        params = variables["params"]
        return Candidate(params=params, batch_stats=variables.get("batch_stats", {}),
                         opt_state=self.settings.make_optimizer(total_steps).init(params), step=jnp.zeros((), jnp.int32))

    def train_candidate(self, cand: Candidate, arch: jax.Array | Callable[[jax.Array], jax.Array], data: Data,
                        data_key: jax.Array, steps: int, total_steps: int | None = None,
                        lr_scale: jax.Array | float = 1.0) -> tuple[Candidate, jax.Array]:
        """`steps` SGD steps; returns the new state and the per-step training loss (steps,).

        `lr_scale` multiplies every update (the learning rate of a restarted attempt; a traced value is fine).

        `arch` is an architecture, or a function of the step number giving one (a one-shot supernet
        samples a new path every step). The trainer's `post_update`, if any, maps the parameters after
        every update (e.g. magnitude pruning).
        """
        opt = self.settings.make_optimizer(total_steps)
        n, bs = data.train_x.shape[0], self.settings.batch_size

        def loss_fn(params, batch_stats, x, y, arch):
            logits, updates = self.model.apply({"params": params, "batch_stats": batch_stats}, x, arch, train=True,
                                               mutable=["batch_stats"])
            return self.objective.loss(logits, y), updates["batch_stats"]

        def step(c: Candidate, _):
            idx = batch_indices(data_key, c.step, n, bs)
            a = arch(c.step) if callable(arch) else arch
            (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(c.params, c.batch_stats,
                                                                             data.train_x[idx], take_rows(data.train_y, idx), a)
            updates, opt_state = opt.update(grads, c.opt_state, c.params)
            if not (isinstance(lr_scale, float) and lr_scale == 1.0):
                updates = jax.tree.map(lambda u: u * lr_scale, updates)
            params = optax.apply_updates(c.params, updates)
            if self.post_update is not None:
                params = self.post_update(params, c.step)
            ok = jnp.isfinite(loss)  # never train on garbage: a non-finite loss freezes the candidate
            new = Candidate(params=params, batch_stats=stats, opt_state=opt_state, step=c.step + 1)
            new = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, c)
            return new.replace(step=c.step + 1), loss

        return jax.lax.scan(step, cand, None, length=steps)

    def evaluate_candidate(self, cand: Candidate, arch: jax.Array, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The objective's metric (accuracy, a fraction, by default) and its loss on (x, y), with running BN
        statistics."""
        logits = self.model.apply({"params": cand.params, "batch_stats": cand.batch_stats}, x, arch, train=False)
        return self.objective.metric(logits, y), self.objective.loss(logits, y)

    def _train_from_scratch(self, key: jax.Array, arch: jax.Array, data: Data, data_key: jax.Array):
        """A new candidate trained for `settings.steps` steps -> (candidate, losses (steps,), restarts used).

        With `settings.restarts`, attempt a (0, 1, ...) starts from `fold_in(key, a)` at the learning rate times
        `restart_factor**a`; an attempt continues past `restart_check_steps` once its validation metric is above
        `restart_threshold`, or when it is the last one allowed. The losses are those of the kept attempt."""
        st = self.settings
        if st.restarts == 0:
            cand = self.init_candidate(key, arch, data)
            cand, losses = self.train_candidate(cand, arch, data, data_key, st.steps)
            return cand, losses, jnp.zeros((), jnp.int32)

        def attempt(a):
            cand = self.init_candidate(jax.random.fold_in(key, a), arch, data)
            scale = jnp.float32(st.restart_factor) ** a
            cand, head = self.train_candidate(cand, arch, data, data_key, st.restart_check_steps, lr_scale=scale)
            score, _ = self.evaluate_candidate(cand, arch, data.valid_x, data.valid_y)
            return cand, head, score > st.restart_threshold

        def retry(carry):
            a = carry[0] + 1
            return (a, *attempt(a))

        # the first attempt runs inside the loop too (a = -1 -> 0), so an attempt is traced and compiled once
        shapes = jax.eval_shape(self.init_candidate, key, arch, data)
        blank = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
        start = (jnp.full((), -1, jnp.int32), blank, jnp.zeros((st.restart_check_steps,), jnp.float32),
                 jnp.zeros((), bool))
        a, cand, head, _ = jax.lax.while_loop(lambda c: (c[0] < 0) | (~c[3] & (c[0] < st.restarts)), retry, start)
        cand, tail = self.train_candidate(cand, arch, data, data_key, st.steps - st.restart_check_steps,
                                          lr_scale=jnp.float32(st.restart_factor) ** a)
        return cand, jnp.concatenate([head, tail]), a

    def _train_and_score(self, keys: jax.Array, archs: jax.Array, data: Data, data_key: jax.Array):
        self.traces += 1

        def one(key, arch):
            cand, losses, restarts = self._train_from_scratch(key, arch, data, data_key)
            valid_acc, valid_loss = self.evaluate_candidate(cand, arch, data.valid_x, data.valid_y)
            test_acc, _ = self.evaluate_candidate(cand, arch, data.test_x, data.test_y)
            diverged = ~jnp.all(jnp.isfinite(losses))
            nan = jnp.float32(jnp.nan)
            return (jnp.where(diverged, nan, valid_acc), jnp.where(diverged, nan, test_acc),
                    jnp.where(diverged, nan, valid_loss), losses, diverged, restarts)

        return self.over_population(one, keys, archs)

    def over_population(self, fn: Callable, *pop_args: Any) -> Any:
        """`fn` applied to every candidate of `pop_args` (leading axis): `lax.map` or `vmap` per `execution`."""
        if self.execution == "vmap":
            return jax.vmap(fn)(*pop_args)
        return jax.lax.map(lambda args: fn(*args), pop_args)

    def _compile(self, fn: Callable, n_pop_args: int, n_rep_args: int) -> Callable:
        """jit(fn) with the first `n_pop_args` split over devices along axis 0 and the rest replicated."""
        if len(self.devices) > 1:
            pop, rep = PartitionSpec("pop"), PartitionSpec()
            # check_vma=False: the hand-written conv backward returns an input cotangent that varies over
            # candidates even where the input (the replicated data) does not; the value is unused.
            fn = jax.shard_map(fn, mesh=self._pop.mesh, in_specs=(pop,) * n_pop_args + (rep,) * n_rep_args,
                               out_specs=pop, check_vma=False)
        return jax.jit(fn)

    # --- populations --------------------------------------------------------------------------
    def candidate_keys(self, seed: int, ids: np.ndarray) -> jax.Array:
        """Initialisation key of each candidate id: independent of chunking and devices."""
        base = jax.random.key(seed)
        return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.asarray(ids, jnp.uint32))

    def compiled_init(self, total_steps: int | None = None) -> Callable:
        """Compiled `init(keys, archs, data) -> candidates` for chunks (use with `run_chunked`)."""
        return self._compile(lambda keys, archs, data: self.over_population(
            lambda k, a: self.init_candidate(k, a, data, total_steps=total_steps), keys, archs), n_pop_args=2, n_rep_args=1)

    def compiled_advance(self, total_steps: int | None = None) -> Callable:
        """Compiled `advance(candidates, archs, data, data_key, delta) -> (candidates, valid_acc)`: `delta` more
        steps (a traced count, so every length shares one program), then validation accuracy."""
        def advance(states, archs, data, data_key, delta):
            def one(c: Candidate, a):
                c = jax.lax.fori_loop(0, delta, lambda _, c: self.train_candidate(c, a, data, data_key, 1,
                                                                                  total_steps=total_steps)[0], c)
                return c, self.evaluate_candidate(c, a, data.valid_x, data.valid_y)[0]
            return self.over_population(one, states, archs)

        return self._compile(advance, n_pop_args=2, n_rep_args=3)

    def run_chunked(self, fn: Callable, pop_args: tuple, rep_args: tuple = ()) -> Any:
        """Applies a compiled `fn(*pop_args, *rep_args)` chunk by chunk over the leading (population) axis
        of `pop_args` (pytrees), padding the last chunk; returns the outputs concatenated on the host."""
        total = jax.tree.leaves(pop_args)[0].shape[0]
        parts = []
        for start in range(0, total, self.chunk_size):
            def take(a, start=start):
                a = a[start:start + self.chunk_size]
                pad = self.chunk_size - a.shape[0]  # pad with copies of the last row; dropped below
                return a if pad == 0 else jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)])

            chunk = jax.tree.map(take, pop_args)
            real = min(self.chunk_size, total - start)
            out = fn(*jax.device_put(chunk, self._pop), *jax.device_put(rep_args, self._rep))
            parts.append(jax.tree.map(lambda o: np.asarray(o)[:real], out))
        return jax.tree.map(lambda *xs: np.concatenate(xs), *parts)

    def score(self, archs: np.ndarray | jax.Array, seed: int = 0, first_id: int = 0, data: Any | None = None) -> Scores:
        """Trains every architecture (P, L) from scratch and scores it; chunked, sharded, one compile per input shape.

        `first_id` numbers the candidates (their init keys), so a search can give every evaluation its own
        initialisation while staying reproducible. `data` (an `ImageDataset`-like object, default the trainer's)
        lets one trainer score on other inputs, e.g. the same images at another resolution when the input size
        is searched: the compiled program is reused for every call with the same shapes and compiled once more
        for each new shape.
        """
        archs = np.asarray(archs, np.int32)
        check(archs.ndim == 2, "archs", f"expected shape (P, num_positions), got {archs.shape}")
        total = archs.shape[0]
        # several processes (jaxnas.common.distributed): each trains its share on its own devices, then all rows
        # are gathered on every process; a candidate's result does not depend on where it trained (keys by id)
        own = share(total) if jax.process_count() > 1 else np.arange(total)
        mine = own if len(own) else np.zeros(1, np.int64)  # a process with no share trains a copy it drops
        keys = self.candidate_keys(seed, first_id + mine)
        out = self.run_chunked(self._score_chunk, (keys, archs[mine]), (self.device_data(data), self.data_key(seed)))
        if jax.process_count() > 1:
            out = gather_rows(jax.tree.map(lambda o: o[:len(own)], out), total)
        return Scores(*out)

    def device_data(self, data: Any | None = None) -> Data:
        """`data` (default: the trainer's) as replicated device arrays; checked against the batch size."""
        if data is None:
            return self.data
        check(data.train_x.shape[0] >= self.settings.batch_size, "batch_size",
              f"got {self.settings.batch_size}; the training split has only {data.train_x.shape[0]} examples")
        return jax.device_put(data if isinstance(data, Data) else Data.from_dataset(data), self._rep)

    @staticmethod
    def data_key(seed: int) -> jax.Array:
        """The key of the mini-batch sequence every candidate of a run sees."""
        return jax.random.fold_in(jax.random.key(seed), 2**31 - 1)
