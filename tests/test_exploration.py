"""The exploration-mountaincar experiment: its task functions against gymnax, its goal
test on hand policies, and the output contract at its tiny preset."""

from __future__ import annotations

import json

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments.classic_control.continuous_mountain_car import EnvState

from experiments import load
from experiments.exploration_mountaincar import ARMS, ENV_NAME, reached_goal
from mbrl_jax.config import override
from mbrl_jax.envs import continuous_mountain_car_reward, continuous_mountain_car_termination
from tests.test_experiments import CONTRACT_KEYS

ENV, PARAMS = gymnax.make(ENV_NAME)


def test_the_task_functions_are_the_environments():
    """Reward and termination from (obs, action, next_obs) equal gymnax's own step, on
    states all over the box (the goal included) and actions beyond the bounds."""
    k_pos, k_vel, k_act = jax.random.split(jax.random.key(0), 3)
    n = 512
    position = jax.random.uniform(k_pos, (n,), minval=-1.2, maxval=0.6)
    velocity = jax.random.uniform(k_vel, (n,), minval=-0.07, maxval=0.07)
    action = jax.random.uniform(k_act, (n, 1), minval=-1.5, maxval=1.5)
    state = EnvState(position=position, velocity=velocity, time=jnp.zeros((n,), jnp.int32))
    step = jax.vmap(ENV.step_env, in_axes=(None, 0, 0, None))
    next_obs, _, reward, terminated, _ = step(jax.random.key(1), state, action, PARAMS)
    obs = jnp.stack([position, velocity], -1)
    assert 10 < int(jnp.sum(terminated)) < n  # both kinds of step are tested
    np.testing.assert_array_equal(
        continuous_mountain_car_termination(obs, action, next_obs), terminated
    )
    np.testing.assert_allclose(
        continuous_mountain_car_reward(obs, action, next_obs), reward, rtol=1e-6
    )


def episode_return(policy, steps=150):
    """The return of one ``steps``-step episode from reset, stopped at termination."""

    def step(carry, key):
        obs, state, alive, total = carry
        next_obs, state, reward, done, _ = ENV.step_env(key, state, policy(obs), PARAMS)
        return (next_obs, state, alive & ~done, total + jnp.where(alive, reward, 0.0)), None

    obs, state = ENV.reset_env(jax.random.key(2), PARAMS)
    start = (obs, state, jnp.bool_(True), jnp.float32(0.0))
    return jax.lax.scan(step, start, jax.random.split(jax.random.key(3), steps))[0][3]


def test_reached_goal_tells_a_swinging_car_from_a_still_or_pushing_one():
    """Full force along the velocity (left first, from rest) reaches the flag within
    the trial's 150 steps (in about 80); no force, or full force to the right (too weak
    to climb straight), does not."""
    swing = episode_return(lambda obs: jnp.where(obs[1:] > 0, 1.0, -1.0))
    still = episode_return(lambda obs: jnp.zeros((1,)))
    push = episode_return(lambda obs: jnp.ones((1,)))
    np.testing.assert_array_equal(reached_goal(np.array([swing, still, push])), [1, 0, 0])
    assert 90 < float(swing) < 100 and float(push) == pytest.approx(-15.0, rel=1e-5)


def test_bad_settings_are_clear_errors():
    module = load("exploration-mountaincar")
    with pytest.raises(ValueError, match=r"exploration_weight must be in \[0.0, inf\], got -1.0"):
        module.check(module.Config(exploration_weight=-1.0))
    with pytest.raises(ValueError, match="ensemble_size must be >= 2 for a disagreement, got 1"):
        module.check(module.Config(ensemble_size=1))


@pytest.mark.slow
def test_the_tiny_preset_writes_the_contract(tmp_path):
    from mbrl_jax.results import write_result

    module = load("exploration-mountaincar")
    config = override(module.PRESETS["tiny"], ["exploration_weight=3.0"])
    result = module.run(config, progress=False)
    paths = write_result(result, tmp_path)
    assert CONTRACT_KEYS <= set(json.loads(paths["json"].read_text()))
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    assert result["config"]["exploration_weight"] == 3.0 and result["seeds"] == [0, 1]
    assert list(result["curves"]) == list(ARMS)
    for arm in ARMS:
        c = result["curves"][arm]
        returns = np.asarray(result["returns_per_seed"][arm])
        assert returns.shape == (2, 2) and c["x"] == [0.0, 1.0]
        reached = np.maximum.accumulate(returns > 0, axis=1)
        np.testing.assert_allclose(c["y"], reached.mean(0))
        assert all(0.0 <= y <= 1.0 for y in c["y"]) and c["y"] == sorted(c["y"])
    # The random trial 0 does not plan: both arms play the same episode.
    pets, bonus = (np.asarray(result["returns_per_seed"][a]) for a in ARMS)
    np.testing.assert_array_equal(pets[:, 0], bonus[:, 0])
