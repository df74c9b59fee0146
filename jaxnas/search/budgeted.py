"""Budgeted search on a tabular benchmark: the NAS-Bench-201 protocol (Dong & Yang, ICLR 2020, Sec. 5), for any `Table`.

Each search run has a simulated wall-clock budget (or, for a table without training times, a number of
evaluations: each then costs 1). It asks its strategy for an architecture, pays the
evaluation's simulated cost, and tells the strategy the validation accuracy. An evaluation that would
push the total past the budget is discarded and ends the run (as in the paper's `R_EA.py`/`RANDOM.py`:
`if total + cost > budget: stop`). The run's answer is the architecture with the best validation
accuracy among all evaluations it made; its test accuracy is reported, never used to choose.
Deviation: the paper's code also charges the host's own sampling time; we charge only evaluations.

All runs of one strategy go through one jit-compiled function: a `lax.scan` over `chunk_steps` search
steps of a block of runs (vmapped; blocks one after another), a step skipped (`lax.cond`) once every run of its
block has spent its budget, and sharded over devices with `shard_map` when several are present. The
host calls it chunk after chunk (`jaxnas.common.loop.run_loop`) until every run has spent its budget,
checkpointing in between, so a
killed search resumes and ends exactly where an uninterrupted one does (per-step keys are
`fold_in(run_key, step)`, independent of chunking).
"""

from __future__ import annotations

import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxnas.common.checkpoint import fingerprint
from jaxnas.common.distributed import gather_rows, share
from jaxnas.common.errors import check, check_positive
from jaxnas.common.loop import described, run_loop
from jaxnas.problems.tabular import Table
from jaxnas.common.tree import tree_where
from jaxnas.strategies.base import Strategy

# What a budget, a run count or a chunk may plan (a typo such as budget_s=1e12 once planned ~960 million
# chunks): evaluations per run (budget / the table's cheapest evaluation), runs, steps per compiled chunk, and
# the history the host keeps (runs x planned steps, three float32 and a bool each: 1.3 GB at most).
MAX_EVALUATIONS_PER_RUN = 100_000
MAX_RUNS = 100_000
MAX_CHUNK_STEPS = 100_000
MAX_HISTORY_STEPS = 100_000_000
DEFAULT_BLOCK_RUNS = 20  # runs vmapped together unless the strategy says otherwise (see BudgetedSearch)


@struct.dataclass
class RunCarry:
    """The state of one search run between steps (vmapped: every field gets a leading runs axis)."""

    strategy: Any
    step: jax.Array  # () int32 search steps taken
    elapsed: jax.Array  # () float32 simulated seconds spent on counted evaluations
    done: jax.Array  # () bool: the budget is spent
    num_evals: jax.Array  # () int32 counted evaluations
    best_valid: jax.Array  # () float32
    best_test: jax.Array  # () float32
    best_index: jax.Array  # () int32 benchmark index of the best architecture
    best_arch: jax.Array  # (L,) int32


@struct.dataclass
class StepRecord:
    """What each step leaves in the history (for best-so-far curves)."""

    elapsed: jax.Array
    best_valid: jax.Array
    best_test: jax.Array
    counted: jax.Array  # bool: the step's evaluation fitted in the budget


@struct.dataclass
class SearchResult:
    """Final per-run values (leading axis: runs) and the per-step history (runs, steps)."""

    best_valid: np.ndarray
    best_test: np.ndarray
    best_index: np.ndarray
    best_arch: np.ndarray
    num_evals: np.ndarray
    elapsed: np.ndarray
    history: StepRecord
    wall_s: float
    resumed_from_step: int | None = None


class BudgetedSearch:
    """Runs `runs` independent searches of one strategy against a table under a simulated budget.

    Args:
      strategy: any ask/tell strategy (see `jaxnas.strategies`).
      table: the benchmark table; its `query` supplies validation/test accuracy and cost.
      budget_s: the budget of each run in the table's cost unit: NAS-Bench-201 charges simulated seconds (the
        paper's budget is 12,000), NAS-Bench-Macro 1 per evaluation.
      chunk_steps: search steps per compiled call; checkpoints are written between chunks.
      devices: devices to shard runs over (default: all local devices).
      budget_field: the setting that holds the budget, for error messages (`budget_s`, `macro.budget`).
      block_runs: runs vmapped together; blocks run one after another (`lax.map`) on each device.
        Small blocks keep per-run state (e.g. 500 REINFORCE controllers and their Adam moments) in
        cache: on the 2-core CPU, 20 made REINFORCE's search loop 3x faster than one 500-wide vmap.
        None: one block per device. "strategy" (default): the strategy's `block_runs` attribute if it has
        one (Q-learning: 100), else 20.
    """

    def __init__(self, strategy: Strategy, table: Table, budget_s: float = 12_000.0, chunk_steps: int = 64,
                 devices: list[jax.Device] | None = None, block_runs: int | str | None = "strategy",
                 budget_field: str = "budget_s"):
        check_positive(budget_field, budget_s)
        check(math.isfinite(budget_s), budget_field, f"got {budget_s!r}; allowed: a finite number > 0")
        check_positive("chunk_steps", chunk_steps, integer=True)
        check(chunk_steps <= MAX_CHUNK_STEPS, "chunk_steps", f"got {chunk_steps}; allowed: at most {MAX_CHUNK_STEPS:,}")
        min_cost = float(table.min_cost)
        check(math.isfinite(min_cost) and min_cost > 0, "table",
              f"its cheapest evaluation costs {min_cost!r}; every cost must be a finite number > 0")
        planned = math.floor(float(budget_s) / min_cost)  # evaluations that fit in the budget at most
        check(planned <= MAX_EVALUATIONS_PER_RUN, budget_field,
              f"got {budget_s:g}; that plans up to {planned:,} evaluations per run (the budget / the table's cheapest "
              f"evaluation, {min_cost:g}); allowed: at most {MAX_EVALUATIONS_PER_RUN:,} evaluations per run, a budget "
              f"<= {MAX_EVALUATIONS_PER_RUN * min_cost:,g}")
        self.strategy = strategy
        self.table = table
        self.budget_s = float(budget_s)
        self.chunk_steps = int(chunk_steps)
        if block_runs == "strategy":
            block_runs = getattr(strategy, "block_runs", DEFAULT_BLOCK_RUNS)
        if block_runs is not None:
            check_positive("block_runs", block_runs, integer=True)
        self.block_runs = block_runs
        # Every counted evaluation costs at least min_cost, and the first one that does not fit ends the
        # run, so no run takes more than this many steps.
        self.max_steps = (planned + 1) // strategy.batch_size + 1
        self.devices = list(devices) if devices is not None else jax.local_devices()
        self._chunk = self._build_chunk()
        self.traces = 0  # how often the chunk function was traced (tests assert it is 1)

    # --- one run -----------------------------------------------------------------------------
    def _init_run(self, key: jax.Array) -> RunCarry:
        length = self.strategy.space.num_positions
        return RunCarry(
            strategy=self.strategy.init(jax.random.fold_in(key, 0)),
            step=jnp.zeros((), jnp.int32), elapsed=jnp.zeros((), jnp.float32), done=jnp.zeros((), bool),
            num_evals=jnp.zeros((), jnp.int32), best_valid=jnp.full((), -jnp.inf, jnp.float32),
            best_test=jnp.full((), jnp.nan, jnp.float32), best_index=jnp.full((), -1, jnp.int32),
            best_arch=jnp.zeros((length,), jnp.int32),
        )

    def _step(self, table: Table, key: jax.Array, carry: RunCarry) -> tuple[RunCarry, StepRecord]:
        step_key = jax.random.fold_in(jax.random.fold_in(key, 1), carry.step)
        archs, asked_state = self.strategy.ask(step_key, carry.strategy)  # (B, L)
        ev = table.query(archs)  # fields (B,)
        total = carry.elapsed + jnp.sum(ev.cost)
        counted = (~carry.done) & (total <= self.budget_s)  # the whole batch fits, or none of it counts
        told_state, _ = self.strategy.tell(asked_state, archs, ev.valid)
        b = jnp.argmax(ev.valid)  # best of the batch; ties: first
        improved = counted & (ev.valid[b] > carry.best_valid)
        new = RunCarry(
            strategy=tree_where(counted, told_state, carry.strategy),
            step=carry.step + 1,
            elapsed=jnp.where(counted, total, carry.elapsed),
            done=carry.done | ~counted,
            num_evals=carry.num_evals + jnp.where(counted, archs.shape[0], 0),
            best_valid=jnp.where(improved, ev.valid[b], carry.best_valid),
            best_test=jnp.where(improved, ev.test[b], carry.best_test),
            best_index=jnp.where(improved, ev.index[b], carry.best_index),
            best_arch=jnp.where(improved, archs[b], carry.best_arch),
        )
        return new, StepRecord(new.elapsed, new.best_valid, new.best_test, counted)

    def _run_chunk(self, table: Table, keys: jax.Array, carry: RunCarry) -> tuple[RunCarry, StepRecord]:
        self.traces += 1

        step = jax.vmap(lambda key, c: self._step(table, key, c))

        def finished(c):  # what a step does to runs that are all done: it only counts the step
            return c.replace(step=c.step + 1), StepRecord(c.elapsed, c.best_valid, c.best_test, jnp.zeros_like(c.done))

        def block_steps(keys, c):  # steps outside the vmap, so that a block whose runs are all done skips the work
            c, rec = jax.lax.scan(lambda c, _: jax.lax.cond(jnp.all(c.done), finished, lambda c: step(keys, c), c),
                                  c, None, length=self.chunk_steps)
            return c, jax.tree.map(lambda x: jnp.moveaxis(x, 0, 1), rec)  # records (runs, chunk)

        runs = keys.shape[0]  # runs on this device
        block = min(self.block_runs or runs, runs)
        if runs % block:
            raise ValueError(f"runs per device ({runs}) must be a multiple of block_runs ({block})")
        split = lambda x: x.reshape((runs // block, block) + x.shape[1:])  # noqa: E731
        merge = lambda x: x.reshape((runs,) + x.shape[2:])  # noqa: E731
        out = jax.lax.map(lambda kc: block_steps(*kc), (split(keys), jax.tree.map(split, carry)))
        return jax.tree.map(merge, out)  # carry fields (R, ...), record fields (R, chunk)

    def _build_chunk(self):
        mesh = Mesh(np.array(self.devices), ("runs",))
        runs, rep = PartitionSpec("runs"), PartitionSpec()
        # Inputs are placed explicitly, so the first call and every later one (whose carry comes out of
        # the previous call) see the same shardings and share one trace.
        self._run_sharding, self._replicated = NamedSharding(mesh, runs), NamedSharding(mesh, rep)
        fn = self._run_chunk
        if len(self.devices) > 1:  # runs are independent: shard_map, no collectives
            fn = jax.shard_map(fn, mesh=mesh, in_specs=(rep, runs, runs), out_specs=(runs, runs))
        return jax.jit(fn, donate_argnums=(2,))

    # --- many runs ----------------------------------------------------------------------------
    def run_keys(self, seed: int, runs: int, ids: np.ndarray | None = None) -> jax.Array:
        """One key per run of `ids` (default: all `runs`), padded to fill every device's blocks (padding runs are
        discarded). A run's key depends on its index only, not on the padding or on which process runs it."""
        check_positive("runs", runs, integer=True)
        check(runs <= MAX_RUNS, "runs", f"got {runs}; allowed: at most {MAX_RUNS:,}")
        check(runs * self.max_steps <= MAX_HISTORY_STEPS, "runs",
              f"got {runs}; with up to {self.max_steps:,} steps per run that plans {runs * self.max_steps:,} search "
              f"steps; allowed: at most {MAX_HISTORY_STEPS:,} (fewer runs or a smaller budget)")
        ids = np.arange(runs) if ids is None else np.asarray(ids, np.int64)
        per_device = -(-max(len(ids), 1) // len(self.devices))
        block = min(self.block_runs or per_device, per_device)
        padded = -(-per_device // block) * block * len(self.devices)
        pad = padded - len(ids)
        return jax.random.split(jax.random.key(seed), runs + pad)[np.concatenate([ids, runs + np.arange(pad)])]

    def run(self, seed: int, runs: int, checkpoint_dir: str | None = None, progress: bool = True,
            stop_after_chunks: int | None = None, desc: str = "search",
            metrics_path: str | None = None, settings: dict[str, Any] | None = None) -> SearchResult:
        """Runs all searches through `jaxnas.common.loop.run_loop`, one chunk per call; resumes from
        `checkpoint_dir` when it holds a checkpoint of this search (refusing one of another search).

        The checkpoints record the seed, the runs, the budget, the chunk, the strategy field by field (a refusal
        names e.g. `strategy.sample_size`), the table's content and `settings` (the caller's: e.g. the content
        hash of the table file). `stop_after_chunks` ends early after that many chunks in this call (used to test
        resumption); `metrics_path` receives one JSON line per chunk (runs finished, mean best validation so far).
        """
        start = time.perf_counter()
        # several processes (jaxnas.common.distributed): each runs its share of the runs, all gathered at the end
        own = share(runs) if jax.process_count() > 1 else np.arange(runs)
        mine = len(own)
        keys = jax.device_put(self.run_keys(seed, runs, own), self._run_sharding)
        carry = jax.device_put(jax.vmap(self._init_run)(keys), self._run_sharding)
        table = jax.device_put(self.table, self._replicated)
        recorded = {"seed": seed, "runs": runs, "budget_s": self.budget_s, "chunk_steps": self.chunk_steps,
                    "strategy": described(self.strategy), "table": fingerprint(self.table), **(settings or {})}
        n_chunks = -(-self.max_steps // self.chunk_steps)

        def chunk(i: int, state: tuple[RunCarry, StepRecord]) -> tuple[tuple[RunCarry, StepRecord], dict]:
            c, hist = self._chunk(table, keys, state[0])
            record = jax.tree.map(np.asarray, hist)  # small; kept on the host
            best = np.asarray(c.best_valid)[:mine]
            return (c, _concat([state[1], record])), {
                "runs_done": int(np.sum(np.asarray(c.done)[:mine])),
                "best_valid_mean": float(np.mean(best)) if mine and np.isfinite(best).all() else None}

        # the checkpoint of chunk n holds n * chunk_steps history steps
        out = run_loop(chunk, (carry, self._empty_history(len(keys))), end=n_chunks, settings=recorded,
                       checkpoint_dir=checkpoint_dir, metrics_path=metrics_path,
                       done=lambda st: bool(jnp.all(st[0].done)),
                       template=lambda n: (carry, self._empty_history(len(keys), n * self.chunk_steps)),
                       place=lambda st: (jax.device_put(st[0], self._run_sharding), jax.tree.map(np.asarray, st[1])),
                       postfix=lambda r: {"runs_done": f"{r['runs_done']}/{mine}"}, progress=progress, desc=desc,
                       unit="chunk", stop_after=stop_after_chunks)
        carry, hist = out.state
        hist = jax.tree.map(lambda a: np.asarray(a)[:mine], hist)
        c = jax.tree.map(lambda a: np.asarray(a)[:mine], carry)
        if jax.process_count() > 1:  # processes may stop after different numbers of chunks: pad the history first
            from jax.experimental import multihost_utils

            width = int(np.max(multihost_utils.process_allgather(np.array([hist.counted.shape[1]]))))
            hist = jax.tree.map(lambda a: np.pad(a, ((0, 0), (0, width - a.shape[1]))), hist)
            c, hist = gather_rows((c, hist), runs)
        return SearchResult(best_valid=c.best_valid, best_test=c.best_test, best_index=c.best_index,
                            best_arch=c.best_arch, num_evals=c.num_evals, elapsed=c.elapsed, history=hist,
                            wall_s=time.perf_counter() - start, resumed_from_step=out.resumed_from)

    def _empty_history(self, runs: int, steps: int = 0) -> StepRecord:
        z = np.zeros((runs, steps), np.float32)
        return StepRecord(z, z, z, np.zeros((runs, steps), bool))


def _concat(records: list[StepRecord]) -> StepRecord:
    return jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *records)


def best_so_far_curve(history: StepRecord, budget_s: float, points: int = 121) -> tuple[np.ndarray, np.ndarray]:
    """Best validation accuracy seen by each run at each time of a common grid: (grid (T,), curves (R, T)).

    Before a run's first evaluation completes the value is NaN.
    """
    grid = np.linspace(0.0, budget_s, points)
    elapsed = np.where(history.counted, history.elapsed, np.inf)  # (R, S): time each counted eval completed
    best = np.asarray(history.best_valid, np.float64)
    curves = np.full((elapsed.shape[0], points), np.nan)
    for r in range(elapsed.shape[0]):
        order = np.flatnonzero(np.isfinite(elapsed[r]))
        pos = np.searchsorted(elapsed[r, order], grid, side="right") - 1
        ok = pos >= 0
        curves[r, ok] = best[r, order[pos[ok]]]
    return grid, curves
