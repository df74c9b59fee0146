"""Double-pole cart-pole simulator in pure JAX (jit- and vmap-friendly, float32), for neuroevolution (NEAT).

Double pole with velocities: Wieland's (1991) two poles on one cart, in the form used by the NEAT
paper (Stanley & Miikkulainen, Evolutionary Computation 10(2), 2002, Sec. 5) through Stanley's
NEAT-1.2.1 C++ code (`experiments.cpp`, class `CartPole`, physics by Faustino Gomez, the ESP code of
Gomez & Miikkulainen): cart 1.0 kg, poles 0.1 kg / 0.01 kg with half-lengths 0.5 m / 0.05 m,
hinge friction mu_p = 2e-6, g = -9.8 (Wieland's sign convention: with g < 0 the equations below make
an upright pole fall), |F| = 10 N, 4th-order Runge-Kutta with tau = 0.01 s. One control step is
*two* RK4 steps (0.02 s), as in the C++ `performAction`. Failure when |x| > 2.4 m or either
|theta_i| > 36 degrees. The network output in [0, 1] is a continuous force 10 * (2 * out - 1) N
(the C++ `(action - 0.5) * FORCE_MAG * 2`). The C++ code declares cart friction MUC = 0.0005 but
never uses it; `double_pole_step` follows the code (no cart friction) unless `cart_friction` is set.

Wieland's equations (Gomez & Miikkulainen 1999, "Solving non-Markovian control tasks with
neuroevolution", appendix), for poles i = 1, 2:
    x''       = (F - mu_c sgn(x') + sum_i Fe_i) / (M + sum_i me_i)
    theta_i'' = -3 / (4 l_i) * (x'' cos theta_i + g sin theta_i + mu_p theta_i' / (m_i l_i))
    Fe_i      = m_i l_i theta_i'^2 sin theta_i + 3/4 m_i cos theta_i (mu_p theta_i' / (m_i l_i) + g sin theta_i)
    me_i      = m_i (1 - 3/4 cos^2 theta_i)

Without velocities (NEAT paper Sec. 5.2): the observation drops the velocities and fitness is Gruau et
al.'s (1996) anti-jiggle fitness (`gruau_fitness`), with the champion's generalization test starts.

Written for one environment; vmap outside. The episode runner (`double_pole_balance_steps`) is in
`jaxnas.problems.pole_balancing`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

Array = jax.Array

#: NEAT paper's success criterion for double pole with velocities: both poles balanced 100,000 time
#: steps (the paper: about 30 minutes simulated; at 0.02 s per control step it is 2,000 s = 33 min).
DOUBLE_POLE_STEPS = 100_000

# ---------------------------------------------------------------------------------------------------
# Constants (NEAT-1.2.1 / ESP).
# ---------------------------------------------------------------------------------------------------

DOUBLE_POLE_GRAVITY = -9.8  # Wieland's sign convention, see the module docstring
DOUBLE_POLE_CART_MASS = 1.0
DOUBLE_POLE_MASS_1 = 0.1
DOUBLE_POLE_MASS_2 = 0.01
DOUBLE_POLE_HALF_LENGTH_1 = 0.5
DOUBLE_POLE_HALF_LENGTH_2 = 0.05
DOUBLE_POLE_MU_P = 0.000002  # pole hinge friction
DOUBLE_POLE_MU_C = 0.0005  # cart friction: declared in the C++ code, unused there (and by default here)
DOUBLE_POLE_FORCE_MAG = 10.0
DOUBLE_POLE_TAU = 0.01  # one RK4 step
DOUBLE_POLE_SUBSTEPS = 2  # RK4 steps per control step (C++ `performAction`)
DOUBLE_POLE_X_LIMIT = 2.4
DOUBLE_POLE_THETA_LIMIT = math.radians(36.0)  # the C++ code writes 0.628329; pi/5 = 0.6283185
#: Initial long-pole angle of the C++ `CartPole::init`: 0.07 rad (4.01 degrees; its comment says
#: "one_degree" but the value is 0.07), the "long pole at about 4 degrees" start of ESP and NEAT.
DOUBLE_POLE_INITIAL_THETA_1 = 0.07
#: Input scaling of the C++ `evalNet`: x/4.8, x'/2, theta1/0.52, theta1'/2, theta2/0.52, theta2'/2.
DOUBLE_POLE_OBS_SCALE = (4.8, 2.0, 0.52, 2.0, 0.52, 2.0)

# Double pole without velocities (NEAT paper Sec. 5.2; the non-Markov branch of the C++ `evalNet`).
#: State components a non-Markov controller sees (x, theta1, theta2), scaled like the Markov inputs.
DOUBLE_POLE_NV_OBSERVED = (0, 2, 4)
#: Episode of one fitness evaluation (the C++ `nmarkovmax` outside the champion's long test).
DOUBLE_POLE_NV_STEPS = 1000
#: Gruau et al.'s (1996) anti-jiggle term sums |x| + |x'| + |theta1| + |theta1'| over the last 100 steps.
DOUBLE_POLE_NV_JIGGLE_STEPS = 100
#: Generalization test of a champion that balanced 100,000 steps: 5^4 = 625 starts, each must be balanced
#: for 1,000 steps, and 200 of them are needed (Gruau et al. 1996; C++ `pole2_epoch`).
DOUBLE_POLE_NV_GENERALIZATION_STEPS = 1000
DOUBLE_POLE_NV_GENERALIZATION_NEEDED = 200


# ---------------------------------------------------------------------------------------------------
# Action: network output in [0, 1] -> force in newtons.
# ---------------------------------------------------------------------------------------------------


def continuous_force(output: Array, force_mag: float = DOUBLE_POLE_FORCE_MAG) -> Array:
    """NEAT C++'s continuous action: force_mag * (2 * output - 1), output clipped to [0, 1].

    The clip changes nothing for a sigmoid output; it keeps |F| <= force_mag for other activations.

    Args:
        output: () network output, nominally in [0, 1].
        force_mag: largest force in newtons.

    Returns:
        () float32 force.
    """
    output = jnp.clip(jnp.asarray(output, jnp.float32), 0.0, 1.0)
    return jnp.float32(force_mag) * (2.0 * output - 1.0)


# ---------------------------------------------------------------------------------------------------
# Dynamics (RK4), bounds, observations, starts, Gruau's fitness.
# ---------------------------------------------------------------------------------------------------


def double_pole_derivatives(state: Array, force: Array, cart_friction: float = 0.0) -> Array:
    """Time derivative of the double-pole state under Wieland's equations.

    Args:
        state: (6,) (x, x_dot, theta1, theta1_dot, theta2, theta2_dot); radians, from vertical.
        force: () force on the cart in newtons.
        cart_friction: mu_c; 0 as in the C++ code, `DOUBLE_POLE_MU_C` for Wieland's full model.

    Returns:
        (6,) float32 d(state)/dt.
    """
    _, x_dot, th1, th1_dot, th2, th2_dot = (state[i] for i in range(6))
    g, mu_p = DOUBLE_POLE_GRAVITY, DOUBLE_POLE_MU_P
    m1, m2 = DOUBLE_POLE_MASS_1, DOUBLE_POLE_MASS_2
    l1, l2 = DOUBLE_POLE_HALF_LENGTH_1, DOUBLE_POLE_HALF_LENGTH_2
    cos1, sin1, cos2, sin2 = jnp.cos(th1), jnp.sin(th1), jnp.cos(th2), jnp.sin(th2)
    fric1 = mu_p * th1_dot / (m1 * l1)
    fric2 = mu_p * th2_dot / (m2 * l2)
    eff_force1 = m1 * l1 * th1_dot**2 * sin1 + 0.75 * m1 * cos1 * (fric1 + g * sin1)
    eff_force2 = m2 * l2 * th2_dot**2 * sin2 + 0.75 * m2 * cos2 * (fric2 + g * sin2)
    eff_mass1 = m1 * (1.0 - 0.75 * cos1**2)
    eff_mass2 = m2 * (1.0 - 0.75 * cos2**2)
    x_acc = (force - cart_friction * jnp.sign(x_dot) + eff_force1 + eff_force2) / (
        DOUBLE_POLE_CART_MASS + eff_mass1 + eff_mass2
    )
    th1_acc = -0.75 * (x_acc * cos1 + g * sin1 + fric1) / l1
    th2_acc = -0.75 * (x_acc * cos2 + g * sin2 + fric2) / l2
    return jnp.stack([x_dot, x_acc, th1_dot, th1_acc, th2_dot, th2_acc])


def _rk4(state: Array, force: Array, dt: float, cart_friction: float) -> Array:
    """(6,) one classical RK4 step of length dt, force held constant."""
    f = lambda s: double_pole_derivatives(s, force, cart_friction)  # noqa: E731
    k1 = f(state)
    k2 = f(state + 0.5 * dt * k1)
    k3 = f(state + 0.5 * dt * k2)
    k4 = f(state + dt * k3)
    return state + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def double_pole_step(state: Array, force: Array, cart_friction: float = 0.0) -> Array:
    """One control step: `DOUBLE_POLE_SUBSTEPS` (2) RK4 steps of 0.01 s with the force held.

    Args:
        state: (6,) (x, x_dot, theta1, theta1_dot, theta2, theta2_dot).
        force: () force on the cart in newtons, positive = right.
        cart_friction: mu_c (default 0, as the NEAT C++ code; see the module docstring).

    Returns:
        (6,) float32 next state.
    """
    state = jnp.asarray(state, jnp.float32)
    force = jnp.asarray(force, jnp.float32)
    for _ in range(DOUBLE_POLE_SUBSTEPS):
        state = _rk4(state, force, DOUBLE_POLE_TAU, cart_friction)
    return state


def double_pole_failed(state: Array) -> Array:
    """() bool: |x| > 2.4 or |theta1| > 36 degrees or |theta2| > 36 degrees (C++ `outsideBounds`)."""
    state = jnp.asarray(state, jnp.float32)
    return (
        (jnp.abs(state[0]) > DOUBLE_POLE_X_LIMIT)
        | (jnp.abs(state[2]) > DOUBLE_POLE_THETA_LIMIT)
        | (jnp.abs(state[4]) > DOUBLE_POLE_THETA_LIMIT)
    )


def double_pole_initial_state() -> Array:
    """(6,) float32 C++ `CartPole::init`: long pole at 0.07 rad (about 4 degrees), all else 0."""
    return jnp.array([0.0, 0.0, DOUBLE_POLE_INITIAL_THETA_1, 0.0, 0.0, 0.0], jnp.float32)


def double_pole_observation(state: Array) -> Array:
    """(6,) float32 network inputs, scaled as the C++ `evalNet` (`DOUBLE_POLE_OBS_SCALE`).

    The C++ code also feeds a seventh input fixed at 1.0 (a bias); it is not included here. A
    network whose nodes have no bias of their own should append it: `jnp.append(obs, 1.0)`.
    """
    return jnp.asarray(state, jnp.float32) / jnp.asarray(DOUBLE_POLE_OBS_SCALE, jnp.float32)


def double_pole_nv_observation(state: Array) -> Array:
    """(3,) float32 inputs without velocities: x / 4.8, theta1 / 0.52, theta2 / 0.52 (C++ non-Markov `evalNet`;
    its fourth input, a constant 0.5, is left to the nodes' own biases)."""
    idx = jnp.asarray(DOUBLE_POLE_NV_OBSERVED)
    return jnp.asarray(state, jnp.float32)[idx] / jnp.asarray(DOUBLE_POLE_OBS_SCALE, jnp.float32)[idx]


def double_pole_jiggle(state: Array) -> Array:
    """() |x| + |x'| + |theta1| + |theta1'|: what Gruau's fitness penalises (C++ `jigglestep`)."""
    return jnp.sum(jnp.abs(jnp.asarray(state, jnp.float32)[:4]))


def gruau_fitness(balanced: Array, jiggle: Array, episode_steps: int = DOUBLE_POLE_NV_STEPS) -> Array:
    """Gruau et al.'s (1996) fitness for the double pole without velocities, as in the NEAT C++ code:
    0.1 * balanced / 1000 + 0.9 * 0.75 / jiggle, where `jiggle` sums `double_pole_jiggle` over the last
    100 balanced steps; only the first term when 100 steps or fewer were balanced. Rewards balancing long
    and without oscillating (which a controller that cannot see velocities easily does)."""
    balanced = jnp.asarray(balanced, jnp.float32)
    steady = 0.9 * 0.75 / jnp.maximum(jiggle, 1e-12)
    return 0.1 * balanced / episode_steps + jnp.where(balanced > DOUBLE_POLE_NV_JIGGLE_STEPS, steady, 0.0)


def double_pole_nv_generalization_starts() -> Array:
    """(625, 6) the generalization test's starts: x, x', theta1, theta1' each at 0.05, 0.25, 0.5, 0.75, 0.95 of
    +-2.16 m, +-1.35 m/s, +-3.6 degrees, +-8.6 degrees/s (C++ `pole2_epoch`), the short pole upright."""
    v = jnp.asarray([0.05, 0.25, 0.5, 0.75, 0.95], jnp.float32)
    spans = jnp.asarray([4.32, 2.70, 0.12566304, 0.30019504], jnp.float32)
    grid = jnp.stack(jnp.meshgrid(v, v, v, v, indexing="ij"), -1).reshape(-1, 4)  # x varies slowest
    return jnp.concatenate([grid * spans - spans / 2, jnp.zeros((grid.shape[0], 2), jnp.float32)], axis=1)
