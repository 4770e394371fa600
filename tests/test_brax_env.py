"""The brax adapter (mbrl_jax.envs.BraxEnv) against brax's own reset/step on real trajectories.

One jitted, vmapped program per environment runs the adapter and, beside it, brax's own
``reset``/``step`` from the same keys and actions (brax compiles are slow: the program is
built once per module and the time limit is a traced parameter, so every test reuses it).
"""

from __future__ import annotations

import subprocess
import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("brax")

from mbrl_jax.envs import (  # noqa: E402
    BraxEnv,
    BraxEnvParams,
    brax_env_names,
    halfcheetah_reward,
    inverted_pendulum_reward,
    inverted_pendulum_termination,
    make,
)

STEPS = 60
NUM_KEYS = 4


class Rollout(NamedTuple):
    """Per key (leading axis) and step (second axis), the adapter's outputs and brax's own."""

    reset_obs: jax.Array  # the adapter's reset observation, (keys, obs)
    brax_reset_obs: jax.Array
    actions: jax.Array
    obs: jax.Array  # what the adapter's step returned (after any auto-reset)
    final_obs: jax.Array  # info["final_observation"]
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    info_terminated: jax.Array
    info_truncated: jax.Array
    brax_obs: jax.Array  # brax's own step, never reset
    brax_reward: jax.Array
    brax_done: jax.Array
    brax_reset_after: jax.Array | None  # brax's reset obs from the auto-reset's key


def _rollout_program(env: BraxEnv, with_resets: bool = True):
    """``run(keys, actions, params) -> Rollout``: jitted, vmapped over keys (without brax's
    reset from the auto-reset's key unless ``with_resets``: one compile less)."""
    raw = env.brax_env

    def run(key, actions, params):
        k_reset, k_steps = jax.random.split(key)
        reset_obs, state = env.reset(k_reset, params)
        brax_state = raw.reset(k_reset)

        def body(carry, xs):
            state, brax_state = carry
            k, action = xs
            obs, state, reward, terminated, truncated, info = env.step(k, state, action, params)
            brax_state = raw.step(brax_state, action)
            after = raw.reset(jax.random.split(k)[1]).obs if with_resets else None  # gymnax's split
            out = (obs, info["final_observation"], reward, terminated, truncated)
            out += (info["terminated"], info["truncated"])
            out += (brax_state.obs, brax_state.reward, brax_state.done, after)
            return (state, brax_state), out

        keys = jax.random.split(k_steps, actions.shape[0])
        _, out = jax.lax.scan(body, (state, brax_state), (keys, actions))
        return Rollout(reset_obs, brax_state.obs, actions, *out)

    return jax.jit(jax.vmap(run, in_axes=(0, 0, None)))


def _first_done(rollout: Rollout) -> np.ndarray:
    """Per key, the index of the first step that ended the episode (STEPS if none did)."""
    done = np.asarray(rollout.terminated | rollout.truncated)
    return np.where(done.any(axis=1), done.argmax(axis=1), done.shape[1])


def _before_reset_mask(rollout: Rollout) -> np.ndarray:
    """(keys, steps): steps up to and including the first end of an episode, where the
    adapter and brax's own un-reset trajectory must agree."""
    return np.arange(rollout.reward.shape[1])[None, :] <= _first_done(rollout)[:, None]


@pytest.fixture(scope="module")
def pendulum():
    env, params = make("brax/inverted_pendulum")
    return env, params, _rollout_program(env)


def _actions(env, key, num_keys=NUM_KEYS, steps=STEPS):
    space = env.action_space(env.default_params)
    return jax.random.uniform(
        key, (num_keys, steps, *space.shape), minval=space.low, maxval=space.high
    )


@pytest.fixture(scope="module")
def pendulum_runs(pendulum):
    """(default time limit, time limit 7) rollouts of InvertedPendulum, one compile."""
    env, params, run = pendulum
    keys = jax.random.split(jax.random.key(0), NUM_KEYS)
    actions = _actions(env, jax.random.key(1))
    long = run(keys, actions, params)
    short = run(keys, actions, BraxEnvParams(max_steps_in_episode=7))
    return jax.device_get(long), jax.device_get(short)


def test_spaces_and_name(pendulum):
    env, params, _ = pendulum
    assert isinstance(env, BraxEnv) and env.name == "brax/inverted_pendulum"
    assert env.brax_env.backend == "positional"
    assert params.max_steps_in_episode == 1000
    space = env.action_space(params)
    assert space.shape == (1,) and space.low == -1.0 and space.high == 1.0
    assert env.observation_space(params).shape == (4,)  # [x, theta, x_dot, theta_dot]


@pytest.mark.slow  # the shared rollout compiles brax for about 40 s
def test_reset_and_steps_agree_with_brax(pendulum_runs):
    run, _ = pendulum_runs
    np.testing.assert_array_equal(run.reset_obs, run.brax_reset_obs)
    # the keys give different starts (vmap over keys, not one start broadcast)
    assert len({tuple(row) for row in np.asarray(run.reset_obs)}) == NUM_KEYS
    mask = _before_reset_mask(run)
    np.testing.assert_array_equal(run.final_obs[mask], run.brax_obs[mask])
    np.testing.assert_array_equal(run.reward[mask], run.brax_reward[mask])
    np.testing.assert_array_equal(run.terminated[mask], run.brax_done[mask] != 0)
    # random forces topple the pole within 60 steps in some runs: termination is exercised
    assert run.terminated[mask].any() and not run.truncated.any()
    assert run.reward.dtype == np.float32 and run.terminated.dtype == np.bool_
    np.testing.assert_array_equal(run.info_terminated, run.terminated)
    np.testing.assert_array_equal(run.info_truncated, run.truncated)


@pytest.mark.slow
def test_auto_reset_on_termination(pendulum_runs):
    run, _ = pendulum_runs
    for row, t in enumerate(_first_done(run)):
        if t == STEPS:
            continue
        # the adapter continues from brax's reset with the step's reset key...
        np.testing.assert_array_equal(run.obs[row, t], run.brax_reset_after[row, t])
        # ...while the step's own final observation is the one brax reached, leaning > 0.2
        assert abs(run.final_obs[row, t, 1]) > 0.2
        assert not np.array_equal(run.obs[row, t], run.final_obs[row, t])
        # and steps before it returned what they reached
        np.testing.assert_array_equal(run.obs[row, :t], run.final_obs[row, :t])


@pytest.mark.slow
def test_time_limit_truncates(pendulum_runs):
    long, short = pendulum_runs
    # the expected flags from the definition: a counter of steps since the last reset
    expected = np.zeros_like(short.truncated)
    for row in range(NUM_KEYS):
        count = 0
        for t in range(STEPS):
            count += 1
            expected[row, t] = count >= 7
            if short.terminated[row, t] or expected[row, t]:
                count = 0
    np.testing.assert_array_equal(short.truncated, expected)
    assert short.truncated[:, 6].all()  # nothing topples within 7 steps from these starts
    np.testing.assert_array_equal(short.terminated[:, :7], False)
    # up to the limit the same steps as without it; at it, brax's state and then a reset
    np.testing.assert_array_equal(short.final_obs[:, :7], long.final_obs[:, :7])
    np.testing.assert_array_equal(short.obs[:, 6], short.brax_reset_after[:, 6])


@pytest.mark.slow
def test_inverted_pendulum_task_functions_equal_brax(pendulum_runs):
    run, _ = pendulum_runs
    mask = _before_reset_mask(run)
    previous = np.concatenate([run.reset_obs[:, None], run.obs[:, :-1]], axis=1)
    reward = inverted_pendulum_reward(previous, run.actions, run.final_obs)
    done = inverted_pendulum_termination(previous, run.actions, run.final_obs)
    assert reward.shape == done.shape == (NUM_KEYS, STEPS)
    np.testing.assert_array_equal(np.asarray(reward)[mask], run.brax_reward[mask])
    np.testing.assert_array_equal(np.asarray(done)[mask], run.brax_done[mask] != 0)
    # after the auto-reset too, on the adapter's own transitions
    np.testing.assert_array_equal(done, run.terminated)


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(ValueError, match="'inverted_pendelum'") as error:
        BraxEnv("inverted_pendelum")
    for name in ("inverted_pendulum", "halfcheetah", "hopper", "ant"):
        assert repr(name) in str(error.value)
    assert set(brax_env_names()) >= {"inverted_pendulum", "halfcheetah"}
    with pytest.raises(ValueError, match="'no_such_env'.*halfcheetah"):
        make("brax/no_such_env")
    with pytest.raises(ValueError, match="unknown brax backend 'warp'.*positional"):
        BraxEnv("inverted_pendulum", backend="warp")


def test_missing_brax_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "brax", None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[brax\]'"):
        BraxEnv("inverted_pendulum")


@pytest.mark.slow  # a subprocess
def test_mbrl_jax_imports_without_brax():
    code = (
        "import sys; sys.modules['brax'] = None\n"
        "import mbrl_jax, mbrl_jax.envs\n"
        "from mbrl_jax.envs import make, inverted_pendulum_termination\n"
        "make('dyna-maze')\n"
        "try:\n    make('brax/inverted_pendulum')\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install -e '.[brax]'" in out.stdout


def test_halfcheetah_reward_needs_the_x_position():
    obs = jnp.zeros((3, 17))
    with pytest.raises(ValueError, match="got 17 values.*exclude_current_positions"):
        halfcheetah_reward(obs, jnp.zeros((3, 6)), obs)
    # by hand: x moves 0.1 in dt = 0.05 -> 2.0, minus 0.1 * |a|^2 = 0.1 * 6 * 0.25
    obs, next_obs = jnp.zeros((18,)), jnp.zeros((18,)).at[0].set(0.1)
    np.testing.assert_allclose(halfcheetah_reward(obs, jnp.full(6, 0.5), next_obs), 1.85, 1e-6)


@pytest.mark.slow
def test_halfcheetah_agrees_with_brax_and_its_reward(tmp_path, monkeypatch):
    """A few HalfCheetah steps (its positional step compiles for half a minute or more)."""
    monkeypatch.chdir(tmp_path)  # MuJoCo writes its model warnings to ./MUJOCO_LOG.TXT
    env, params = make(
        "brax/halfcheetah", env_kwargs={"exclude_current_positions_from_observation": False}
    )
    assert env.action_space(params).shape == (6,) and env.observation_space(params).shape == (18,)
    steps = 8
    run = jax.device_get(
        _rollout_program(env, with_resets=False)(
            jax.random.split(jax.random.key(2), 2),
            _actions(env, jax.random.key(3), 2, steps),
            params,
        )
    )
    np.testing.assert_array_equal(run.reset_obs, run.brax_reset_obs)
    np.testing.assert_array_equal(run.final_obs, run.brax_obs)
    np.testing.assert_array_equal(run.obs, run.final_obs)  # it never terminates
    np.testing.assert_array_equal(run.reward, run.brax_reward)
    assert not run.terminated.any() and not run.truncated.any()
    previous = np.concatenate([run.reset_obs[:, None], run.obs[:, :-1]], axis=1)
    reward = halfcheetah_reward(previous, run.actions, run.final_obs)
    np.testing.assert_allclose(reward, run.brax_reward, rtol=1e-4, atol=1e-4)
