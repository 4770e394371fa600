"""The PETS loop at toy sizes: what each trial stores, plays and reports."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbrl_jax.envs import ContinuousCartPole, cartpole_reward, cartpole_termination
from mbrl_jax.models import neural_model
from mbrl_jax.pets import make_pets
from mbrl_jax.planners import cem

TRIAL = 100


@pytest.fixture(scope="module")
def env():
    return ContinuousCartPole()


def toy_model(obs_size=4, env=None):
    space = (env or ContinuousCartPole()).action_space()
    return neural_model(
        obs_size, space, ensemble_size=2, hidden=(16, 16), capacity=200, max_epochs=5,
        reward_fn=cartpole_reward, termination_fn=cartpole_termination,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pets(env):
    planner = cem(env.action_space(), horizon=5, population=16, elites=4, iterations=2, particles=2)
    return make_pets(env, toy_model(env=env), planner, trial_length=TRIAL)


@pytest.fixture(scope="module")
def compiled(pets):
    keys = jax.random.split(jax.random.key(0), 2)
    return jax.jit(jax.vmap(pets.init)), jax.jit(jax.vmap(pets.trial)), keys


@pytest.mark.slow
def test_random_trial_stores_every_step_and_restarts_episodes(compiled):
    init, _, keys = compiled
    state, metrics = init(keys)
    np.testing.assert_array_equal(state.data.size, [TRIAL, TRIAL])
    np.testing.assert_array_equal(metrics.episode_return, metrics.episode_length)
    for run in range(2):
        done = np.asarray(state.data.data.done[run, :TRIAL])
        assert done.any(), "random forces drop the pole within the trial"
        end = int(np.argmax(done))
        assert int(metrics.episode_length[run]) == end + 1  # metrics: the first episode
        # The step after the end starts a new episode from a reset state.
        restart = np.asarray(state.data.data.obs[run, end + 1])
        assert np.all(np.abs(restart) <= 0.05)
    assert bool(jnp.all(state.info.epochs >= 1)) and bool(jnp.all(state.info.nan_step < 0))


@pytest.mark.slow
def test_planned_trial_stores_only_the_first_episode(compiled):
    init, trial, keys = compiled
    state, _ = init(keys)
    after, metrics = trial(state, jax.random.split(jax.random.key(1), 2))
    np.testing.assert_array_equal(after.data.size, state.data.size + metrics.episode_length)
    np.testing.assert_array_equal(metrics.episode_return, metrics.episode_length)
    # The stored transitions of the planned episode end at its termination, if any.
    for run in range(2):
        start, length = int(state.data.size[run]), int(metrics.episode_length[run])
        done = np.asarray(after.data.data.done[run, start : start + length])
        assert not done[:-1].any()
        assert done[-1] == (length < TRIAL)
    assert bool(jnp.all(after.total_steps > state.total_steps))  # refitted


@pytest.mark.slow
def test_same_key_same_trial(compiled):
    init, trial, keys = compiled
    state, _ = init(keys)
    first = trial(state, keys)
    second = trial(state, keys)
    jax.tree.map(np.testing.assert_array_equal, first, second)


def test_bad_pets_settings_are_clear_errors(env):
    planner = cem(env.action_space(), horizon=5, population=16, elites=4, iterations=2)
    with pytest.raises(ValueError, match="trial_length must be an integer >= 1, got 0"):
        make_pets(env, toy_model(env=env), planner, trial_length=0)
    with pytest.raises(ValueError, match="propagation must be one of"):
        make_pets(env, toy_model(env=env), planner, propagation="ts2")


@pytest.mark.slow
def test_model_built_for_other_observations_is_a_clear_error(env):
    planner = cem(env.action_space(), horizon=5, population=16, elites=4, iterations=2)
    pets = make_pets(env, toy_model(obs_size=3, env=env), planner, trial_length=TRIAL)
    with pytest.raises(ValueError, match=r"built for observations of shape \(3,\).*\(100, 4\)"):
        pets.init(jax.random.key(0))
