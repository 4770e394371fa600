"""Shooting planners (random shooting, CEM, MPPI, categorical CEM) and the MPC agent."""

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from mbrl_jax.envs import ContinuousCartPole
from mbrl_jax.planners import (
    GaussianPlanState,
    action_bounds,
    categorical_cem,
    cem,
    colored_noise,
    env_step_fn,
    evaluate_sequences,
    icem,
    mpc,
    mppi,
    plan_batch,
    random_shooting,
)
from mbrl_jax.planners.path_integral import _mppi_weights
from mbrl_jax.train import TrainConfig, make_train

BOX = spaces.Box(-1.0, 1.0, (2,), jnp.float32)
TARGET = jnp.array([[0.3, -0.2], [-0.5, 0.6], [0.7, 0.1]])  # best action at each step


def quadratic_step(t, action, key):
    """A StepFn whose state is the time step: reward -|a - target_t|^2, never done."""
    reward = -jnp.sum((action - TARGET[t]) ** 2, axis=-1)
    return t + 1, reward, jnp.zeros(t.shape, bool)


def plan_once(planner, step_fn, state, seed=0):
    key = jax.random.key(seed)
    return jax.jit(lambda k: planner.plan(planner.init(k), step_fn, state, k))(key)


def test_cem_finds_the_optimum_of_a_quadratic_cost():
    planner = cem(BOX, horizon=3, population=200, elites=20, iterations=8)
    action, planner_state, info = plan_once(planner, quadratic_step, jnp.int32(0))
    np.testing.assert_allclose(info.plan, TARGET, atol=0.02)
    np.testing.assert_allclose(action, TARGET[0], atol=0.02)
    assert info.best_return > -0.01
    # Warm start: the next call starts from the plan shifted by one step.
    np.testing.assert_allclose(planner_state.mean[:2], info.plan[1:])
    np.testing.assert_allclose(planner_state.mean[2], [0.0, 0.0])


def test_cem_respects_bounds_when_the_optimum_lies_outside():
    planner = cem(BOX, horizon=3, population=200, elites=20, iterations=8, low=-0.25, high=0.25)
    _, _, info = plan_once(planner, quadratic_step, jnp.int32(0))
    assert float(jnp.max(jnp.abs(info.best_sequence))) <= 0.25
    optimum = -float(jnp.sum((jnp.clip(TARGET, -0.25, 0.25) - TARGET) ** 2))
    assert float(info.best_return) == pytest.approx(optimum, abs=0.01)


def test_mppi_weights_equal_a_hand_softmax():
    returns = jnp.array([1.0, 3.0, -2.0, 2.5])
    temperature = 0.7
    hand = np.exp(np.asarray(returns) / temperature)
    hand /= hand.sum()
    np.testing.assert_allclose(_mppi_weights(returns, temperature), hand, rtol=1e-6)


def test_mppi_approaches_the_optimum_of_a_quadratic_cost():
    planner = mppi(BOX, horizon=3, population=500, temperature=0.02, noise_std=0.3, iterations=6)
    _, _, info = plan_once(planner, quadratic_step, jnp.int32(0))
    # The weighted average of noisy samples: near the optimum, far better than the
    # zero plan it started from (return -1.24).
    np.testing.assert_allclose(info.plan, TARGET, atol=0.1)
    assert -float(jnp.sum((info.plan - TARGET) ** 2)) > -0.02


def lag_one_correlation(noise: np.ndarray) -> float:
    return float(
        np.mean(
            [np.corrcoef(noise[:, t], noise[:, t + 1])[0, 1] for t in range(noise.shape[1] - 1)]
        )
    )


@pytest.mark.parametrize("horizon", [15, 16])
def test_colored_noise_has_unit_variance_and_the_asked_correlation(horizon):
    white = np.asarray(colored_noise(jax.random.key(0), 0.0, (20000, horizon, 1)))[..., 0]
    red = np.asarray(colored_noise(jax.random.key(1), 2.0, (20000, horizon, 1)))[..., 0]
    np.testing.assert_allclose(white.var(axis=0), 1.0, atol=0.05)
    np.testing.assert_allclose(red.var(axis=0), 1.0, atol=0.05)
    assert abs(lag_one_correlation(white)) < 0.05  # beta = 0: white
    assert lag_one_correlation(red) > 0.6  # beta = 2: strongly correlated in time


def test_icem_finds_the_optimum_of_a_quadratic_cost_and_carries_elites():
    planner = icem(BOX, horizon=3, population=200, elites=20, iterations=6, beta=0.5)
    action, planner_state, info = plan_once(planner, quadratic_step, jnp.int32(0))
    np.testing.assert_allclose(info.best_sequence, TARGET, atol=0.05)
    np.testing.assert_array_equal(action, info.best_sequence[0])
    assert planner_state.elites.shape == (6, 3, 2)  # 30% of 20 elites, shifted
    # Shifted by one step, the freed last step filled with the final mean's last action.
    np.testing.assert_array_equal(
        planner_state.elites[:, -1], jnp.broadcast_to(planner_state.mean[-1], (6, 2))
    )


def test_random_shooting_takes_the_best_sequence_it_drew():
    planner = random_shooting(BOX, horizon=3, population=64)
    action, _, info = plan_once(planner, quadratic_step, jnp.int32(0))
    returns = -jnp.sum((info.best_sequence - TARGET) ** 2)
    assert float(info.best_return) == pytest.approx(float(returns), rel=1e-5)
    np.testing.assert_array_equal(action, info.best_sequence[0])


def test_evaluate_sequences_averages_particles_and_stops_at_termination():
    def step(state, action, key):  # reward = action + noise; done once the sum passes 2
        reward = action[:, 0] + jax.random.normal(key, action[:, 0].shape)
        return state + action[:, 0], reward, state + action[:, 0] > 2.0

    sequences = jnp.array([[[1.0], [1.0], [1.0], [1.0]], [[0.5], [0.5], [0.5], [0.5]]])
    returns = evaluate_sequences(
        step, jnp.float32(0.0), sequences, jax.random.key(0), particles=4000
    )
    # First sequence terminates on its third step (state 3 > 2): 3 rewards of mean 1.
    np.testing.assert_allclose(returns, [3.0, 2.0], atol=0.1)


@pytest.mark.slow
def test_plan_batch_equals_one_call_per_environment_vmapped_or_chunked():
    planner = cem(BOX, horizon=3, population=50, elites=5, iterations=3)
    starts = jnp.array([0, 1, 2, 0], jnp.int32)  # different start times, different optima
    keys = jax.random.split(jax.random.key(4), 4)
    states = jax.vmap(planner.init)(keys)
    singles = [
        planner.plan(GaussianPlanState(states.mean[i]), quadratic_step, starts[i], keys[i])
        for i in range(4)
    ]
    for chunk in (None, 1, 2):
        actions, _, info = jax.jit(
            lambda p, s, k, c=chunk: plan_batch(planner, p, quadratic_step, s, k, chunk=c)
        )(states, starts, keys)
        for i, (action, _, one_info) in enumerate(singles):
            np.testing.assert_allclose(actions[i], action, atol=1e-6)
            np.testing.assert_allclose(info.best_return[i], one_info.best_return, atol=1e-6)
    with pytest.raises(ValueError, match="chunk must be an integer >= 1, got 0"):
        plan_batch(planner, states, quadratic_step, starts, keys, chunk=0)


def test_same_key_same_plan():
    planner = cem(BOX, horizon=3, population=50, elites=5, iterations=3)
    first = plan_once(planner, quadratic_step, jnp.int32(0), seed=3)
    second = plan_once(planner, quadratic_step, jnp.int32(0), seed=3)
    jax.tree.map(np.testing.assert_array_equal, first, second)


@pytest.fixture(scope="module")
def cartpole():
    return ContinuousCartPole()


def true_model_episode(env, planner, steps):
    """``episode(key) -> return``: planning through the environment's own dynamics."""
    params = env.default_params
    step_fn = env_step_fn(env, params)

    def episode(key):
        _, state = env.reset(key, params)

        def body(carry, k):
            state, planner_state, alive, total = carry
            k_plan, k_env = jax.random.split(k)
            action, planner_state, _ = planner.plan(planner_state, step_fn, state, k_plan)
            _, state, reward, terminated, _ = env.step_env(k_env, state, action, params)
            total = total + jnp.where(alive, reward, 0.0)
            return (state, planner_state, alive & ~terminated, total), None

        init = (state, planner.init(key), jnp.ones((), bool), jnp.zeros(()))
        (_, _, _, total), _ = jax.lax.scan(body, init, jax.random.split(key, steps))
        return total

    return jax.jit(jax.vmap(episode))


def test_cem_with_the_true_model_balances_the_cartpole(cartpole):
    planner = cem(cartpole.action_space(), horizon=15, population=64, elites=8, iterations=3)
    returns = true_model_episode(cartpole, planner, 200)(jax.random.split(jax.random.key(0), 3))
    np.testing.assert_array_equal(returns, [200.0, 200.0, 200.0])
    random_returns = true_model_episode(
        cartpole, random_shooting(cartpole.action_space(), horizon=1, population=1), 200
    )(jax.random.split(jax.random.key(0), 8))
    assert float(jnp.mean(random_returns)) < 60  # a random force drops the pole fast


@pytest.mark.slow
def test_icem_with_the_true_model_balances_the_cartpole(cartpole):
    planner = icem(cartpole.action_space(), horizon=15, population=64, elites=8, iterations=3)
    returns = true_model_episode(cartpole, planner, 200)(jax.random.split(jax.random.key(0), 3))
    # iCEM acts on the best sequence; with reward 1 per step many sequences tie, and
    # the first of them may let the cart drift off the track late in the episode.
    assert float(jnp.min(returns)) >= 150 and float(jnp.mean(returns)) >= 190


def test_categorical_cem_balances_gymnax_cartpole():
    env, params = gymnax.make("CartPole-v1")
    planner = categorical_cem(spaces.Discrete(2), horizon=12, population=32, elites=4, iterations=3)
    returns = true_model_episode(env, planner, 150)(jax.random.split(jax.random.key(1), 2))
    np.testing.assert_array_equal(returns, [150.0, 150.0])


def test_categorical_cem_finds_the_best_sequence_of_a_known_problem():
    target = jnp.array([2, 0, 1, 2])

    def step(t, action, key):
        return t + 1, (action == target[t]).astype(jnp.float32), jnp.zeros(t.shape, bool)

    planner = categorical_cem(spaces.Discrete(3), horizon=4, population=40, elites=5, iterations=4)
    action, _, info = plan_once(planner, step, jnp.int32(0))
    np.testing.assert_array_equal(info.best_sequence, target)
    assert int(action) == 2 and float(info.best_return) == 4.0


def test_mpc_agent_runs_in_the_training_loop_and_keeps_its_warm_start(cartpole):
    """mpc(planner, model) is an Agent: the shared make_train runs it; here the model
    is a (fixed) wrapper of the true dynamics reconstructed from the observation."""
    from mbrl_jax.envs import CartPoleState
    from mbrl_jax.types import Model, Transition

    def to_state(obs):
        x, x_dot, theta, theta_dot = jnp.moveaxis(obs, -1, 0)
        return CartPoleState(
            time=jnp.zeros(x.shape, jnp.int32), x=x, x_dot=x_dot, theta=theta, theta_dot=theta_dot
        )

    true_step = env_step_fn(cartpole)

    def obs_step(obs, action, key):
        state, reward, done = true_step(to_state(obs), action, key)
        return cartpole.get_obs(state).T, reward, done

    model = Model(
        lambda key: jnp.zeros(()),
        lambda s, t, k: s + 1,  # counts real transitions
        lambda s, o, a, k: Transition(o, a, 0.0, o, False),
    )
    planner = cem(cartpole.action_space(), horizon=10, population=32, elites=4, iterations=2)
    agent = mpc(planner, model, lambda model_state: obs_step)
    train = jax.jit(make_train(cartpole, agent, TrainConfig(num_steps=120)))
    state, metrics = train(jax.random.key(0))
    assert int(state.model) == 120
    assert float(metrics.cumulative_reward[-1]) == 120.0 and int(metrics.episodes[-1]) == 0
    assert bool(jnp.any(state.planner.mean != 0.0))  # the warm start carries a plan


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: cem(BOX, population=5, elites=10), "elites \\(10\\) must not"),
        (lambda: cem(BOX, horizon=0), "horizon must be"),
        (lambda: cem(BOX, iterations=0), "iterations must be"),
        (lambda: cem(BOX, smoothing=1.5), "smoothing must be in"),
        (lambda: cem(BOX, low=jnp.zeros(3)), "has shape \\(3,\\).*shape \\(2,\\)"),
        (lambda: cem(BOX, low=0.5, high=0.1), "low < high"),
        (lambda: cem(spaces.Discrete(3)), "cem needs a Box action space"),
        (lambda: mppi(BOX, temperature=0.0), "temperature must be"),
        (lambda: mppi(BOX, noise_std=-1.0), "noise_std must be"),
        (lambda: mppi(spaces.Discrete(3)), "mppi needs a Box action space"),
        (lambda: random_shooting(BOX, population=0), "population must be"),
        (lambda: random_shooting(BOX, particles=0), "particles must be"),
        (lambda: random_shooting(spaces.Discrete(2)), "random_shooting needs a Box"),
        (lambda: categorical_cem(spaces.Discrete(0)), "action_space.n must be"),
        (lambda: categorical_cem(BOX), "categorical_cem needs a Discrete action space"),
        (lambda: icem(BOX, keep_fraction=1.5), "keep_fraction must be in"),
        (lambda: icem(BOX, decay=0.5), "decay must be in"),
        (lambda: icem(BOX, beta=-1.0), "beta must be"),
        (lambda: icem(spaces.Discrete(3)), "icem needs a Box action space"),
        (
            lambda: categorical_cem(spaces.Discrete(2), population=5, elites=6),
            "elites \\(6\\) must not",
        ),
    ],
)
def test_bad_planner_settings_are_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_action_bounds_default_to_the_action_space():
    bounds = action_bounds(spaces.Box(-2.0, 2.0, (1,), jnp.float32))
    np.testing.assert_array_equal(bounds.low, [-2.0])
    np.testing.assert_array_equal(bounds.high, [2.0])
