"""Pole-balancing episodes for neuroevolution (NEAT): pure JAX, jit- and vmap-friendly, float32.

The simulators are in `jaxnas.problems.single_pole` (Barto, Sutton & Anderson 1983, with OpenAI gym's
`CartPole-v1` constants and Euler update) and `jaxnas.problems.double_pole` (Wieland 1991, as in the NEAT
paper, Stanley & Miikkulainen, Evolutionary Computation 10(2), 2002, Sec. 5, and its NEAT-1.2.1 C++ code);
this module runs a policy on them and re-exports both, so `jaxnas.problems.pole_balancing` is the one
namespace of the tasks.

Episodes: `balance_steps` counts control steps until failure, capped at `max_steps`, with a
`lax.while_loop` that exits as soon as the policy fails (see its docstring for why not `scan`). The
count includes the step on which the state left the bounds, as in the C++ `evalNet` (and as gym's
episode return, which pays +1 on the terminating step): a policy that fails on its first action
scores 1.

Everything is written for one environment and one set of policy parameters; vmap outside, e.g.
`jax.vmap(lambda p: double_pole_balance_steps(policy_fn, p))(population_params)`.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxnas.problems.double_pole import (
    DOUBLE_POLE_CART_MASS, DOUBLE_POLE_FORCE_MAG, DOUBLE_POLE_GRAVITY, DOUBLE_POLE_HALF_LENGTH_1,
    DOUBLE_POLE_HALF_LENGTH_2, DOUBLE_POLE_INITIAL_THETA_1, DOUBLE_POLE_MASS_1, DOUBLE_POLE_MASS_2,
    DOUBLE_POLE_MU_C, DOUBLE_POLE_MU_P, DOUBLE_POLE_NV_GENERALIZATION_NEEDED, DOUBLE_POLE_NV_GENERALIZATION_STEPS,
    DOUBLE_POLE_NV_JIGGLE_STEPS, DOUBLE_POLE_NV_OBSERVED, DOUBLE_POLE_NV_STEPS, DOUBLE_POLE_OBS_SCALE,
    DOUBLE_POLE_STEPS, DOUBLE_POLE_SUBSTEPS, DOUBLE_POLE_TAU, DOUBLE_POLE_THETA_LIMIT, DOUBLE_POLE_X_LIMIT,
    continuous_force, double_pole_derivatives, double_pole_failed, double_pole_initial_state, double_pole_jiggle,
    double_pole_nv_generalization_starts, double_pole_nv_observation, double_pole_observation, double_pole_step,
    gruau_fitness,
)
from jaxnas.problems.single_pole import (
    SINGLE_POLE_CART_MASS, SINGLE_POLE_FORCE_MAG, SINGLE_POLE_GRAVITY, SINGLE_POLE_HALF_LENGTH,
    SINGLE_POLE_INIT_RANGE, SINGLE_POLE_POLE_MASS, SINGLE_POLE_STEPS, SINGLE_POLE_TAU, SINGLE_POLE_THETA_LIMIT,
    SINGLE_POLE_X_LIMIT, bang_bang_force, single_pole_failed, single_pole_fixed_initial_state,
    single_pole_initial_state, single_pole_observation, single_pole_step,
)

# The simulators' names are re-exported: one namespace (`pb.*` in neat_tasks and the tests) for both tasks.
__all__ = [
    "DOUBLE_POLE_CART_MASS", "DOUBLE_POLE_FORCE_MAG", "DOUBLE_POLE_GRAVITY", "DOUBLE_POLE_HALF_LENGTH_1",
    "DOUBLE_POLE_HALF_LENGTH_2", "DOUBLE_POLE_INITIAL_THETA_1", "DOUBLE_POLE_MASS_1", "DOUBLE_POLE_MASS_2",
    "DOUBLE_POLE_MU_C", "DOUBLE_POLE_MU_P", "DOUBLE_POLE_NV_GENERALIZATION_NEEDED",
    "DOUBLE_POLE_NV_GENERALIZATION_STEPS", "DOUBLE_POLE_NV_JIGGLE_STEPS", "DOUBLE_POLE_NV_OBSERVED",
    "DOUBLE_POLE_NV_STEPS", "DOUBLE_POLE_OBS_SCALE", "DOUBLE_POLE_STEPS", "DOUBLE_POLE_SUBSTEPS",
    "DOUBLE_POLE_TAU", "DOUBLE_POLE_THETA_LIMIT", "DOUBLE_POLE_X_LIMIT", "SINGLE_POLE_CART_MASS",
    "SINGLE_POLE_FORCE_MAG", "SINGLE_POLE_GRAVITY", "SINGLE_POLE_HALF_LENGTH", "SINGLE_POLE_INIT_RANGE",
    "SINGLE_POLE_POLE_MASS", "SINGLE_POLE_STEPS", "SINGLE_POLE_TAU", "SINGLE_POLE_THETA_LIMIT",
    "SINGLE_POLE_X_LIMIT", "balance_steps", "bang_bang_force", "continuous_force", "double_pole_balance_steps",
    "double_pole_derivatives", "double_pole_failed", "double_pole_initial_state", "double_pole_jiggle",
    "double_pole_nv_generalization_starts", "double_pole_nv_observation", "double_pole_observation",
    "double_pole_step", "gruau_fitness", "run_episode", "single_pole_balance_steps", "single_pole_failed",
    "single_pole_fixed_initial_state", "single_pole_initial_state", "single_pole_observation", "single_pole_step",
]

Array = jax.Array
PolicyFn = Callable[..., Any]

# ---------------------------------------------------------------------------------------------------
# Episode runner.
# ---------------------------------------------------------------------------------------------------


def balance_steps(
    policy_fn: PolicyFn,
    params: Any,
    step_fn: Callable[[Array, Array], Array],
    failed_fn: Callable[[Array], Array],
    observe_fn: Callable[[Array], Array],
    initial_state: Array,
    max_steps: int,
    **kwargs: Any,
) -> Array:
    """() int32 control steps a policy keeps the system within bounds, capped at `max_steps` (the failing step
    counted): `run_episode`'s `steps`; see it for the arguments."""
    return run_episode(policy_fn, params, step_fn, failed_fn, observe_fn, initial_state, max_steps, **kwargs)["steps"]


def run_episode(
    policy_fn: PolicyFn,
    params: Any,
    step_fn: Callable[[Array, Array], Array],
    failed_fn: Callable[[Array], Array],
    observe_fn: Callable[[Array], Array],
    initial_state: Array,
    max_steps: int,
    *,
    action_fn: Callable[[Array], Array],
    policy_carry: Any = None,
    unroll: int = 1,
    trace_fn: Callable[[Array], Array] | None = None,
    trace_len: int = 0,
) -> dict[str, Array]:
    """Runs one episode: the number of control steps a policy keeps the system within bounds, capped at
    `max_steps`, whether it ended in failure, and optionally a trace of its last balanced steps.

    Each step: obs = observe_fn(state); out = policy_fn(params, obs); state = step_fn(state,
    action_fn(out)); stop if failed_fn(state). The step that fails is counted (NEAT C++ `evalNet`).

    Why `lax.while_loop` and not `lax.scan`: a scan always runs `max_steps` iterations (100,000 for
    the double pole) although most networks of an early population fail within tens of steps. The
    while loop stops when the policy fails. Under `vmap` the loop condition becomes "any member
    still alive", so a batch runs until its longest survivor fails; finished members are frozen by a
    select and cost the same arithmetic as live ones. So a population costs max(survival) steps,
    never more than scan's `max_steps`, and far fewer while no network balances for long. `unroll`
    > 1 runs that many masked steps per loop iteration, cutting per-iteration loop overhead (worth
    it on accelerators for long episodes) at the price of at most `unroll - 1` wasted steps.

    Args:
        policy_fn: `policy_fn(params, obs) -> out`, out a () value in [0, 1]; with `policy_carry`
            it is `policy_fn(params, obs, carry) -> (out, carry)` (a recurrent network's
            activations carried from step to step).
        params: the policy's parameters (any pytree); vmap over it to evaluate a population.
        step_fn: `step_fn(state, force) -> state`, e.g. `single_pole_step`.
        failed_fn: `failed_fn(state) -> () bool`, e.g. `single_pole_failed`.
        observe_fn: `observe_fn(state) -> obs`, e.g. `single_pole_observation`.
        initial_state: the environment's starting state, e.g. (4,) or (6,).
        max_steps: the cap (a Python int or a () integer array).
        action_fn: `action_fn(out) -> force`, e.g. `bang_bang_force` or `continuous_force`.
        policy_carry: initial recurrent state of the policy (pytree), or None for a stateless one.
        unroll: environment steps per while-loop iteration (static, >= 1).
        trace_fn: `trace_fn(state) -> ()` recorded after every step that ends within bounds (e.g.
            `double_pole_jiggle`); None records nothing.
        trace_len: how many of the last such values to keep (>= 1 with a `trace_fn`).

    Returns:
        {"steps": () int32 steps run, in [0, max_steps] (the failing one included; 0 only when max_steps
         is 0), "failed": () bool, "balanced": () int32 steps that ended within bounds, "trace":
         (trace_len,) float32 the last balanced steps' `trace_fn` values, oldest first (zeros first when
         fewer steps were balanced)}.
    """
    if unroll < 1:
        raise ValueError(f"unroll must be >= 1, got {unroll}")
    recurrent = policy_carry is not None
    max_steps = jnp.asarray(max_steps, jnp.int32)
    state0 = jnp.asarray(initial_state, jnp.float32)

    def one_step(carry):
        t, state, alive, pcarry, ring = carry
        active = alive & (t < max_steps)  # () bool; always True on the first sub-step
        obs = observe_fn(state)
        if recurrent:
            out, new_pcarry = policy_fn(params, obs, pcarry)
        else:
            out, new_pcarry = policy_fn(params, obs), pcarry
        new_state = step_fn(state, action_fn(jnp.reshape(out, ())))
        state = jnp.where(active, new_state, state)
        pcarry = jax.tree_util.tree_map(lambda new, old: jnp.where(active, new, old), new_pcarry, pcarry)
        failed = failed_fn(new_state)
        if trace_fn is not None:  # ring buffer indexed by the balanced-step count
            keep = active & ~failed
            slot = (t - (~alive).astype(jnp.int32)) % trace_len
            ring = jnp.where(keep & (jnp.arange(trace_len) == slot), trace_fn(new_state), ring)
        t = t + active.astype(jnp.int32)
        alive = alive & ~(active & failed)
        return t, state, alive, pcarry, ring

    def body(carry):
        for _ in range(unroll):
            carry = one_step(carry)
        return carry

    def cond(carry):
        t, _, alive, _, _ = carry
        return alive & (t < max_steps)

    if trace_fn is not None and trace_len < 1:
        raise ValueError(f"trace_len must be >= 1 with a trace_fn, got {trace_len}")
    ring0 = jnp.zeros((trace_len if trace_fn is not None else 0,), jnp.float32)
    carry0 = (jnp.int32(0), state0, jnp.bool_(True), policy_carry, ring0)
    t, _, alive, _, ring = jax.lax.while_loop(cond, body, carry0)
    balanced = t - (~alive).astype(jnp.int32)
    if trace_fn is not None:  # oldest first: the slot after the newest one
        ring = jnp.roll(ring, -(balanced % trace_len))
    return {"steps": t, "failed": ~alive, "balanced": balanced, "trace": ring}


def single_pole_balance_steps(
    policy_fn: PolicyFn,
    params: Any,
    initial_state: Array | None = None,
    max_steps: int = SINGLE_POLE_STEPS,
    **kwargs: Any,
) -> Array:
    """() int32 `balance_steps` on gym's cart-pole with bang-bang actions and raw observations.

    `initial_state` defaults to `single_pole_fixed_initial_state()`; pass
    `single_pole_initial_state(key)` for gym's random start. `kwargs` go to `balance_steps`.
    """
    if initial_state is None:
        initial_state = single_pole_fixed_initial_state()
    return balance_steps(
        policy_fn, params, single_pole_step, single_pole_failed, single_pole_observation,
        initial_state, max_steps, action_fn=bang_bang_force, **kwargs,
    )


def double_pole_balance_steps(
    policy_fn: PolicyFn,
    params: Any,
    max_steps: int = DOUBLE_POLE_STEPS,
    **kwargs: Any,
) -> Array:
    """() int32 `balance_steps` on the double pole with velocities (NEAT paper's Markovian task).

    Continuous force, scaled observations, start `double_pole_initial_state()`. `kwargs` go to
    `balance_steps`.
    """
    return balance_steps(
        policy_fn, params, double_pole_step, double_pole_failed, double_pole_observation,
        double_pole_initial_state(), max_steps, action_fn=continuous_force, **kwargs,
    )
