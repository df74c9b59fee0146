"""Single-pole cart-pole simulator in pure JAX (jit- and vmap-friendly, float32), for neuroevolution (NEAT).

Single pole: the cart-pole of Barto, Sutton & Anderson (IEEE SMC 1983) with the constants and the
explicit Euler update of OpenAI gym's `CartPole-v1` (`gym/envs/classic_control/cartpole.py`,
`kinematics_integrator='euler'`): g = 9.8, cart 1.0 kg, pole 0.1 kg, half-length 0.5 m, |F| = 10 N,
tau = 0.02 s; failure when |x| > 2.4 m or |theta| > 12 degrees. Actions are bang-bang, as in gym
(action 1 pushes right): a network output in [0, 1] pushes with +10 N if it is > 0.5, else -10 N.

Written for one environment; vmap outside. The episode runner (`single_pole_balance_steps`) is in
`jaxnas.problems.pole_balancing`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

Array = jax.Array

#: gym CartPole-v1's episode limit (its `reward_threshold`, "solved", is an average of 475 of 500).
SINGLE_POLE_STEPS = 500

# ---------------------------------------------------------------------------------------------------
# Constants (gym CartPole-v1).
# ---------------------------------------------------------------------------------------------------

SINGLE_POLE_GRAVITY = 9.8
SINGLE_POLE_CART_MASS = 1.0
SINGLE_POLE_POLE_MASS = 0.1
SINGLE_POLE_HALF_LENGTH = 0.5
SINGLE_POLE_FORCE_MAG = 10.0
SINGLE_POLE_TAU = 0.02
SINGLE_POLE_X_LIMIT = 2.4
SINGLE_POLE_THETA_LIMIT = 12 * 2 * math.pi / 360  # gym's expression: 0.20943951 rad
#: gym's reset: every state variable uniform in [-0.05, 0.05].
SINGLE_POLE_INIT_RANGE = 0.05

# ---------------------------------------------------------------------------------------------------
# Action: network output in [0, 1] -> force in newtons.
# ---------------------------------------------------------------------------------------------------


def bang_bang_force(output: Array, force_mag: float = SINGLE_POLE_FORCE_MAG) -> Array:
    """Gym's discrete action from a sigmoid output: +force_mag if output > 0.5, else -force_mag.

    Args:
        output: () network output, nominally in [0, 1]. Exactly 0.5 pushes left (gym action 0).
        force_mag: magnitude of the push in newtons.

    Returns:
        () float32 force.
    """
    output = jnp.asarray(output, jnp.float32)
    return jnp.where(output > 0.5, jnp.float32(force_mag), jnp.float32(-force_mag))


# ---------------------------------------------------------------------------------------------------
# Dynamics, bounds, observation, starts.
# ---------------------------------------------------------------------------------------------------


def single_pole_step(state: Array, force: Array) -> Array:
    """One gym CartPole step (tau = 0.02 s, explicit Euler).

    Args:
        state: (4,) (x, x_dot, theta, theta_dot); theta in radians, positive = leaning right.
        force: () force on the cart in newtons, positive = right.

    Returns:
        (4,) float32 next state.
    """
    state = jnp.asarray(state, jnp.float32)
    force = jnp.asarray(force, jnp.float32)
    x, x_dot, theta, theta_dot = state[0], state[1], state[2], state[3]
    total_mass = SINGLE_POLE_CART_MASS + SINGLE_POLE_POLE_MASS
    polemass_length = SINGLE_POLE_POLE_MASS * SINGLE_POLE_HALF_LENGTH
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    temp = (force + polemass_length * theta_dot**2 * sin) / total_mass
    theta_acc = (SINGLE_POLE_GRAVITY * sin - cos * temp) / (
        SINGLE_POLE_HALF_LENGTH * (4.0 / 3.0 - SINGLE_POLE_POLE_MASS * cos**2 / total_mass)
    )
    x_acc = temp - polemass_length * theta_acc * cos / total_mass
    tau = SINGLE_POLE_TAU
    return jnp.stack([x + tau * x_dot, x_dot + tau * x_acc, theta + tau * theta_dot, theta_dot + tau * theta_acc])


def single_pole_failed(state: Array) -> Array:
    """() bool: |x| > 2.4 or |theta| > 12 degrees (gym's `terminated`; the limits themselves are safe)."""
    state = jnp.asarray(state, jnp.float32)
    return (jnp.abs(state[0]) > SINGLE_POLE_X_LIMIT) | (jnp.abs(state[2]) > SINGLE_POLE_THETA_LIMIT)


def single_pole_observation(state: Array) -> Array:
    """(4,) float32 network inputs: the raw state, as gym's CartPole observation.

    No scaling: in the failure region every variable is O(1) (|x| <= 2.4, |theta| <= 0.21, and the
    velocities stay within a few units), so a sigmoid network sees well-conditioned inputs.
    """
    return jnp.asarray(state, jnp.float32)


def single_pole_initial_state(key: Array) -> Array:
    """(4,) float32 gym reset: each variable uniform in [-0.05, 0.05)."""
    return jax.random.uniform(key, (4,), jnp.float32, -SINGLE_POLE_INIT_RANGE, SINGLE_POLE_INIT_RANGE)


def single_pole_fixed_initial_state() -> Array:
    """(4,) float32 deterministic start: all zeros, cart centred and pole upright (Barto et al. 1983).

    Upright is an equilibrium only without force; a bang-bang controller always pushes, so a
    constant action still fails quickly from here.
    """
    return jnp.zeros((4,), jnp.float32)
