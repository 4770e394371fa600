"""The contract every model keeps, one parameterized test over all of them (optax's
``_OPTIMIZERS_UNDER_TEST`` pattern): a new model gets the whole contract by adding one
line to ``_MODELS_UNDER_TEST``.

- ``init``, ``update`` and ``sample`` jit; ``update`` keeps the state's structure
  (tree, shapes, dtypes);
- ``sample`` gives a Transition (a sample model) or a TransitionDistribution of K
  outcomes whose probabilities sum to 1 (a distribution model), with the shapes and
  dtypes of the model's observations and actions;
- the same key gives the same result, bit for bit;
- ``jax.vmap`` over a batch of (obs, action) equals one call per pair;
- (traced hyperparameters are checked for every factory in tests/test_hyperparameters.py,
  on these cases.)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from mbrl_jax.envs import random_mdp_params
from mbrl_jax.models import (
    count_distribution_model,
    environment_model,
    mdp_distribution_model,
    neural_model,
    tabular_sample_model,
)
from mbrl_jax.types import Transition, TransitionDistribution

S, A = 6, 3  # tabular states and actions
OBS, BOX = 3, spaces.Box(-1.0, 1.0, (2,), jnp.float32)  # vector observations, actions
KEY = jax.random.key(0)


class Inputs(NamedTuple):
    """What a model of one kind of space is fed: a real transition (unbatched) and a
    batch of three (obs, action) pairs to sample."""

    transition: Transition
    obs: jax.Array
    action: jax.Array


TABULAR = Inputs(
    Transition(jnp.int32(2), jnp.int32(1), jnp.float32(1.5), jnp.int32(4), jnp.bool_(False)),
    jnp.array([2, 0, 5], jnp.int32),
    jnp.array([1, 2, 0], jnp.int32),
)
VECTOR = Inputs(
    Transition(
        jnp.array([0.1, -0.2, 0.3]),
        jnp.array([0.5, -0.5]),
        jnp.float32(1.0),
        jnp.array([0.2, -0.1, 0.3]),
        jnp.bool_(False),
    ),
    jnp.array([[0.1, -0.2, 0.3], [0.0, 0.0, 0.0], [1.0, 0.5, -1.0]]),
    jnp.array([[0.5, -0.5], [0.0, 0.0], [-1.0, 1.0]]),
)


def _ring(obs, action, key):
    """A known tabular environment: s' = (s + a + 1) mod S, reward s', done at S - 1."""
    del key
    next_obs = (obs + action + 1) % S
    return next_obs, next_obs.astype(jnp.float32), next_obs == S - 1


class Case(NamedTuple):
    """One model under test: its factory (structural arguments bound), tiny settings,
    its inputs and K, its number of outcomes (None: it samples a Transition)."""

    factory: Callable
    settings: dict
    inputs: Inputs
    outcomes: int | None


_MDP = random_mdp_params(jax.random.key(1), S, A, branching=2)
_NET = dict(hidden=(8,), capacity=16, batch_size=4)

_MODELS_UNDER_TEST = {
    "tabular_sample_model": Case(functools.partial(tabular_sample_model, S, A), {}, TABULAR, None),
    "Dyna-Q+ model": Case(
        functools.partial(tabular_sample_model, S, A), dict(kappa=0.1), TABULAR, None
    ),
    "count_distribution_model": Case(
        functools.partial(count_distribution_model, S, A), dict(max_outcomes=3), TABULAR, 3
    ),
    "count_distribution_model, sampled": Case(
        functools.partial(count_distribution_model, S, A),
        dict(max_outcomes=3, expected=False),
        TABULAR,
        None,
    ),
    "mdp_distribution_model": Case(functools.partial(mdp_distribution_model, _MDP), {}, TABULAR, 3),
    "environment_model": Case(functools.partial(environment_model, _ring), {}, TABULAR, None),
    "neural_model, deterministic": Case(
        functools.partial(neural_model, OBS, BOX),
        _NET | dict(ensemble_size=1, probabilistic=False, train_steps_per_update=1),
        VECTOR,
        None,
    ),
    "neural_model, ensemble": Case(
        functools.partial(neural_model, OBS, BOX),
        _NET | dict(ensemble_size=3, train_steps_per_update=1),
        VECTOR,
        None,
    ),
}

CASES = pytest.mark.parametrize("name", list(_MODELS_UNDER_TEST))


def _factory_of(case: Case) -> Callable:
    return case.factory.func if isinstance(case.factory, functools.partial) else case.factory


def _run(case: Case, settings: dict, key: jax.Array = KEY) -> tuple[Any, Any]:
    """The state after one real transition, and a sample of the batch of pairs."""
    model = case.factory(**settings)
    k_init, k_update, k_sample = jax.random.split(key, 3)
    state = model.update(model.init(k_init), case.inputs.transition, k_update)
    keys = jax.random.split(k_sample, case.inputs.obs.shape[0])
    return state, jax.vmap(model.sample, in_axes=(None, 0, 0, 0))(
        state, case.inputs.obs, case.inputs.action, keys
    )


@functools.cache
def _compiled_run(name: str) -> Callable:
    case = _MODELS_UNDER_TEST[name]
    return jax.jit(functools.partial(_run, case, case.settings))


def _assert_same_structure(a, b) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert (jnp.shape(x), jnp.result_type(x)) == (jnp.shape(y), jnp.result_type(y))


@CASES
def test_init_update_and_sample_jit_with_declared_shapes(name):
    case = _MODELS_UNDER_TEST[name]
    model = case.factory(**case.settings)
    state = jax.jit(model.init)(KEY)
    updated = jax.jit(model.update)(state, case.inputs.transition, KEY)
    _assert_same_structure(updated, state)
    obs, action = case.inputs.obs[0], case.inputs.action[0]
    out = jax.jit(model.sample)(updated, obs, action, KEY)
    assert out.obs.shape == obs.shape and out.action.shape == action.shape
    outcomes = () if case.outcomes is None else (case.outcomes,)
    assert isinstance(out, Transition if case.outcomes is None else TransitionDistribution)
    assert out.reward.shape == outcomes and out.reward.dtype == jnp.float32
    assert out.next_obs.shape == outcomes + obs.shape and out.next_obs.dtype == obs.dtype
    assert out.done.shape == outcomes and out.done.dtype == jnp.bool_
    if case.outcomes is not None:
        assert out.prob.dtype == jnp.float32 and np.isclose(float(jnp.sum(out.prob)), 1.0)


@CASES
def test_same_key_same_result(name):
    first, again = _compiled_run(name)(KEY), _compiled_run(name)(KEY)
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)


@CASES
def test_vmap_over_pairs_equals_one_call_per_pair(name):
    case = _MODELS_UNDER_TEST[name]
    model = case.factory(**case.settings)
    state, batched = _compiled_run(name)(KEY)
    keys = jax.random.split(jax.random.split(KEY, 3)[2], case.inputs.obs.shape[0])
    sample = jax.jit(model.sample)
    for i in range(case.inputs.obs.shape[0]):
        alone = sample(state, case.inputs.obs[i], case.inputs.action[i], keys[i])
        for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(alone), strict=True):
            np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-6)
