"""MBPO and value-guided MPC end to end on a brax task (InvertedPendulum through the brax
adapter) at a toy size: the whole chunked run compiles, runs vmapped over two seeds and
learns from real and model transitions (make test-slow: brax and SAC compile slowly)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("brax")

from experiments.mbpo_common import MBPOConfig, make_parts, run_group  # noqa: E402
from mbrl_jax.blend import value_guided  # noqa: E402
from mbrl_jax.envs import inverted_pendulum_reward, inverted_pendulum_termination, make  # noqa: E402
from mbrl_jax.planners import cem  # noqa: E402
from mbrl_jax.sweep import seed_keys  # noqa: E402

STEPS, CHUNK, STARTS, G = 80, 40, 20, 2

TINY = replace(
    MBPOConfig(),
    runs=2, eval_every=CHUNK, eval_episodes=1, learning_starts=STARTS, hidden=(16, 16),
    batch_size=16, rollout_batch=8, ensemble_size=2, elites=2, model_hidden=(16,),
    model_max_epochs=2, model_capacity=200,
)  # fmt: skip


@pytest.fixture(scope="module")
def pendulum():
    env, params = make("brax/inverted_pendulum")
    return env, replace(params, max_steps_in_episode=50)


def mbpo_parts(env, params):
    return make_parts(
        env, params, G, TINY, STEPS, reward_fn=inverted_pendulum_reward,
        termination_fn=inverted_pendulum_termination,
    )  # fmt: skip


@pytest.mark.slow
def test_mbpo_runs_end_to_end_on_brax(pendulum):
    env, params = pendulum
    parts = mbpo_parts(env, params)
    _, keys = seed_keys(0, 2)
    returns, _, _, state, _ = run_group(env, params, parts, TINY, STEPS, keys)
    assert returns.shape == (2, STEPS // CHUNK) and np.all(np.isfinite(returns))
    # one real update per step from STARTS on, G model updates per step once planning
    # starts (after the first chunk, when the model has been fitted)
    real = STEPS - STARTS + 1
    planned = G * (STEPS - CHUNK + 1)
    np.testing.assert_array_equal(np.asarray(state.learner.updates), real + planned)
    rolled_out, model_buffer = TINY.rollout_batch * planned, state.learner.model_buffer
    assert np.all(np.asarray(model_buffer.size) == min(rolled_out, TINY.model_capacity))
    assert np.all(np.asarray(model_buffer.next) == rolled_out % TINY.model_capacity)


@pytest.mark.slow
def test_value_guided_mpc_runs_end_to_end_on_brax(pendulum):
    env, params = pendulum
    parts = mbpo_parts(env, params)
    space = env.action_space(params)
    agent = value_guided(
        parts.agent,
        parts.learner,
        lambda v, p: cem(space, horizon=3, population=16, elites=4, iterations=2,
                         particles=2, gamma=0.99, value_fn=v, policy=p, prior_fraction=0.25),
        lambda m: parts.model.step_fn(m, "tsinf"),
        planning_starts=CHUNK,
    )  # fmt: skip
    guided = parts._replace(agent=agent)
    _, keys = seed_keys(0, 2)
    returns, _, _, state, _ = run_group(env, params, guided, TINY, STEPS, keys)
    assert np.all(np.isfinite(returns))
    assert np.all(np.asarray(state.agent.learner.env_steps) == STEPS)
    # the planner's actions are what landed in SAC's replay, within the Box
    stored = np.asarray(state.agent.learner.buffer.data[..., 4])  # obs 4 values, then action
    assert np.all(np.abs(stored[:, :STEPS]) <= 1.0) and np.any(stored[:, CHUNK:STEPS] != 0)
