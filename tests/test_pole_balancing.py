"""Cart-pole environments (jaxnas.problems.pole_balancing) against independent float64 NumPy
references: gym's CartPole Euler step, and Wieland's double-pole equations integrated with RK4 in
the layout of the NEAT-1.2.1 C++ code (derivatives in place, two 0.01 s steps per action)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.problems import pole_balancing as pb

# ---------------------------------------------------------------------------------------------------
# References (float64, plain Python/NumPy, written from the equations, not from the module).
# ---------------------------------------------------------------------------------------------------


def ref_single_step(s, force):
    """gym CartPole-v1 `step` with kinematics_integrator='euler'."""
    x, x_dot, theta, theta_dot = (float(v) for v in s)
    gravity, masscart, masspole, length, tau = 9.8, 1.0, 0.1, 0.5, 0.02
    total_mass = masspole + masscart
    polemass_length = masspole * length
    costheta, sintheta = math.cos(theta), math.sin(theta)
    temp = (force + polemass_length * theta_dot**2 * sintheta) / total_mass
    thetaacc = (gravity * sintheta - costheta * temp) / (
        length * (4.0 / 3.0 - masspole * costheta**2 / total_mass))
    xacc = temp - polemass_length * thetaacc * costheta / total_mass
    x = x + tau * x_dot
    x_dot = x_dot + tau * xacc
    theta = theta + tau * theta_dot
    theta_dot = theta_dot + tau * thetaacc
    return np.array([x, x_dot, theta, theta_dot])


def ref_single_failed(s):
    return s[0] < -2.4 or s[0] > 2.4 or s[2] < -12 * 2 * math.pi / 360 or s[2] > 12 * 2 * math.pi / 360


def ref_double_derivs(force, st, derivs, muc=0.0):
    """Wieland's equations, filling derivs[1], [3], [5] (C++ `CartPole::step` layout)."""
    GRAVITY, MASSCART, MUP = -9.8, 1.0, 0.000002
    LENGTH_1, LENGTH_2, MASSPOLE_1, MASSPOLE_2 = 0.5, 0.05, 0.1, 0.01
    c1, s1, c2, s2 = math.cos(st[2]), math.sin(st[2]), math.cos(st[4]), math.sin(st[4])
    ml1, ml2 = LENGTH_1 * MASSPOLE_1, LENGTH_2 * MASSPOLE_2
    t1, t2 = MUP * st[3] / ml1, MUP * st[5] / ml2
    fi1 = ml1 * st[3] ** 2 * s1 + 0.75 * MASSPOLE_1 * c1 * (t1 + GRAVITY * s1)
    fi2 = ml2 * st[5] ** 2 * s2 + 0.75 * MASSPOLE_2 * c2 * (t2 + GRAVITY * s2)
    mi1 = MASSPOLE_1 * (1 - 0.75 * c1 * c1)
    mi2 = MASSPOLE_2 * (1 - 0.75 * c2 * c2)
    derivs[1] = (force - muc * np.sign(st[1]) + fi1 + fi2) / (mi1 + mi2 + MASSCART)
    derivs[3] = -0.75 * (derivs[1] * c1 + GRAVITY * s1 + t1) / LENGTH_1
    derivs[5] = -0.75 * (derivs[1] * c2 + GRAVITY * s2 + t2) / LENGTH_2


def ref_double_full_derivs(force, y, muc):
    d = np.zeros(6)
    d[0], d[2], d[4] = y[1], y[3], y[5]
    ref_double_derivs(force, y, d, muc)
    return d


def ref_double_step(state, force, muc=0.0):
    """Two RK4 steps of 0.01 s, as the C++ `performAction` / `rk4`."""
    y = np.array(state, dtype=np.float64)
    tau = 0.01
    for _ in range(2):
        dydx = ref_double_full_derivs(force, y, muc)
        yt = y + 0.5 * tau * dydx
        dyt = ref_double_full_derivs(force, yt, muc)
        yt = y + 0.5 * tau * dyt
        dym = ref_double_full_derivs(force, yt, muc)
        yt = y + tau * dym
        dym = dym + dyt
        dyt = ref_double_full_derivs(force, yt, muc)
        y = y + tau / 6.0 * (dydx + dyt + 2.0 * dym)
    return y


def ref_double_failed(s):
    return abs(s[0]) > 2.4 or abs(s[2]) > 0.628329 or abs(s[4]) > 0.628329


def ref_count(step, failed, state, force_of_state, max_steps):
    """Steps until failure (the failing step counted), capped."""
    s = np.array(state, dtype=np.float64)
    for t in range(1, max_steps + 1):
        s = step(s, force_of_state(t, s))
        if failed(s):
            return t
    return max_steps


# ---------------------------------------------------------------------------------------------------
# Policies.
# ---------------------------------------------------------------------------------------------------

STABLE_W = np.array([0.1, 0.5, 10.0, 2.0], np.float32)  # push towards x, x_dot, theta, theta_dot


def linear_policy(params, obs):
    """params = (w, b): sigmoid(w . obs + b)."""
    w, b = params
    return jax.nn.sigmoid(jnp.dot(w, obs) + b)


def constant_policy(value, obs):
    return value + 0.0 * obs[0]


# ---------------------------------------------------------------------------------------------------
# Single pole.
# ---------------------------------------------------------------------------------------------------


def test_single_pole_step_matches_gym_reference():
    rng = np.random.default_rng(0)
    states = rng.uniform([-2.4, -2.0, -0.2, -2.0], [2.4, 2.0, 0.2, 2.0], (50, 4)).astype(np.float32)
    forces = np.where(rng.random(50) < 0.5, -10.0, 10.0).astype(np.float32)
    forces[:10] = rng.uniform(-10, 10, 10)  # continuous forces too
    got = np.asarray(jax.jit(jax.vmap(pb.single_pole_step))(states, forces))
    want = np.stack([ref_single_step(s.astype(np.float64), float(f)) for s, f in zip(states, forces)])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_single_pole_failure_thresholds_exact():
    assert pb.SINGLE_POLE_THETA_LIMIT == pytest.approx(math.radians(12.0), abs=1e-15)
    f32 = np.float32
    limit_theta = f32(pb.SINGLE_POLE_THETA_LIMIT)
    above_x = np.nextafter(f32(2.4), f32(10))
    above_theta = np.nextafter(limit_theta, f32(10))
    failed = lambda s: bool(pb.single_pole_failed(np.array(s, np.float32)))  # noqa: E731
    for sign in (1, -1):
        assert not failed([sign * 2.4, 0, 0, 0])
        assert failed([sign * above_x, 0, 0, 0])
        assert not failed([0, 0, sign * limit_theta, 0])
        assert failed([0, 0, sign * above_theta, 0])
    # Velocities never cause failure.
    assert not failed([0, 100.0, 0, -100.0])


def test_actions():
    assert float(pb.bang_bang_force(0.51)) == 10.0
    assert float(pb.bang_bang_force(0.5)) == -10.0
    assert float(pb.bang_bang_force(0.0)) == -10.0
    np.testing.assert_allclose([float(pb.continuous_force(o)) for o in (0.0, 0.25, 0.5, 1.0, 1.5)],
                               [-10.0, -5.0, 0.0, 10.0, 10.0])


def test_single_pole_initial_states():
    s = np.asarray(pb.single_pole_initial_state(jax.random.key(0)))
    assert s.shape == (4,) and s.dtype == np.float32
    assert np.all(np.abs(s) <= 0.05) and np.any(s != 0)
    np.testing.assert_array_equal(pb.single_pole_fixed_initial_state(), np.zeros(4, np.float32))
    np.testing.assert_array_equal(pb.single_pole_observation(s), s)


# ---------------------------------------------------------------------------------------------------
# Double pole.
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("muc", [0.0, pb.DOUBLE_POLE_MU_C])
def test_double_pole_step_matches_rk4_reference(muc):
    rng = np.random.default_rng(1)
    forces = rng.uniform(-10, 10, 20).astype(np.float32)
    step = jax.jit(lambda s, f: pb.double_pole_step(s, f, cart_friction=muc))
    s_jax = pb.double_pole_initial_state()
    s_ref = np.array([0, 0, 0.07, 0, 0, 0], np.float64)
    np.testing.assert_allclose(s_jax, s_ref, atol=1e-7)
    for f in forces:
        s_jax = step(s_jax, f)
        s_ref = ref_double_step(s_ref, float(f), muc)
        np.testing.assert_allclose(np.asarray(s_jax), s_ref, rtol=1e-4, atol=1e-4)
    # And single steps from random states.
    states = rng.uniform([-2, -1, -0.5, -1, -0.5, -2], [2, 1, 0.5, 1, 0.5, 2], (20, 6)).astype(np.float32)
    got = np.asarray(jax.vmap(lambda s, f: pb.double_pole_step(s, f, cart_friction=muc))(states, forces))
    want = np.stack([ref_double_step(s.astype(np.float64), float(f), muc) for s, f in zip(states, forces)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_double_pole_falls_without_force_and_rests_upright():
    step = jax.jit(pb.double_pole_step)
    s = pb.double_pole_initial_state()
    thetas = [float(s[2])]
    for _ in range(30):
        s = step(s, 0.0)
        thetas.append(float(s[2]))
    assert np.all(np.diff(thetas) > 0), "the long pole should keep falling away from vertical"
    assert thetas[-1] > 0.1

    rest = jnp.zeros(6, jnp.float32)
    s = rest
    for _ in range(10):
        s = step(s, 0.0)
    np.testing.assert_array_equal(np.asarray(s), np.zeros(6, np.float32))


def test_double_pole_failure_and_observation():
    lim = np.float32(pb.DOUBLE_POLE_THETA_LIMIT)
    above = np.nextafter(lim, np.float32(10))
    failed = lambda s: bool(pb.double_pole_failed(np.array(s, np.float32)))  # noqa: E731
    assert not failed([2.4, 0, lim, 0, -lim, 0])
    assert failed([np.nextafter(np.float32(-2.4), np.float32(-10)), 0, 0, 0, 0, 0])
    assert failed([0, 0, -above, 0, 0, 0])
    assert failed([0, 0, 0, 0, above, 0])
    obs = pb.double_pole_observation(np.array([4.8, 2, 0.52, -2, -0.52, 1], np.float32))
    np.testing.assert_allclose(obs, [1, 1, 1, -1, -1, 0.5], rtol=1e-6)


# ---------------------------------------------------------------------------------------------------
# Episodes.
# ---------------------------------------------------------------------------------------------------


def test_always_right_fails_at_reference_step():
    want_single = ref_count(ref_single_step, ref_single_failed, np.zeros(4), lambda t, s: 10.0, 500)
    assert want_single == 9  # from the reference: the pole passes 12 degrees on the 9th push
    got = pb.single_pole_balance_steps(constant_policy, jnp.float32(1.0))
    assert got.dtype == jnp.int32 and int(got) == want_single

    want_double = ref_count(ref_double_step, ref_double_failed, [0, 0, 0.07, 0, 0, 0], lambda t, s: 10.0, 1000)
    got = pb.double_pole_balance_steps(constant_policy, jnp.float32(1.0), max_steps=1000)
    assert 1 < want_double < 100 and int(got) == want_double


def test_stabilising_controller_survives_500_steps():
    starts = [np.zeros(4, np.float32), np.asarray(pb.single_pole_initial_state(jax.random.key(3)))]
    for s0 in starts:
        ref = ref_count(ref_single_step, ref_single_failed, s0,
                        lambda t, s: 10.0 if STABLE_W @ s > 0 else -10.0, pb.SINGLE_POLE_STEPS)
        assert ref == pb.SINGLE_POLE_STEPS
        got = pb.single_pole_balance_steps(linear_policy, (STABLE_W, jnp.float32(0.0)), jnp.asarray(s0))
        assert int(got) == pb.SINGLE_POLE_STEPS
    # The cap is honoured exactly, and unrolled loops agree with the plain one.
    params = (STABLE_W, jnp.float32(0.0))
    assert int(pb.single_pole_balance_steps(linear_policy, params, max_steps=37)) == 37
    assert int(pb.single_pole_balance_steps(linear_policy, params, max_steps=37, unroll=5)) == 37
    assert int(pb.single_pole_balance_steps(linear_policy, params, max_steps=0)) == 0


def _three_params():
    w = jnp.array([STABLE_W, [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, -1.0, -1.0]], jnp.float32)
    b = jnp.zeros(3, jnp.float32)
    return w, b


def test_vmap_matches_separate_runs_and_unroll():
    w, b = _three_params()
    s0 = jnp.array([0.01, 0.0, 0.03, 0.0], jnp.float32)
    run = lambda p, unroll=1: pb.single_pole_balance_steps(linear_policy, p, s0, 200, unroll=unroll)  # noqa: E731
    batched = np.asarray(jax.jit(jax.vmap(run))((w, b)))
    separate = np.array([int(run((w[i], b[i]))) for i in range(3)])
    np.testing.assert_array_equal(batched, separate)
    assert batched[0] == 200 and batched[1] < 200 and batched[2] < batched[1]  # distinct, so a real check
    unrolled = np.asarray(jax.jit(jax.vmap(lambda p: run(p, unroll=3)))((w, b)))
    np.testing.assert_array_equal(unrolled, batched)


def test_recurrent_policy_carry():
    """A policy with state: alternate right/left pushes, counted against the reference."""
    def alternating(params, obs, carry):
        return jnp.where(carry % 2 == 0, 1.0, 0.0) + 0.0 * obs[0], carry + 1

    want = ref_count(ref_single_step, ref_single_failed, [0, 0, 0.1, 0],
                     lambda t, s: 10.0 if t % 2 == 1 else -10.0, 300)
    got = pb.single_pole_balance_steps(alternating, None, jnp.array([0, 0, 0.1, 0], jnp.float32), 300,
                                       policy_carry=jnp.int32(0))
    assert 1 < want < 300 and int(got) == want


def test_population_of_1000_random_linear_policies():
    k1, k2 = jax.random.split(jax.random.key(7))
    w1 = jax.random.normal(k1, (1000, 4)) * 3
    w2 = jax.random.normal(k2, (1000, 6)) * 3
    b = jnp.zeros(1000, jnp.float32)
    single = jax.jit(jax.vmap(lambda p: pb.single_pole_balance_steps(linear_policy, p, max_steps=100)))
    double = jax.jit(jax.vmap(lambda p: pb.double_pole_balance_steps(linear_policy, p, max_steps=50)))
    for counts, cap in ((single((w1, b)), 100), (double((w2, b)), 50)):
        assert counts.shape == (1000,) and counts.dtype == jnp.int32
        counts = np.asarray(counts)
        assert counts.min() >= 1 and counts.max() <= cap
        assert len(np.unique(counts)) > 3  # the population really differs


# ---------------------------------------------------------------------------------------------------
# Double pole without velocities: Gruau's fitness, the last-100-steps trace, the generalization starts.
# ---------------------------------------------------------------------------------------------------


def test_gruau_fitness_hand_computed():
    cases = [(50, 999.0, 0.1 * 50 / 1000),  # 100 steps or fewer: only the balancing term
             (100, 1.0, 0.1 * 100 / 1000),
             (101, 2.0, 0.1 * 101 / 1000 + 0.9 * 0.75 / 2.0),
             (1000, 50.0, 0.1 + 0.9 * 0.75 / 50.0)]
    for balanced, jiggle, want in cases:
        assert float(pb.gruau_fitness(balanced, jiggle)) == pytest.approx(want, rel=1e-6)
    assert float(pb.double_pole_jiggle(jnp.array([1.0, -2.0, 0.5, -0.25, 9.0, 9.0]))) == pytest.approx(3.75)


def test_run_episode_trace_holds_the_last_balanced_steps():
    """A counter environment: the state after step k is k; it fails on reaching 7 (step 7)."""
    def run(max_steps, trace_len):
        return pb.run_episode(lambda p, o: 0.0 * o[0], None, lambda s, f: s + 1.0 + 0.0 * f, lambda s: s[0] >= 7.0,
                              lambda s: s, jnp.zeros(1), max_steps, action_fn=lambda o: o,
                              trace_fn=lambda s: s[0], trace_len=trace_len)

    out = run(100, 4)  # the C++ code sums the steps before the failing one: 3, 4, 5, 6
    assert int(out["steps"]) == 7 and int(out["balanced"]) == 6 and bool(out["failed"])
    np.testing.assert_array_equal(out["trace"], [3, 4, 5, 6])
    out = run(5, 4)  # capped before failing: the last four of five balanced steps
    assert int(out["steps"]) == 5 and int(out["balanced"]) == 5 and not bool(out["failed"])
    np.testing.assert_array_equal(out["trace"], [2, 3, 4, 5])
    np.testing.assert_array_equal(run(100, 10)["trace"], [0, 0, 0, 0, 1, 2, 3, 4, 5, 6])  # zeros first when short
    with pytest.raises(ValueError, match="trace_len"):
        run(10, 0)


def test_double_pole_nv_observation_and_generalization_starts():
    obs = pb.double_pole_nv_observation(jnp.array([1.2, 5.0, 0.26, 5.0, -0.52, 5.0]))
    np.testing.assert_allclose(obs, [0.25, 0.5, -1.0], rtol=1e-6)  # no velocities
    starts = np.asarray(pb.double_pole_nv_generalization_starts())
    assert starts.shape == (625, 6) and len(np.unique(starts, axis=0)) == 625
    np.testing.assert_allclose(starts[0], [-1.944, -1.215, -0.0565484, -0.1350878, 0, 0], rtol=1e-5)
    np.testing.assert_allclose(np.unique(starts[:, 0]), [-1.944, -1.08, 0.0, 1.08, 1.944], atol=1e-6)
    np.testing.assert_allclose(np.unique(starts[:, 2]), 0.12566304 * np.array([0.05, 0.25, 0.5, 0.75, 0.95]) - 0.06283152,
                               atol=1e-7)
    assert not starts[:, 4:].any()  # the short pole starts upright and still
