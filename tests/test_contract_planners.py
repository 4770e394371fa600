"""The contract every decision-time planner keeps, one parameterized test over all of
them (optax's ``_OPTIMIZERS_UNDER_TEST`` pattern): a new planner gets the whole
contract by adding one line to ``_PLANNERS_UNDER_TEST``.

- ``plan`` jits; the same key gives the same plan;
- ``jax.vmap`` over a batch of start states (and keys, planner states) equals one
  call per start state;
- ``info`` is a pytree of arrays with the declared shapes;
- actions lie within the Box bounds, or are valid Discrete actions;
- the planner state keeps its structure (tree, shapes, dtypes) through ``plan``;
- planning through a real environment (``env_step_fn``) keeps the same contract.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from mbrl_jax.envs import ContinuousCartPole
from mbrl_jax.planners import (
    MCTSInfo,
    PlanInfo,
    categorical_cem,
    cem,
    env_step_fn,
    icem,
    mcts,
    mppi,
    random_shooting,
)
from mbrl_jax.validation import is_discrete

H = 3  # horizon of the sequence planners
BOX = spaces.Box(-1.0, 1.0, (2,), jnp.float32)
DISCRETE = spaces.Discrete(3)
TARGET = jnp.array([[0.3, -0.2], [-0.5, 0.6], [0.7, 0.1]])  # best action at each step
DISCRETE_TARGET = jnp.array([2, 0, 1])


class Case(NamedTuple):
    """One planner under test: its factory, action space, tiny settings and the
    shapes its ``info`` declares (a NamedTuple of shapes of the info's type)."""

    factory: Callable
    space: Any
    settings: dict
    info: NamedTuple


SEQUENCE_INFO = PlanInfo(best_return=(), best_sequence=(H, 2), plan=(H, 2))
DISCRETE_INFO = PlanInfo(best_return=(), best_sequence=(H,), plan=(H,))
MCTS_INFO = MCTSInfo(visit_counts=(3,), action_weights=(3,), qvalues=(3,), value=())
SIZES = dict(horizon=H, population=16)
CEM_SIZES = SIZES | dict(elites=4, iterations=2)

_PLANNERS_UNDER_TEST = {
    "random_shooting": Case(random_shooting, BOX, SIZES, SEQUENCE_INFO),
    "cem": Case(cem, BOX, CEM_SIZES, SEQUENCE_INFO),
    "icem": Case(icem, BOX, CEM_SIZES, SEQUENCE_INFO),
    "mppi": Case(mppi, BOX, SIZES | dict(iterations=2), SEQUENCE_INFO),
    "categorical_cem": Case(categorical_cem, DISCRETE, CEM_SIZES, DISCRETE_INFO),
    "mcts": Case(mcts, DISCRETE, dict(num_simulations=8, max_depth=H), MCTS_INFO),
}

NAMES = list(_PLANNERS_UNDER_TEST)


def analytic_step(t, action, key):
    """A cheap StepFn over the time step t: reward -|a - TARGET_t|^2 for a Box
    action, [a == DISCRETE_TARGET_t] for a Discrete one; never done."""
    del key
    t_clipped = jnp.minimum(t, H - 1)
    if jnp.issubdtype(action.dtype, jnp.integer):
        reward = (action == DISCRETE_TARGET[t_clipped]).astype(jnp.float32)
    else:
        reward = -jnp.sum((action - TARGET[t_clipped]) ** 2, axis=-1)
    return t + 1, reward, jnp.zeros(t.shape, bool)


def make(name: str, **overrides):
    case = _PLANNERS_UNDER_TEST[name]
    return case.factory(case.space, **(case.settings | overrides))


@functools.cache
def jitted_plan(name: str):
    """``plan(planner_state, start, key)`` of the planner ``name`` through the analytic
    StepFn, jitted once per planner for all tests."""
    planner = make(name)
    return planner, jax.jit(lambda s, x, k: planner.plan(s, analytic_step, x, k))


def assert_valid_actions(actions, space, batch_shape=()):
    actions = np.asarray(actions)
    if is_discrete(space):
        assert np.issubdtype(actions.dtype, np.integer), actions.dtype
        assert actions.shape == batch_shape
        assert np.all((actions >= 0) & (actions < space.n)), actions
    else:
        assert actions.shape == (*batch_shape, *space.shape)
        assert np.all((actions >= space.low) & (actions <= space.high)), actions


def assert_same_structure(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert (jnp.shape(x), jnp.result_type(x)) == (jnp.shape(y), jnp.result_type(y))


@pytest.mark.parametrize("name", NAMES)
def test_plan_jits_and_the_same_key_gives_the_same_plan(name):
    planner, plan = jitted_plan(name)
    key = jax.random.key(3)
    first = plan(planner.init(key), jnp.int32(0), key)
    second = plan(planner.init(key), jnp.int32(0), key)
    jax.tree.map(np.testing.assert_array_equal, first, second)


@pytest.mark.parametrize("name", NAMES)
def test_info_has_the_declared_shapes_and_actions_are_valid(name):
    planner, plan = jitted_plan(name)
    key = jax.random.key(0)
    action, _, info = plan(planner.init(key), jnp.int32(0), key)
    expected = _PLANNERS_UNDER_TEST[name].info
    assert type(info) is type(expected)
    for field in expected._fields:
        value = getattr(info, field)
        assert isinstance(value, jax.Array), field
        assert value.shape == getattr(expected, field), field
    assert_valid_actions(action, _PLANNERS_UNDER_TEST[name].space)


@pytest.mark.parametrize("name", NAMES)
def test_planner_state_keeps_its_structure_through_plan(name):
    planner, plan = jitted_plan(name)
    key = jax.random.key(1)
    state = planner.init(key)
    _, after, _ = plan(state, jnp.int32(0), key)
    assert_same_structure(after, state)
    _, again, _ = plan(after, jnp.int32(1), jax.random.fold_in(key, 1))
    assert_same_structure(again, state)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_over_start_states_equals_one_call_each(name):
    planner, plan = jitted_plan(name)
    keys = jax.random.split(jax.random.key(2), 3)
    starts = jnp.array([0, 1, 2], jnp.int32)
    states = jax.vmap(planner.init)(keys)
    actions, next_states, infos = jax.jit(jax.vmap(plan))(states, starts, keys)
    assert_valid_actions(actions, _PLANNERS_UNDER_TEST[name].space, batch_shape=(3,))
    for i in range(3):
        one = plan(jax.tree.map(lambda x, i=i: x[i], states), starts[i], keys[i])
        batched = jax.tree.map(lambda x, i=i: x[i], (actions, next_states, infos))
        jax.tree.map(functools.partial(np.testing.assert_allclose, atol=1e-5), batched, one)


@functools.cache
def real_environment(discrete: bool):
    """gymnax CartPole-v1 for Discrete planners, the continuous cart-pole for Box ones."""
    if discrete:
        return gymnax.make("CartPole-v1")
    env = ContinuousCartPole()
    return env, env.default_params


@pytest.mark.parametrize("name", NAMES)
def test_plans_through_a_real_environment(name):
    case = _PLANNERS_UNDER_TEST[name]
    env, params = real_environment(is_discrete(case.space))
    space = env.action_space(params)
    planner = case.factory(space, **case.settings)
    step_fn = env_step_fn(env, params)
    keys = jax.random.split(jax.random.key(0), 2)
    _, starts = jax.vmap(env.reset, in_axes=(0, None))(keys, params)

    def plan(key, start):
        return planner.plan(planner.init(key), step_fn, start, key)

    actions, next_states, infos = jax.jit(jax.vmap(plan))(keys, starts)
    assert_valid_actions(actions, space, batch_shape=(2,))
    assert_same_structure(jax.tree.map(lambda x: x[0], next_states), planner.init(keys[0]))
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(infos))
