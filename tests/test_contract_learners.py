"""The learner contract, over every learner (optax's ``_OPTIMIZERS_UNDER_TEST`` pattern):
``init``/``act``/``update`` jit, keep the state's structure, shapes and dtypes, act within
the action space, and give the same result for the same key. A new learner gets the whole
contract by adding one line to ``LEARNERS_UNDER_TEST``."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from mbrl_jax.learners import dqn, expected_q_learning, q_learning, sac
from mbrl_jax.types import Transition, TransitionDistribution

S, A, OBS = 6, 3, 4


def tabular_transition(key):
    del key
    return Transition(jnp.int32(1), jnp.int32(2), jnp.float32(1.0), jnp.int32(3), jnp.bool_(False))


def distribution_transition(key):
    del key
    prob = jnp.array([0.25, 0.75, 0.0], jnp.float32)
    return TransitionDistribution(
        jnp.int32(1), jnp.int32(0), jnp.array([1.0, 0.0, 9.0]), jnp.array([2, 4, 0]),
        jnp.array([False, True, False]), prob,
    )  # fmt: skip


def vector_transition(key, batch=()):
    k_obs, k_next = jax.random.split(key)
    return Transition(
        jax.random.normal(k_obs, (*batch, OBS)), jnp.zeros(batch, jnp.int32) + 1,
        jnp.ones(batch), jax.random.normal(k_next, (*batch, OBS)), jnp.zeros(batch, bool),
    )  # fmt: skip


def box_transition(key):
    """A real transition with a continuous action in [-2, 2]."""
    t = vector_transition(key)
    return t._replace(action=jax.random.uniform(key, (1,), minval=-2.0, maxval=2.0))


def small_sac():
    box = spaces.Box(-2.0, 2.0, (1,), jnp.float32)
    return sac(OBS, box, hidden=(8,), capacity=32, batch_size=4, learning_starts=2)


def small_dqn():
    return dqn(OBS, A, hidden=(8,), capacity=32, batch_size=4, learning_starts=2)


# name: (learner, an observation, a transition from a key)
LEARNERS_UNDER_TEST = {
    "q_learning": (q_learning(S, A), jnp.int32(1), tabular_transition),
    "expected_q_learning": (expected_q_learning(S, A), jnp.int32(1), distribution_transition),
    "expected_q_learning/sample": (expected_q_learning(S, A), jnp.int32(1), tabular_transition),
    "dqn/real": (small_dqn(), jnp.zeros(OBS), vector_transition),
    "dqn/batch": (small_dqn(), jnp.zeros(OBS), lambda k: vector_transition(k, (5,))),
    "sac/real": (small_sac(), jnp.zeros(OBS), box_transition),
}


def run(learner, obs, transition_of, key):
    """init, three updates and an action, all under one jit."""
    k_init, k_data, k_update, k_act = jax.random.split(key, 4)
    state = learner.init(k_init)
    for i in range(3):
        transition = transition_of(jax.random.fold_in(k_data, i))
        state = learner.update(state, transition, jax.random.fold_in(k_update, i))
    return learner.init(k_init), state, learner.act(state, obs, k_act)


SLOW = {"dqn/batch", "sac/real"}  # a second DQN, and SAC (about 30 s): make test-slow runs them


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in LEARNERS_UNDER_TEST],
)
def test_learner_contract(name):
    learner, obs, transition_of = LEARNERS_UNDER_TEST[name]
    go = jax.jit(lambda key: run(learner, obs, transition_of, key))
    fresh, state, action = go(jax.random.key(0))
    chex.assert_trees_all_equal_shapes_and_dtypes(fresh, state)
    space = learner.spaces.action if learner.spaces is not None else spaces.Discrete(A)
    assert action.shape == tuple(space.shape) and bool(space.contains(action)), (action, space)
    assert jnp.issubdtype(action.dtype, jnp.integer) == hasattr(space, "n")  # Discrete: ints
    pairs = zip(jax.tree.leaves(fresh), jax.tree.leaves(state), strict=True)
    assert any(not np.array_equal(a, b) for a, b in pairs)  # the updates changed something
    _, again, again_action = go(jax.random.key(0))
    chex.assert_trees_all_equal(state, again)
    np.testing.assert_array_equal(again_action, action)
    # vmapped over keys: each run equals the run alone
    keys = jax.random.split(jax.random.key(1), 2)
    _, batched, actions = jax.jit(jax.vmap(lambda k: run(learner, obs, transition_of, k)))(keys)
    _, second, second_action = go(keys[1])
    chex.assert_trees_all_close(jax.tree.map(lambda x: x[1], batched), second, rtol=1e-6)
    np.testing.assert_array_equal(actions[1], second_action)
