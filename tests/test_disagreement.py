"""The ensemble's disagreement bonus: its value on hand-set ensembles, its weight in a
planned return, weight 0 equal to the plain StepFn, and clear errors."""

from __future__ import annotations

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from mbrl_jax.models import disagreement_step_fn, neural_model
from mbrl_jax.pets import make_pets
from mbrl_jax.planners import cem, rollout

OBS, E = 2, 3
BOX = spaces.Box(-1.0, 1.0, (1,))
# Member e predicts the constant normalized state change BIASES[e] (zero kernels).
BIASES = np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 4.0]], np.float32)
# mean over dims of the members' population std: (sqrt(2/3) + sqrt(8/3)) / 2
SPREAD = float((np.sqrt(2 / 3) + np.sqrt(8 / 3)) / 2)


def known_reward(obs, action, next_obs):
    del next_obs
    return -jnp.sum(obs**2, -1) - 0.1 * jnp.sum(action**2, -1)


def model_of(**settings):
    settings = {"ensemble_size": E, "hidden": (4,), "reward_fn": known_reward} | settings
    return neural_model(OBS, BOX, **settings)


def constant_members(model, state, biases):
    """Every member's kernels zeroed (swish(0) = 0: the hidden layer outputs 0) and the
    output bias of member e set so its mean is ``biases[e]`` (then the log-variance)."""
    params = jax.tree.map(jnp.zeros_like, state.params)
    targets = model.network.targets
    out = jnp.zeros((E, 2 * targets)).at[:, : biases.shape[1]].set(biases)
    out = out.at[:, targets:].set(-3.0)  # log-variance outputs (bounded, finite)
    layers = params["params"]
    layers["Dense_1"]["bias"] = out
    layers["max_logvar"] = state.params["params"]["max_logvar"]
    layers["min_logvar"] = state.params["params"]["min_logvar"]
    return state._replace(params=params)


@pytest.fixture(scope="module")
def model():
    return model_of()


@pytest.fixture(scope="module")
def state(model):
    return jax.jit(model.init)(jax.random.key(0))


@pytest.fixture(scope="module")
def spread(model):
    return jax.jit(model.disagreement)


@pytest.fixture(scope="module")
def steps(model):
    """Jitted (plain, bonus) steps over (state, [weight,] obs, action, key) per propagation."""

    def plain(propagation):
        return jax.jit(lambda st, *batch: model.step_fn(st, propagation)(*batch))

    def bonus(propagation):
        return jax.jit(
            lambda st, w, *batch: disagreement_step_fn(
                model, st, exploration_weight=w, propagation=propagation
            )(*batch)
        )

    return {p: (plain(p), bonus(p)) for p in ("tsinf", "expectation")}


def batch(n=6, seed=1):
    k_obs, k_act = jax.random.split(jax.random.key(seed))
    return jax.random.normal(k_obs, (n, OBS)), jax.random.uniform(k_act, (n, 1), minval=-1)


def test_equal_members_do_not_disagree(state, spread):
    same = jax.tree.map(lambda p: jnp.broadcast_to(p[:1], p.shape), state.params)
    obs, action = batch()
    np.testing.assert_array_equal(spread(state._replace(params=same), obs, action), 0)
    assert np.all(np.asarray(spread(state, obs, action)) > 0)  # random members


def test_disagreement_is_the_members_std_averaged_over_dimensions(model, state, spread):
    obs, action = batch()
    known = constant_members(model, state, BIASES)
    np.testing.assert_allclose(spread(known, obs, action), SPREAD, rtol=1e-6)
    # Normalized units: scaling the targets' standard deviation changes nothing.
    scaled = known._replace(normalizer=known.normalizer._replace(out_std=jnp.array([3.0, 0.1])))
    np.testing.assert_allclose(spread(scaled, obs, action), SPREAD, rtol=1e-6)


def test_a_learned_reward_does_not_enter_the_disagreement():
    model = model_of(reward_fn=None)  # targets: the state change and the reward
    state = jax.jit(model.init)(jax.random.key(0))
    rewards = np.array([[-50.0], [0.0], [80.0]], np.float32)
    known = constant_members(model, state, np.concatenate([BIASES, rewards], 1))
    obs, action = batch()
    np.testing.assert_allclose(jax.jit(model.disagreement)(known, obs, action), SPREAD, rtol=1e-6)


@pytest.mark.parametrize("propagation", ["tsinf", "expectation"])
def test_weight_zero_is_the_plain_step_fn_bit_for_bit(state, steps, propagation):
    obs, action = batch()
    key = jax.random.key(3)
    plain, bonus = steps[propagation]
    zero = bonus(state, jnp.float32(0.0), obs, action, key)
    jax.tree.map(np.testing.assert_array_equal, zero, plain(state, obs, action, key))


def test_the_bonus_enters_each_step_with_its_weight(state, spread, steps):
    """One step: reward + w d(s, a), next states unchanged, on random members."""
    obs, action = batch()
    key = jax.random.key(4)
    plain, bonus = steps["tsinf"]
    plain_out = plain(state, obs, action, key)
    bonus_out = bonus(state, jnp.float32(2.5), obs, action, key)
    np.testing.assert_array_equal(bonus_out[0], plain_out[0])
    np.testing.assert_array_equal(bonus_out[2], plain_out[2])
    expected = plain_out[1] + 2.5 * spread(state, obs, action)
    np.testing.assert_allclose(bonus_out[1], expected, rtol=1e-6)


def test_the_planned_return_gains_exactly_weight_times_horizon_times_the_spread(model, state):
    """A constant disagreement ranks no sequence above another: the same plan, and a
    best predicted return higher by w H d (and so is every rollout's return)."""
    known = constant_members(model, state, BIASES)
    horizon, weight = 6, 0.75
    planner = cem(BOX, horizon=horizon, population=12, elites=3, iterations=2, particles=3)
    obs, key = jnp.array([0.3, -0.2]), jax.random.key(5)
    actions = jax.random.uniform(key, (4, horizon, 1), minval=-1)

    @jax.jit
    def plan_and_roll(st, w):
        step_fn = disagreement_step_fn(model, st, exploration_weight=w)
        action, _, info = planner.plan(planner.init(key), step_fn, obs, key)
        return action, info.best_return, rollout(step_fn, jnp.tile(obs, (4, 1)), actions, key)

    plain_action, plain_best, plain_returns = plan_and_roll(known, jnp.float32(0.0))
    bonus_action, bonus_best, bonus_returns = plan_and_roll(known, jnp.float32(weight))
    np.testing.assert_array_equal(bonus_action, plain_action)
    gain = weight * horizon * SPREAD  # about 5.5; returns of about -100: float32 rounding
    np.testing.assert_allclose(bonus_best - plain_best, gain, atol=1e-3)
    np.testing.assert_allclose(bonus_returns - plain_returns, gain, atol=1e-3)


def test_bad_weights_and_ensembles_are_clear_errors(model, state):
    with pytest.raises(ValueError, match=r"exploration_weight must be in \[0.0, inf\], got -0.5"):
        disagreement_step_fn(model, state, exploration_weight=-0.5)
    with pytest.raises(ValueError, match="exploration_weight must be a number.*'1' \\(a str\\)"):
        disagreement_step_fn(model, state, exploration_weight="1")
    with pytest.raises(ValueError, match="at least 2 members, got ensemble_size=1"):
        disagreement_step_fn(model_of(ensemble_size=1), state)  # raised before state is used
    with pytest.raises(ValueError, match="propagation must be one of"):
        disagreement_step_fn(model, state, propagation="ts2")


def test_pets_rejects_a_negative_exploration_weight():
    env, _ = gymnax.make("MountainCarContinuous-v0")
    planner = cem(BOX, horizon=3, population=8, elites=2, iterations=1)
    with pytest.raises(ValueError, match=r"exploration_weight must be in \[0.0, inf\], got -1"):
        make_pets(env, model_of(), planner, exploration_weight=-1)
