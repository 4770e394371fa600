"""MBPO through dyna(): the rollout-length schedule by hand, branches cut at the scheduled
length, n = 0 bit for bit SAC, and the experiment end to end at a toy size."""

from __future__ import annotations

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from mbrl_jax.agents import neural_dyna
from mbrl_jax.cli import main
from mbrl_jax.learners import sac
from mbrl_jax.models import neural_model
from mbrl_jax.replay import buffer_add, buffer_init
from mbrl_jax.results import speedups, steps_to_target
from mbrl_jax.search import branched_rollouts, rollout_length_schedule
from mbrl_jax.types import Agent, Transition

OBS = 3
BOX = spaces.Box(-2.0, 2.0, (1,), jnp.float32)


def test_rollout_length_schedule_by_hand():
    k = rollout_length_schedule(100, 200, 1, 5)
    steps = jnp.array([0, 100, 150, 174, 175, 200, 1000])
    # 1 + (t - 100) / 100 x 4, floored, clipped to [1, 5]
    np.testing.assert_array_equal(np.asarray(k(steps)), [1, 1, 3, 3, 4, 5, 5])
    with pytest.raises(ValueError, match="max_length"):
        rollout_length_schedule(0, 10, 3, 2)
    with pytest.raises(ValueError, match="last_step"):
        rollout_length_schedule(10, 10, 1, 2)


def test_branches_restart_at_the_scheduled_length():
    learner = sac(OBS, BOX, hidden=(4,), capacity=8, batch_size=2)
    schedule = rollout_length_schedule(0, 10, 1, 3)  # k = 1 at t = 0, 3 from t = 10 on
    search = branched_rollouts(
        learner.learner, OBS, batch_size=2, horizon=schedule, real_buffer=lambda buffer: buffer
    )
    real = buffer_add(buffer_init(Transition(*([jnp.zeros(OBS)] * 5)), 4),
                      Transition(*([jnp.zeros(OBS)] * 5)))  # fmt: skip
    state = search.init(jax.random.key(0))
    batch = Transition(jnp.ones((2, OBS)), jnp.zeros((2, 1)), jnp.zeros(2), jnp.ones((2, OBS)),
                       jnp.zeros(2, bool))  # fmt: skip

    def depths(state, count):
        seen = []
        for _ in range(count):
            state = search.update(state, batch, None, real, jax.random.key(1), simulated=True)
            seen.append(int(state.depth))
        return seen

    assert depths(state, 3) == [0, 0, 0]  # k = 1: every step starts afresh
    state = state._replace(real_steps=jnp.int32(10))
    assert depths(state, 6) == [1, 2, 0, 1, 2, 0]
    with pytest.raises(ValueError, match="horizon"):
        branched_rollouts(learner.learner, OBS, horizon=0)
    with pytest.raises(ValueError, match="schedule gives 0 at real step 1000000000"):
        branched_rollouts(learner.learner, OBS, horizon=lambda t: jnp.where(t > 100, 0, 1))


@pytest.mark.slow  # compiles SAC twice (about 17 s)
def test_mbpo_with_no_planning_is_sac_bit_for_bit():
    learner = sac(OBS, BOX, hidden=(8,), capacity=16, batch_size=4, learning_starts=2,
                  model_capacity=32)  # fmt: skip
    model = neural_model(OBS, BOX, ensemble_size=2, hidden=(8,), capacity=16)
    mbpo = neural_dyna(learner, model, OBS, planning_steps=0, batch_size=4, planning_starts=1)
    alone = Agent(*learner.learner)

    def run(agent, key):
        """Four real transitions, one scan (one compiled update per agent)."""

        def step(state, i):
            k = jax.random.fold_in(key, i)
            obs, next_obs = jax.random.normal(k, (2, OBS))
            t = Transition(obs, jnp.full((1,), 0.3 * i - 0.5), -1.0 * i, next_obs, False)
            return agent.update(state, t, k), None

        return jax.lax.scan(step, agent.init(key), jnp.arange(4))[0]

    a, b = jax.jit(lambda key: (run(mbpo.agent, key), run(alone, key)))(jax.random.key(0))
    chex.assert_trees_all_equal(a.learner, b)
    assert int(b.updates) == 3  # learning from the second stored transition on


@pytest.mark.slow
def test_mbpo_pendulum_experiment_end_to_end(tmp_path):
    out = tmp_path / "mbpo"
    assert (
        main(["run", "mbpo-pendulum", "--preset", "tiny", "--out", str(out), "--no-progress"]) == 0
    )
    result = json.loads((out / "result.json").read_text())
    assert set(result["curves"]) == {"SAC", "MBPO G=2"}
    assert result["curves"]["MBPO G=2"]["x"] == [100.0, 200.0]
    assert all(np.isfinite(result["curves"]["SAC"]["y"]))
    assert set(result["steps_to_target"]) == {"SAC", "MBPO G=2"}
    assert (out / "mbpo-pendulum.png").exists() and (out / "mbpo-pendulum.csv").exists()


@pytest.mark.slow  # eager ensemble predictions (about 12 s)
def test_sample_draws_from_the_elite_members_only():
    """With one elite, every simulated transition is the prediction of the member of
    lowest validation error (deterministic members: that member's mean)."""
    model = neural_model(OBS, BOX, ensemble_size=3, hidden=(8,), probabilistic=False, elites=1)
    state = model.init(jax.random.key(0))
    state = state._replace(info=state.info._replace(validation_error=jnp.array([0.5, 0.1, 0.3])))
    obs, action = jax.random.normal(jax.random.key(1), (6, OBS)), jnp.full((6, 1), 0.5)
    sampled = model.sample(state, obs, action, jax.random.key(2))
    only_best = state._replace(params=jax.tree.map(lambda p: jnp.stack([p[1]] * 3), state.params))
    expected = model.predict(only_best, obs, action, jax.random.key(3), "expectation")[0]
    np.testing.assert_allclose(np.asarray(sampled.next_obs), np.asarray(expected), rtol=1e-5)
    others = model.predict(state, obs, action, jax.random.key(3), "expectation")[0]
    assert not np.allclose(np.asarray(sampled.next_obs), np.asarray(others))
    with pytest.raises(ValueError, match="elites"):
        neural_model(OBS, BOX, ensemble_size=3, elites=4)


def test_steps_to_target_and_speedups_by_hand():
    x = [100.0, 200.0, 300.0]
    slow = steps_to_target(x, np.array([[-500, -150, -100], [-400, -300, -250]]), -200.0)
    fast = steps_to_target(x, np.array([[-150, -150, -100], [-300, -190, -100]]), -200.0)
    assert slow == [200.0, None] and fast == [100.0, 200.0]
    # SAC: mean(200, 300 for the run that never got there) = 250; MBPO: 150
    ratios = speedups({"SAC": slow, "MBPO": fast}, {"SAC": 300, "MBPO": 300}, "SAC")
    assert ratios == pytest.approx({"SAC": 1.0, "MBPO": 250 / 150})
    assert speedups({"MBPO": fast}, {"MBPO": 300}, "SAC") == {}
