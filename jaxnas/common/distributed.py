"""Several processes (hosts) on one job: start-up, splitting independent work, gathering it, and one writer.

A TPU pod slice or several GPU hosts run one process per host; each sees its own devices (`jax.local_devices()`)
and, once `jax.distributed.initialize()` has connected them, all of them (`jax.devices()`). Independent work
(the candidates of a population) is split by process: process i takes items i, i + n, i + 2n, ... of n processes,
trains them on its own devices, and `gather_rows` puts every process's rows back in the original order on every
process, so each process ends with the whole result and the program goes on identically everywhere. Only process
0 writes the user's files (`experiments.cli` gives the other processes a private temporary work directory).

    JAXNAS_DISTRIBUTED=1 python -m experiments.nas_search ...   # on each host (TPU pods, SLURM: auto-detected)
    # elsewhere name the coordinator: JAXNAS_COORDINATOR=host:port JAXNAS_NUM_PROCESSES=2 JAXNAS_PROCESS_ID=i

On CPU the processes' collectives go through gloo (tests run two processes on one machine this way).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jaxnas.common.errors import ConfigError

# jax is imported inside the functions: the command-line entry points import this module before any refusal of a
# setting, which must stay quick

ENV = "JAXNAS_DISTRIBUTED"


def requested() -> bool:
    """Whether the environment asks for a multi-process run (JAXNAS_DISTRIBUTED=1 or true)."""
    value = os.environ.get(ENV, "").strip().lower()
    if value not in ("", "0", "false", "1", "true"):
        raise ConfigError(ENV, f"got {value!r}; allowed: 1, true, 0, false")
    return value in ("1", "true")


def initialize() -> None:
    """Connects this process to the others (`jax.distributed.initialize`), before JAX starts its backend.
    JAXNAS_COORDINATOR / JAXNAS_NUM_PROCESSES / JAXNAS_PROCESS_ID name them explicitly; without them JAX detects
    the cluster (TPU pods, SLURM, Open MPI, Kubernetes)."""
    import jax

    kwargs: dict[str, Any] = {}
    if os.environ.get("JAXNAS_COORDINATOR"):
        try:
            kwargs = {"coordinator_address": os.environ["JAXNAS_COORDINATOR"],
                      "num_processes": int(os.environ["JAXNAS_NUM_PROCESSES"]),
                      "process_id": int(os.environ["JAXNAS_PROCESS_ID"])}
        except (KeyError, ValueError) as err:
            raise ConfigError("JAXNAS_COORDINATOR", "needs JAXNAS_NUM_PROCESSES and JAXNAS_PROCESS_ID as integers "
                                                    f"({err})") from None
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # used only by CPU devices
    jax.distributed.initialize(**kwargs)


def is_writer() -> bool:
    """True on the process that writes results, reports and checkpoints (process 0)."""
    import jax

    return jax.process_index() == 0


def share(total: int) -> np.ndarray:
    """The indices of `total` independent items this process takes (round robin over the processes)."""
    import jax

    return np.arange(jax.process_index(), total, jax.process_count())


def gather_rows(tree: Any, total: int) -> Any:
    """Every process's rows of `tree` (numpy leaves whose leading axis is this process's `share(total)`), put back
    in the original order on every process: leaves of leading size `total`."""
    import jax

    n = jax.process_count()
    if n == 1:
        return tree
    from jax.experimental import multihost_utils

    width = -(-total // n)  # rows per process, padded to the largest share

    def pad(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        missing = width - x.shape[0]
        return x if missing == 0 else np.concatenate([x, np.zeros((missing, *x.shape[1:]), x.dtype)])

    gathered = multihost_utils.process_allgather(jax.tree.map(pad, tree))  # leaves (n, width, ...)

    def order(g: np.ndarray) -> np.ndarray:
        g = np.asarray(g)
        out = np.zeros((total, *g.shape[2:]), g.dtype)
        for p in range(n):
            rows = np.arange(p, total, n)
            out[rows] = g[p, :len(rows)]
        return out

    return jax.tree.map(order, gathered)


def place(tree: Any, mesh: Any, spec: Any) -> Any:
    """`tree` (host or device values, the same on every process) as arrays over `mesh` laid out by `spec`: the
    batch of a data-parallel step (`P("data")`) or its replicated state (`P()`).

    In one process this is `jax.device_put`. Across processes each process builds only the shards its own devices
    hold (`jax.make_array_from_callback`), so a global batch that every process can compute (the trainers' batches
    are deterministic functions of the step) is split between them without any transfer."""
    import jax
    from jax.sharding import NamedSharding

    sharding = NamedSharding(mesh, spec)
    if sharding.is_fully_addressable:
        return jax.device_put(tree, sharding)

    def one(x: Any) -> Any:
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return jax.device_put(x, sharding)  # already global: laid out anew
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(one(jax.random.key_data(x)), impl=jax.random.key_impl(x))
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(one, tree)


def local(tree: Any) -> Any:
    """This process's copy of replicated arrays (`place(..., P())`, or a data-parallel step's state): arrays on
    one local device, for the computations every process makes on its own (evaluations, sampling). Values that
    are already local are returned as they are."""
    import jax

    def one(x: Any) -> Any:
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            if not x.is_fully_replicated:
                raise ValueError(f"local() needs replicated arrays; got one laid out as {x.sharding}")
            return x.addressable_data(0)
        return x

    return jax.tree.map(one, tree)
