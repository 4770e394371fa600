"""Monte Carlo tree search over a :data:`~mbrl_jax.types.StepFn`, for discrete actions.

Gumbel MuZero search (Danihelka et al. 2022, "Policy improvement by planning with
Gumbel", ICLR) as implemented by ``mctx.gumbel_muzero_policy``: Sequential Halving
with Gumbel noise at the root, the deterministic Full Gumbel MuZero selection inside
the tree. There is no policy network here: every prior is uniform, and the tree is
grown by calling the StepFn (a learned model or a true environment) as mctx's
recurrent function, so mctx does all of the search and this module only adapts the
interface.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import mctx

from mbrl_jax.hyperparameters import traced
from mbrl_jax.planners.rollout import _repeat_state, rollout
from mbrl_jax.types import Planner, PRNGKey, State, StepFn, ValueFn
from mbrl_jax.validation import check_count, check_in_range, check_nonnegative, discrete_actions


class MCTSInfo(NamedTuple):
    """Root statistics of one search (one entry per action, except ``value``).

    ``visit_counts``: simulations through each root action; ``action_weights``: the
    Gumbel MuZero improved policy ``softmax(prior_logits + completed Q)``;
    ``qvalues``: the root's Q-values ``r + discount * V(child)`` (0 for an action
    never visited); ``value``: the root's backed-up value.
    """

    visit_counts: jax.Array
    action_weights: jax.Array
    qvalues: jax.Array
    value: jax.Array


class _Node(NamedTuple):
    """mctx's embedding: a batch of StepFn states and whether each has terminated."""

    state: State
    done: jax.Array


class _Search(NamedTuple):
    """The settings of one search, as :func:`mcts` checked them."""

    num_actions: int
    num_simulations: int
    gamma: Any
    max_depth: int | None
    value_fn: ValueFn | None
    rollout_horizon: int
    max_num_considered_actions: int
    gumbel_scale: Any


def _leaf_value(search: _Search, step_fn: StepFn, states: State, key: PRNGKey) -> jax.Array:
    """Value estimate (N,) of a batch of states: the return of one uniformly random
    rollout of ``rollout_horizon`` steps (bootstrapped by ``value_fn`` when given), or
    ``value_fn(states)`` when the horizon is 0, or 0 when neither is given."""
    batch = jax.tree.leaves(states)[0].shape[0]
    if search.rollout_horizon > 0:
        action_key, rollout_key = jax.random.split(key)
        shape = (batch, search.rollout_horizon)
        actions = jax.random.randint(action_key, shape, 0, search.num_actions)
        return rollout(
            step_fn, states, actions, rollout_key, gamma=search.gamma, value_fn=search.value_fn
        )
    if search.value_fn is not None:
        value = search.value_fn(states)
        chex.assert_shape(value, (batch,))
        return jnp.asarray(value, jnp.float32)
    return jnp.zeros((batch,), jnp.float32)


def _recurrent_fn(search: _Search, step_fn: StepFn, params, key, action, node: _Node):
    """mctx's ``recurrent_fn(params, key, action, node) -> (RecurrentFnOutput, node)``
    (bound to ``search`` and ``step_fn`` with ``functools.partial``).

    One StepFn call per expanded node: ``reward`` is the step's reward, ``discount``
    ``gamma * (1 - done)``, ``prior_logits`` uniform zeros and ``value`` the leaf value
    of the next state. Below a terminated node (``done`` is carried in the embedding)
    the reward, discount and value are all 0, selected with ``where`` so that nothing
    after the end of an episode counts, not even a model's NaN there (a zero discount
    alone would still give 0 * NaN).
    """
    del params
    step_key, value_key = jax.random.split(key)
    next_state, reward, done = step_fn(node.state, action, step_key)
    done = node.done | jnp.asarray(done, bool)
    value = _leaf_value(search, step_fn, next_state, value_key)
    output = mctx.RecurrentFnOutput(
        reward=jnp.where(node.done, 0.0, reward).astype(jnp.float32),
        discount=jnp.where(done, 0.0, search.gamma).astype(jnp.float32),
        prior_logits=jnp.zeros((action.shape[0], search.num_actions), jnp.float32),
        value=jnp.where(done, 0.0, value).astype(jnp.float32),
    )
    return output, _Node(next_state, done)


def _root(search: _Search, step_fn: StepFn, state: State, key: PRNGKey) -> mctx.RootFnOutput:
    """The root of the tree: the start state as a batch of one, valued as a leaf."""
    root_state = _repeat_state(state, 1)
    return mctx.RootFnOutput(
        prior_logits=jnp.zeros((1, search.num_actions), jnp.float32),
        value=_leaf_value(search, step_fn, root_state, key).astype(jnp.float32),
        embedding=_Node(root_state, jnp.zeros((1,), bool)),
    )


def _mcts_plan(search: _Search, planner_state: Any, step_fn: StepFn, state: State, key: PRNGKey):
    """One Gumbel MuZero search from ``state``: (action, planner_state, MCTSInfo)."""
    root_key, search_key = jax.random.split(key)
    output = mctx.gumbel_muzero_policy(
        params=(),
        rng_key=search_key,
        root=_root(search, step_fn, state, root_key),
        recurrent_fn=functools.partial(_recurrent_fn, search, step_fn),
        num_simulations=search.num_simulations,
        max_depth=search.max_depth,
        max_num_considered_actions=search.max_num_considered_actions,
        gumbel_scale=search.gumbel_scale,
    )
    summary = output.search_tree.summary()
    info = MCTSInfo(
        visit_counts=summary.visit_counts[0],
        action_weights=output.action_weights[0],
        qvalues=summary.qvalues[0],
        value=summary.value[0],
    )
    return output.action[0].astype(jnp.int32), planner_state, info


def _checked_search(
    action_space: Any,
    *,
    num_simulations: int,
    gamma: Any,
    max_depth: int | None,
    value_fn: ValueFn | None,
    rollout_horizon: int,
    max_num_considered_actions: int | None,
    gumbel_scale: Any,
) -> _Search:
    """:func:`mcts`'s settings checked, with their defaults filled in."""
    num_actions = discrete_actions(action_space, "mcts")
    check_in_range("gamma", gamma, 0.0, 1.0)
    check_nonnegative("gumbel_scale", gumbel_scale)
    if max_num_considered_actions is None:
        max_num_considered_actions = num_actions
    return _Search(
        num_actions,
        check_count("num_simulations", num_simulations, 1),
        gamma,
        None if max_depth is None else check_count("max_depth", max_depth, 1),
        value_fn,
        check_count("rollout_horizon", rollout_horizon, 0),
        check_count("max_num_considered_actions", max_num_considered_actions, 1),
        gumbel_scale,
    )


@traced("gamma", "gumbel_scale")
def mcts(
    action_space: Any,
    *,
    num_simulations: int = 32,
    gamma: Any = 1.0,
    max_depth: int | None = None,
    value_fn: ValueFn | None = None,
    rollout_horizon: int = 0,
    max_num_considered_actions: int | None = None,
    gumbel_scale: Any = 1.0,
) -> Planner:
    """A decision-time MCTS planner for the actions of a ``Discrete`` ``action_space``.

    Runs ``mctx.gumbel_muzero_policy`` (Gumbel MuZero, Danihelka et al. 2022) with
    ``num_simulations`` simulations (default 32) from the single start state, the
    StepFn as the recurrent function: each expansion calls ``step_fn`` once and
    returns its reward, ``discount = gamma * (1 - done)``, a uniform prior (zero
    logits: no policy network) and a leaf value. The leaf value is the return of a
    uniformly random rollout of ``rollout_horizon`` steps through ``step_fn``
    (bootstrapped by ``value_fn``) when ``rollout_horizon > 0``, else
    ``value_fn(next_states)`` (a batch of states -> (N,)), else 0; the root is valued
    the same way. Rewards after a termination do not count. ``max_depth`` bounds the
    tree depth (default: ``num_simulations``); ``max_num_considered_actions`` is the
    number of root actions Sequential Halving starts from (default: all);
    ``gumbel_scale=0`` makes the root selection deterministic given the Q-values.

    ``plan(planner_state, step_fn, state, key) -> (action, planner_state, MCTSInfo)``
    returns an int32 scalar action; the planner state is ``()`` (nothing is kept
    between calls). ``jax.vmap`` over ``plan`` plans for a batch of start states.
    """
    search = _checked_search(
        action_space,
        num_simulations=num_simulations,
        gamma=gamma,
        max_depth=max_depth,
        value_fn=value_fn,
        rollout_horizon=rollout_horizon,
        max_num_considered_actions=max_num_considered_actions,
        gumbel_scale=gumbel_scale,
    )

    def init(key: PRNGKey) -> tuple:
        del key
        return ()

    def plan(planner_state: Any, step_fn: StepFn, state: State, key: PRNGKey):
        return _mcts_plan(search, planner_state, step_fn, state, key)

    return Planner(init=init, plan=plan)
