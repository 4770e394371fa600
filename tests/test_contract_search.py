"""The search-control contract, over every search control: ``init``/``update``/``propose``
jit, keep the state's structure, shapes and dtypes, propose pairs inside the state and
action spaces, and give the same proposals for the same key. A new search control gets the
whole contract by adding one line to ``SEARCH_UNDER_TEST``."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from mbrl_jax.learners import dqn, q_learning
from mbrl_jax.models import neural_model, tabular_sample_model
from mbrl_jax.search import (
    branched_rollouts,
    prioritized,
    trajectory_sampling,
    uniform_over_states,
    uniform_seen,
    uniform_sweep,
)
from mbrl_jax.types import Transition

S, A, OBS = 6, 3, 4
TABULAR_LEARNER = q_learning(S, A, alpha=0.5)
TABULAR_MODEL = tabular_sample_model(S, A)
NEURAL_LEARNER = dqn(OBS, A, hidden=(8,), capacity=32, batch_size=4, learning_starts=2)
NEURAL_MODEL = neural_model(
    OBS, spaces.Discrete(A), ensemble_size=1, hidden=(8,), probabilistic=False, capacity=32
)


def tabular_transition(key):
    s, a = jax.random.randint(key, (2,), 0, jnp.array([S - 1, A]))
    return Transition(s, a, jnp.float32(1.0), s + 1, s + 1 == S - 1)


def vector_transition(key):
    k_obs, k_next = jax.random.split(key)
    return Transition(
        jax.random.normal(k_obs, (OBS,)), jnp.int32(1), jnp.float32(1.0),
        jax.random.normal(k_next, (OBS,)), jnp.bool_(False),
    )  # fmt: skip


TABULAR = (TABULAR_LEARNER, TABULAR_MODEL, tabular_transition)
# name: (search control, learner, model, a real transition from a key)
SEARCH_UNDER_TEST = {
    "uniform_seen": (uniform_seen(S, A), *TABULAR),
    "uniform_over_states": (uniform_over_states(S, A), *TABULAR),
    "uniform_over_states/fixed": (uniform_over_states(S, A, states=[0, 2, 4]), *TABULAR),
    "prioritized": (prioritized(S, A, TABULAR_MODEL, theta=0.0), *TABULAR),
    "trajectory_sampling": (trajectory_sampling(TABULAR_LEARNER, start_state=0), *TABULAR),
    "uniform_sweep": (uniform_sweep(S, A), *TABULAR),
    "branched_rollouts": (
        branched_rollouts(NEURAL_LEARNER, OBS, batch_size=5, horizon=2, planning_starts=1),
        NEURAL_LEARNER,
        NEURAL_MODEL,
        vector_transition,
    ),
}


def run(search, learner, model, transition_of, key):
    """Three real transitions through learner, model and search control, then a proposal
    and the update that follows it, as ``dyna`` calls them, under one jit."""
    k_init, k_data, k_propose, k_sample = jax.random.split(key, 4)
    learner_state, model_state = learner.init(k_init), model.init(k_init)
    fresh = state = search.init(k_init)
    for i in range(3):
        transition = transition_of(jax.random.fold_in(k_data, i))
        k = jax.random.fold_in(k_init, i)
        learner_state = learner.update(learner_state, transition, k)
        model_state = model.update(model_state, transition, k)
        state = search.update(state, transition, learner_state, model_state, k)
    obs, action, state = search.propose(state, learner_state, model_state, k_propose)
    simulated = model.sample(model_state, obs, action, k_sample)
    state = search.update(state, simulated, learner_state, model_state, k_sample, simulated=True)
    has = search.has_proposal(state) if search.has_proposal is not None else jnp.bool_(True)
    return fresh, state, obs, action, has


@pytest.mark.parametrize("name", list(SEARCH_UNDER_TEST))
def test_search_control_contract(name):
    search, learner, model, transition_of = SEARCH_UNDER_TEST[name]
    go = jax.jit(lambda key: run(search, learner, model, transition_of, key))
    fresh, state, obs, action, has = go(jax.random.key(0))
    chex.assert_trees_all_equal_shapes_and_dtypes(fresh, state)
    assert has.shape == () and has.dtype == bool
    action = np.asarray(action)
    assert np.issubdtype(action.dtype, np.integer) and ((0 <= action) & (action < A)).all()
    if learner is TABULAR_LEARNER:
        assert obs.shape == () and 0 <= int(obs) < S
    else:
        assert obs.shape == (5, OBS) and action.shape == (5,)
    again = go(jax.random.key(0))
    chex.assert_trees_all_equal((state, obs, action), again[1:4])
