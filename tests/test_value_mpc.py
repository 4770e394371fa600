"""Value-bootstrapped MPC with a policy prior: the terminal value in a planned return
(gamma^H V(s_H), by hand on a linear model), the policy's sequences in the shooting
planners' populations (TD-MPC2's prior), and the blend agent over a neural Dyna agent
whose learner is SAC (:func:`mbrl_jax.blend.value_guided`)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from mbrl_jax.planners import (
    action_bounds,
    cem,
    evaluate_sequences,
    icem,
    mppi,
    policy_sequences,
    random_shooting,
)
from mbrl_jax.planners.shooting import _prior

# A linear model: s' = A s + B a, r = c.s + d.a, V(s) = w.s (state 2, action 1).
A = np.array([[1.0, 0.1], [-0.2, 0.9]], np.float32)
B = np.array([[0.0], [0.5]], np.float32)
C = np.array([1.0, -0.5], np.float32)
D = np.array([0.3], np.float32)
W = np.array([2.0, -1.0], np.float32)
GAMMA = 0.9
START = np.array([0.4, -0.3], np.float32)
BOX = spaces.Box(-1.0, 1.0, (1,), jnp.float32)
LIMIT = 0.38  # a rollout terminates when s'[0] passes it (the terminating reward counts)


def linear_step(states, actions, key, terminating=False):
    del key
    next_states = states @ A.T + actions @ B.T
    reward = states @ C + actions @ D
    done = next_states[:, 0] > LIMIT if terminating else jnp.zeros(reward.shape, bool)
    return next_states, reward, done


def linear_value(states):
    return states @ W


def hand_return(sequence, gamma=GAMMA, terminating=False, value=True) -> float:
    """sum_t gamma^t r_t + gamma^H V(s_H) in float64 NumPy, stopping after the reward of
    a terminating step (no value then)."""
    s, total = START.astype(np.float64), 0.0
    for t, a in enumerate(np.asarray(sequence, np.float64)):
        total += gamma**t * (C @ s + D @ a)
        s = A @ s + B @ a
        if terminating and s[0] > LIMIT:
            return total
    return total + (gamma ** len(sequence) * (W @ s) if value else 0.0)


SEQUENCES = np.array(
    [[[0.5], [-1.0], [0.2]], [[1.0], [1.0], [1.0]], [[-0.3], [0.0], [0.8]], [[0.0], [0.0], [0.0]]],
    np.float32,
)


@pytest.mark.parametrize("terminating", [False, True])
def test_the_terminal_value_enters_the_planned_return_as_gamma_h_v(terminating):
    step = functools.partial(linear_step, terminating=terminating)
    returns = evaluate_sequences(
        step, jnp.asarray(START), SEQUENCES, jax.random.key(0), gamma=GAMMA, value_fn=linear_value
    )
    hand = [hand_return(s, terminating=terminating) for s in SEQUENCES]
    np.testing.assert_allclose(returns, hand, rtol=1e-5, atol=1e-6)
    plain = evaluate_sequences(step, jnp.asarray(START), SEQUENCES, jax.random.key(0), gamma=GAMMA)
    bootstrap = [
        hand_return(s, terminating=terminating)
        - hand_return(s, terminating=terminating, value=False)
        for s in SEQUENCES
    ]
    np.testing.assert_allclose(returns - plain, bootstrap, rtol=1e-5, atol=1e-6)
    if terminating:  # the second sequence terminates before the horizon: no value
        assert bootstrap[1] == 0.0 and bootstrap[0] != 0.0


@pytest.mark.parametrize("make", [random_shooting, cem, icem, mppi])
def test_the_planners_score_their_best_sequence_with_the_terminal_value(make):
    settings = dict(horizon=3, population=24, gamma=GAMMA, value_fn=linear_value)
    if make in (cem, icem):
        settings |= dict(elites=4, iterations=2)
    planner = make(BOX, **settings)
    key = jax.random.key(1)
    _, _, info = jax.jit(lambda k: planner.plan(planner.init(k), linear_step, START, k))(key)
    hand = hand_return(info.best_sequence)
    assert float(info.best_return) == pytest.approx(hand, rel=1e-5)
    assert abs(hand - hand_return(info.best_sequence, value=False)) > 0.1  # V mattered


def feedback_policy(states, key):
    """a = -0.5 s_0 + s_1 + 0.2 noise: a feedback of the state plus noise."""
    noise = 0.2 * jax.random.normal(key, (states.shape[0], 1))
    return (-0.5 * states[:, :1] + states[:, 1:]) + noise


def test_policy_sequences_roll_the_policy_through_the_model_and_clip():
    bounds = action_bounds(spaces.Box(-0.6, 0.6, (1,), jnp.float32))
    key = jax.random.key(2)
    run = jax.jit(
        lambda k: policy_sequences(
            feedback_policy, linear_step, START, k, num=5, horizon=4, bounds=bounds
        )
    )
    sequences = run(key)
    assert sequences.shape == (5, 4, 1)
    np.testing.assert_array_equal(sequences, run(key))  # same key, same sequences
    assert not np.array_equal(sequences, run(jax.random.key(3)))
    # By hand: the same noise draws (one key per step for the policy), the linear model.
    k_act, _ = jax.random.split(key)
    s = np.broadcast_to(START, (5, 2)).astype(np.float64)
    for t, k in enumerate(jax.random.split(k_act, 4)):
        noise = 0.2 * np.asarray(jax.random.normal(k, (5, 1)), np.float64)
        a = np.clip(-0.5 * s[:, :1] + s[:, 1:] + noise, -0.6, 0.6)
        np.testing.assert_allclose(sequences[:, t], a, rtol=1e-5, atol=1e-6)
        s = s @ A.T + a @ B.T
    assert np.any(np.abs(sequences) == np.float32(0.6))  # some were clipped
    assert not np.all(sequences == sequences[:1])  # each row its own draws


# The contract test's problem: the state is the time step t, reward -|a - TARGET_t|^2.
BOX2 = spaces.Box(-1.0, 1.0, (2,), jnp.float32)
TARGET = jnp.array([[0.3, -0.2], [-0.5, 0.6], [0.7, 0.1]])


def timed_step(t, action, key):
    del key
    reward = -jnp.sum((action - TARGET[jnp.minimum(t, 2)]) ** 2, axis=-1)
    return t + 1, reward, jnp.zeros(t.shape, bool)


def target_policy(t, key):
    """The optimal action at each time step: only a rollout through the StepFn (the
    state advancing) reproduces the whole target sequence."""
    del key
    return TARGET[jnp.minimum(t, 2)]


PRIOR_PLANNERS = {
    "random_shooting": (random_shooting, dict(horizon=3, population=32)),
    "cem": (cem, dict(horizon=3, population=32, elites=4, iterations=2)),
    "icem": (icem, dict(horizon=3, population=32, elites=4, iterations=2)),
    "mppi": (mppi, dict(horizon=3, population=32, iterations=2)),
}


@functools.cache
def jitted_plan(name: str, **overrides):
    """``plan(seed)``: one call of the planner ``name`` of :data:`PRIOR_PLANNERS` from
    t = 0 with its first state, jitted once per setting for all tests."""
    make, settings = PRIOR_PLANNERS[name]
    planner = make(BOX2, **settings, **overrides)
    plan = jax.jit(lambda k: planner.plan(planner.init(k), timed_step, jnp.int32(0), k))
    return lambda seed=0: plan(jax.random.key(seed))


def _fast_or_slow(names):
    """The planners as parameters, iCEM's in make test-slow (it compiles for about 8 s)."""
    return [pytest.param(n, marks=pytest.mark.slow) if n == "icem" else n for n in names]


@pytest.mark.parametrize("name", _fast_or_slow(PRIOR_PLANNERS))
def test_the_policy_prior_sequences_are_in_the_population(name):
    _, _, info = jitted_plan(name, policy=target_policy, prior_fraction=0.05)()
    # The policy's sequence is the optimum (return 0), which no Gaussian or uniform draw
    # reaches exactly: the best sequence evaluated is the policy's, to the bit.
    np.testing.assert_array_equal(info.best_sequence, TARGET)
    assert float(info.best_return) == 0.0
    _, _, plain = jitted_plan(name)()
    assert float(plain.best_return) < -1e-4


@pytest.mark.parametrize("name", _fast_or_slow(PRIOR_PLANNERS))
def test_with_prior_fraction_0_the_planner_is_unchanged(name):
    plain = jitted_plan(name)(4)
    other = jitted_plan(name, policy=target_policy, prior_fraction=0.0)(4)
    jax.tree.map(np.testing.assert_array_equal, other, plain)


def noisy_policy(t, key):
    return jnp.clip(target_policy(t, key) + 0.3 * jax.random.normal(key, (t.shape[0], 2)), -1, 1)


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_same_key_same_plan_with_a_stochastic_prior(name):
    plan = jitted_plan(name, policy=noisy_policy, prior_fraction=0.25)
    first, second = plan(5), plan(5)
    jax.tree.map(np.testing.assert_array_equal, first, second)
    assert not np.array_equal(first[2].best_sequence, plan(6)[2].best_sequence)


def test_mppi_with_the_whole_population_from_the_policy_averages_its_sequences():
    _, _, info = jitted_plan("mppi", policy=target_policy, prior_fraction=1.0)()
    np.testing.assert_allclose(info.plan, TARGET, atol=1e-6)


@pytest.mark.parametrize(
    "fraction, population, count",
    [(0.05, 16, 1), (0.01, 16, 1), (0.0, 16, 0), (1.0, 16, 16), (0.5, 5, 3), (0.25, 512, 128)],
)
def test_the_number_of_prior_sequences(fraction, population, count):
    bounds = action_bounds(BOX)
    assert _prior(target_policy, fraction, population, 3, bounds).count == count
    assert _prior(None, fraction, population, 3, bounds).count == 0  # the planner's own


@pytest.mark.parametrize(
    "make, error, message",
    [
        (
            lambda: cem(BOX, policy=target_policy, prior_fraction=1.5),
            ValueError,
            r"prior_fraction must be in \[0.0, 1.0\], got 1.5",
        ),
        (
            lambda: mppi(BOX, prior_fraction=-0.1),
            ValueError,
            r"prior_fraction must be in \[0.0, 1.0\], got -0.1",
        ),
        (
            lambda: icem(BOX, prior_fraction="half"),
            ValueError,
            r"prior_fraction must be a number in \[0.0, 1.0\], got 'half'",
        ),
        (
            lambda: random_shooting(BOX, prior_fraction=jnp.nan),
            ValueError,
            "prior_fraction must be in",
        ),
        (lambda: cem(BOX, policy="greedy"), TypeError, "policy must be a PolicyFn"),
        (
            lambda: cem(BOX, horizon=0, policy=target_policy),
            ValueError,
            "horizon must be an integer >= 1, got 0",
        ),
        (
            lambda: policy_sequences(
                target_policy, timed_step, jnp.int32(0), jax.random.key(0), num=4, horizon=0
            ),
            ValueError,
            "horizon must be an integer >= 1, got 0",
        ),
        (
            lambda: policy_sequences(
                target_policy, timed_step, jnp.int32(0), jax.random.key(0), num=0, horizon=3
            ),
            ValueError,
            "num must be an integer >= 1, got 0",
        ),
    ],
)
def test_bad_prior_settings_are_clear_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_a_traced_prior_fraction_is_a_clear_error():
    with pytest.raises(ValueError, match="prior_fraction is static"):
        jax.jit(lambda f: cem(BOX, policy=target_policy, prior_fraction=f).init(None))(0.1)


# The blend agent: SAC in a neural Dyna agent on Pendulum-v1, acting by planning.

STEPS, STARTS = 240, 80  # real steps of a run; SAC's learning_starts = planning_starts


@pytest.fixture(scope="module")
def pendulum():
    """The parts of a tiny value-guided agent on gymnax Pendulum-v1: (env, sac, model,
    planner_of, step_fn_of, the Dyna agent, the value-guided agent)."""
    import gymnax

    from mbrl_jax import dyna
    from mbrl_jax.blend import value_guided
    from mbrl_jax.envs import pendulum_reward
    from mbrl_jax.learners import sac
    from mbrl_jax.models import neural_model
    from mbrl_jax.search import branched_rollouts

    env, _ = gymnax.make("Pendulum-v1")
    space = env.action_space()
    learner = sac(
        3, space, hidden=(16, 16), batch_size=16, capacity=STEPS + 16, learning_starts=STARTS
    )
    model = neural_model(
        3,
        space,
        ensemble_size=2,
        hidden=(16, 16),
        capacity=STEPS + 16,
        batch_size=16,
        train_steps_per_update=1,
        reward_fn=pendulum_reward,
    )
    search = branched_rollouts(learner, 3, batch_size=8, horizon=1, planning_starts=STARTS)
    base = dyna(learner, model.model, search, planning_steps=1)

    def planner_of(value_fn, policy):
        return cem(
            space,
            horizon=3,
            population=16,
            elites=4,
            iterations=2,
            gamma=0.99,
            value_fn=value_fn,
            policy=policy,
            prior_fraction=0.25,
        )

    def step_fn_of(model_state):
        return model.step_fn(model_state, "tsinf")

    agent = value_guided(base, learner, planner_of, step_fn_of, planning_starts=STARTS)
    return env, learner, model, planner_of, step_fn_of, base, agent


@pytest.fixture(scope="module")
def pendulum_runs(pendulum):
    """Two seeds of the value-guided agent, one jitted, vmapped call (run twice)."""
    from mbrl_jax.train import TrainConfig, make_train

    env, agent = pendulum[0], pendulum[-1]
    train = jax.jit(jax.vmap(make_train(env, agent, TrainConfig(num_steps=STEPS))))
    keys = jax.random.split(jax.random.key(0), 2)
    return train(keys), train(keys)


@pytest.mark.slow  # SAC inside Dyna compiles for about two minutes on a busy 2-core CPU
def test_value_guided_runs_in_make_train_vmapped_over_seeds(pendulum_runs):
    from mbrl_jax.learners import check_sac_training

    (state, metrics), again = pendulum_runs
    jax.tree.map(np.testing.assert_array_equal, (state, metrics), again)  # same key, same run
    sac_state = state.agent.learner
    check_sac_training(sac_state)
    np.testing.assert_array_equal(state.real_steps, [STEPS, STEPS])
    np.testing.assert_array_equal(sac_state.env_steps, [STEPS, STEPS])
    # SAC learned from real replay after learning_starts and from the model's batches.
    assert np.all(np.asarray(sac_state.updates) > STEPS - STARTS)
    assert np.all(np.isfinite(metrics.cumulative_reward))
    assert not np.array_equal(metrics.cumulative_reward[0], metrics.cumulative_reward[1])
    assert np.all(np.asarray(state.planner.mean)[:, :-1] != 0)  # a warm start was kept


def by_hand(pendulum, state, obs, key):
    """The planning call the agent documents: the SAC value and policy of its state,
    through its model, from its warm start, the key folded with 1."""
    _, learner, _, planner_of, step_fn_of, _, _ = pendulum
    sac_state = state.agent.learner
    planner = planner_of(
        lambda s: learner.value(sac_state, s), lambda s, k: learner.policy(sac_state, s, k)
    )
    step_fn = step_fn_of(state.agent.model)
    return planner.plan(state.planner, step_fn, obs, jax.random.fold_in(key, 1))


@pytest.mark.slow  # compiles SAC inside Dyna and the planner
def test_once_planning_started_the_action_is_the_planners(pendulum):
    env, _, _, _, _, base, agent = pendulum
    state = agent.init(jax.random.key(6))
    state = state._replace(real_steps=jnp.int32(STARTS))
    obs, _ = env.reset(jax.random.key(7))
    key = jax.random.key(8)
    action, acted = jax.jit(agent.act_stateful)(state, obs, key)
    planned, planner_state, _ = jax.jit(functools.partial(by_hand, pendulum))(state, obs, key)
    np.testing.assert_array_equal(action, planned)
    jax.tree.map(np.testing.assert_array_equal, acted.planner, planner_state)
    assert not np.array_equal(action, jax.jit(base.act)(state.agent, obs, key))
    jax.tree.map(np.testing.assert_array_equal, acted.agent, state.agent)  # acting learns nothing


@pytest.mark.slow
def test_the_planners_action_lands_in_the_replay(pendulum, pendulum_runs):
    """One more real step of seed 0 of the runs, by hand: the planner's action is taken
    and SAC's replay stores it as the next row."""
    from mbrl_jax.types import Transition

    env, agent = pendulum[0], pendulum[-1]
    state = jax.tree.map(lambda x: x[0], pendulum_runs[0][0])
    obs, env_state = env.reset(jax.random.key(7))
    key = jax.random.key(8)
    action, acted = jax.jit(agent.act_stateful)(state, obs, key)
    planned, _, _ = jax.jit(functools.partial(by_hand, pendulum))(state, obs, key)
    np.testing.assert_array_equal(action, planned)
    next_obs, _, reward, terminated, _, _ = env.step(jax.random.key(9), env_state, action)
    transition = Transition(obs, action, reward, next_obs, terminated)
    updated = jax.jit(agent.update)(acted, transition, key)
    assert int(updated.real_steps) == STEPS + 1
    buffer = updated.agent.learner.buffer
    row = buffer.data[int(buffer.next) - 1]  # capacity > STEPS: no wrap-around
    np.testing.assert_array_equal(row[3:4], action)  # [obs (3), action (1), ...]
    np.testing.assert_array_equal(row[:3], obs)


@pytest.mark.slow
def test_before_planning_starts_it_is_the_dyna_agent_alone(pendulum):
    from mbrl_jax.train import TrainConfig, make_train

    env, base, agent = pendulum[0], pendulum[-2], pendulum[-1]
    key = jax.random.split(jax.random.key(0), 2)[1]
    warmup = TrainConfig(num_steps=STARTS)
    guided, guided_metrics = jax.jit(make_train(env, agent, warmup))(key)
    alone, alone_metrics = jax.jit(make_train(env, base, warmup))(key)
    jax.tree.map(np.testing.assert_array_equal, guided.agent, alone)
    np.testing.assert_array_equal(guided_metrics.cumulative_reward, alone_metrics.cumulative_reward)
    assert int(guided.real_steps) == STARTS


def test_bad_value_guided_inputs_are_clear_errors(pendulum):
    from mbrl_jax.blend import value_guided
    from mbrl_jax.planners import mpc

    _, learner, model, planner_of, step_fn_of, base, _ = pendulum
    with pytest.raises(TypeError, match=r"value_guided needs a learner .* without \['value'"):
        value_guided(base, learner.learner, planner_of, step_fn_of)
    with pytest.raises(ValueError, match="planning_starts must be an integer >= 0, got -1"):
        value_guided(base, learner, planner_of, step_fn_of, planning_starts=-1)
    with pytest.raises(ValueError, match="prior_fraction must be in"):
        value_guided(base, learner, lambda v, p: cem(BOX, policy=p, prior_fraction=2.0), step_fn_of)
    other = mpc(planner_of(None, None), model.model, step_fn_of)
    wrapped = value_guided(other, learner, planner_of, step_fn_of, planning_starts=0)
    with pytest.raises(TypeError, match="value_guided wraps a Dyna agent"):
        wrapped.act(wrapped.init(jax.random.key(0)), jnp.zeros(3), jax.random.key(1))
