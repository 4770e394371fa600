"""SAC: the squashed Gaussian, the soft target and the temperature loss by hand, the two
kinds of experience (real replay, simulated batches mixed at real_ratio), and input errors."""

from __future__ import annotations

import chex
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from mbrl_jax.learners import (
    sac,
    soft_q_target,
    squashed_gaussian_log_prob,
    squashed_gaussian_sample,
    temperature_loss,
)
from mbrl_jax.learners.sac import _mixed, _row, _transitions
from mbrl_jax.types import Agent, Transition

OBS = 3
BOX = spaces.Box(-2.0, 2.0, (1,), jnp.float32)


def test_squashed_gaussian_density_matches_a_histogram_of_samples():
    mean, log_std = jnp.array([0.4]), jnp.array([-0.1])
    keys = jax.random.split(jax.random.key(0), 400_000)
    actions, log_probs = jax.vmap(lambda k: squashed_gaussian_sample(mean, log_std, k))(keys)
    counts, edges = np.histogram(np.asarray(actions[:, 0]), bins=40, range=(-1.0, 1.0))
    empirical = counts / (len(keys) * np.diff(edges))
    centres = 0.5 * (edges[1:] + edges[:-1])
    u = np.arctanh(centres)[:, None]
    analytic = np.exp(np.asarray(squashed_gaussian_log_prob(mean, log_std, jnp.asarray(u))))
    inner = slice(2, -2)  # the density is steep at +-1, where a bin's average differs
    np.testing.assert_allclose(empirical[inner], analytic[inner], rtol=0.05)
    # each sample's log-probability is the density at its own u
    u_samples = np.arctanh(np.clip(np.asarray(actions[:8]), -0.999999, 0.999999))
    np.testing.assert_allclose(
        np.asarray(log_probs[:8]),
        np.asarray(squashed_gaussian_log_prob(mean, log_std, jnp.asarray(u_samples))),
        rtol=1e-3,
    )


def test_squashed_log_prob_is_finite_far_in_the_tails():
    u = jnp.array([[30.0], [-30.0]])
    log_prob = squashed_gaussian_log_prob(jnp.zeros((2, 1)), jnp.zeros((2, 1)), u)
    # log N(30; 0, 1) - log(1 - tanh(30)^2) = -450 - 0.919 + 2 (30 - log 2)
    expected = -0.5 * 900 - 0.5 * np.log(2 * np.pi) + 2 * (30 - np.log(2))
    np.testing.assert_allclose(np.asarray(log_prob), [expected, expected], rtol=1e-5)


def test_soft_q_target_by_hand():
    reward = jnp.array([1.0, 0.5])
    done = jnp.array([False, True])
    next_q = jnp.array([[2.0, 3.0], [1.5, -1.0]])  # (critics, batch)
    next_log_prob = jnp.array([-0.5, 0.2])
    target = soft_q_target(reward, done, next_q, next_log_prob, 0.2, 0.9)
    # 1 + 0.9 (min(2, 1.5) - 0.2 (-0.5)) = 1 + 0.9 x 1.6; a terminal s' does not bootstrap
    np.testing.assert_allclose(np.asarray(target), [1.0 + 0.9 * 1.6, 0.5], rtol=1e-6)


def test_temperature_loss_by_hand_and_its_direction():
    log_prob = jnp.array([0.5, 1.5])  # entropy estimate -1 < target 0: alpha should rise
    loss, grad = jax.value_and_grad(temperature_loss)(jnp.log(0.5), log_prob, 0.0)
    np.testing.assert_allclose(float(loss), -np.log(0.5) * 1.0, rtol=1e-6)
    assert float(grad) == pytest.approx(-1.0)  # gradient descent raises log alpha


def test_rows_read_back_exactly():
    t = Transition(
        jnp.array([0.1, -2.0, 3.5]), jnp.array([1.25]), jnp.float32(-0.5),
        jnp.array([0.2, 0.3, 0.4]), jnp.bool_(True),
    )  # fmt: skip
    back = _transitions(_row(t)[None], OBS, 1)
    chex.assert_trees_all_equal(jax.tree.map(lambda x: x[0], back), t)


def test_mixed_minibatch_takes_the_first_real_ratio_rows_from_real_replay():
    real, model = jnp.zeros((8, 2)), jnp.ones((8, 2))
    np.testing.assert_array_equal(np.asarray(_mixed(real, model, 0.25)[:, 0]), [0, 0] + [1] * 6)
    np.testing.assert_array_equal(np.asarray(_mixed(real, model, 1.0)), 0)
    np.testing.assert_array_equal(np.asarray(_mixed(real, model, 0.0)), 1)


@pytest.mark.slow  # eager SAC steps: about 25 s of one-op compiles
def test_real_transitions_go_to_the_replay_and_batches_to_the_model_buffer():
    learner = sac(OBS, BOX, hidden=(8,), capacity=16, batch_size=4, learning_starts=2,
                  model_capacity=10)  # fmt: skip
    key = jax.random.key(0)
    state = learner.init(key)
    real = Transition(jnp.ones(OBS), jnp.array([0.5]), 1.0, jnp.zeros(OBS), False)
    state = learner.update(state, real, key)  # eager: cheaper than compiling for one call
    assert int(state.buffer.size) == 1 and int(state.env_steps) == 1
    assert int(state.updates) == 0  # one transition stored, below learning_starts
    batch = jax.tree.map(lambda x: jnp.stack([jnp.asarray(x)] * 3), real)
    state = learner.update(state, batch, key)
    assert int(state.model_buffer.size) == 3 and int(state.buffer.size) == 1
    assert int(state.env_steps) == 1 and int(state.updates) == 1


@pytest.mark.slow  # eager SAC steps, as above
def test_a_batch_step_with_real_ratio_one_learns_from_real_replay_only():
    """With real_ratio = 1 the simulated rows are never used: two different simulated
    batches give the same step."""
    learner = sac(OBS, BOX, hidden=(8,), capacity=16, batch_size=4, learning_starts=1,
                  real_ratio=1.0)  # fmt: skip
    key = jax.random.key(0)
    real = Transition(jnp.ones(OBS), jnp.array([0.5]), 1.0, jnp.zeros(OBS), False)
    state = learner.update(learner.init(key), real, key)
    batch_a = Transition(jnp.zeros((4, OBS)), jnp.zeros((4, 1)), jnp.zeros(4), jnp.zeros((4, OBS)),
                         jnp.zeros(4, bool))  # fmt: skip
    batch_b = batch_a._replace(reward=jnp.full(4, 50.0), action=jnp.ones((4, 1)))
    step = learner.update  # eager: cheaper than compiling for two calls
    chex.assert_trees_all_equal(step(state, batch_a, key).critic, step(state, batch_b, key).critic)
    mixed = sac(OBS, BOX, hidden=(8,), capacity=16, batch_size=4, learning_starts=1,
                real_ratio=0.5)  # fmt: skip
    a, b = (mixed.update(state, batch, key) for batch in (batch_a, batch_b))
    assert not np.allclose(np.asarray(a.losses.critic), np.asarray(b.losses.critic))


@pytest.fixture(scope="module")
def pendulum_run():
    """``train(key)``: 120 real steps of a tiny SAC on Pendulum-v1, learning from step 50."""
    from mbrl_jax.train import TrainConfig, make_train

    env, params = gymnax.make("Pendulum-v1")
    learner = sac(OBS, env.action_space(params), hidden=(16, 16), batch_size=16,
                  capacity=1000, learning_starts=50)  # fmt: skip
    train = make_train(env, Agent(*learner.learner), TrainConfig(num_steps=120), params)
    return learner, jax.jit(train), jax.jit(jax.vmap(train))


@pytest.mark.slow
def test_sac_on_pendulum_same_key_same_result_and_vmap_equals_separate_runs(pendulum_run):
    learner, train, train_many = pendulum_run
    state, metrics = train(jax.random.key(3))
    again, _ = train(jax.random.key(3))
    chex.assert_trees_all_equal(state, again)
    assert int(state.updates) == 120 - 50 + 1 and int(state.nan_update) == -1
    assert np.all(np.isfinite(np.asarray(jax.tree.leaves(state.losses))))
    keys = jnp.stack([jax.random.key(3), jax.random.key(4)])
    many, _ = train_many(keys)
    # vmapped matmuls round differently; the runs agree to float32 noise grown over 70 steps
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[0], many), state, rtol=1e-3, atol=1e-5)
    actions = learner.mean_action(state, jnp.zeros((5, OBS)))
    assert actions.shape == (5, 1) and np.all(np.abs(np.asarray(actions)) <= 2.0)
    assert learner.value(state, jnp.zeros((5, OBS))).shape == (5,)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="sac needs a Box action space"):
        sac(OBS, spaces.Discrete(3))
    with pytest.raises(ValueError, match="real_ratio"):
        sac(OBS, BOX, real_ratio=1.5)
    for tau in (-0.1, 0.0):  # 0: the target critics would never move
        with pytest.raises(ValueError, match=r"tau must be in \(0.0, 1.0\]"):
            sac(OBS, BOX, tau=tau)
    with pytest.raises(ValueError, match="finite action bounds"):
        sac(OBS, spaces.Box(-jnp.inf, jnp.inf, (1,), jnp.float32))
    learner = sac(OBS, BOX, hidden=(4,), capacity=8, batch_size=2)
    bad = Transition(jnp.ones(OBS + 1), jnp.array([0.5]), 1.0, jnp.zeros(OBS + 1), False)
    with pytest.raises(ValueError, match=r"observations of shape \(3,\)"):
        learner.update(learner.init(jax.random.key(0)), bad, jax.random.key(0))
