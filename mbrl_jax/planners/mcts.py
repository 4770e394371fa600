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

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import mctx

from mbrl_jax.planners.rollout import repeat_state, rollout
from mbrl_jax.types import Planner, PRNGKey, State, StepFn, ValueFn
from mbrl_jax.validation import check_count, check_in_range, check_nonnegative


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


def _leaf_value(
    step_fn: StepFn,
    states: State,
    key: PRNGKey,
    *,
    num_actions: int,
    gamma: Any,
    value_fn: ValueFn | None,
    rollout_horizon: int,
) -> jax.Array:
    """Value estimate (N,) of a batch of states: the return of one uniformly random
    rollout of ``rollout_horizon`` steps (bootstrapped by ``value_fn`` when given), or
    ``value_fn(states)`` when the horizon is 0, or 0 when neither is given."""
    batch = jax.tree.leaves(states)[0].shape[0]
    if rollout_horizon > 0:
        action_key, rollout_key = jax.random.split(key)
        actions = jax.random.randint(action_key, (batch, rollout_horizon), 0, num_actions)
        return rollout(step_fn, states, actions, rollout_key, gamma=gamma, terminal_value=value_fn)
    if value_fn is not None:
        return jnp.asarray(value_fn(states), jnp.float32)
    return jnp.zeros((batch,), jnp.float32)


def _recurrent_fn(
    step_fn: StepFn,
    leaf_value: Callable[[State, PRNGKey], jax.Array],
    gamma: Any,
    num_actions: int,
):
    """mctx's ``recurrent_fn(params, key, action, node) -> (RecurrentFnOutput, node)``.

    One StepFn call per expanded node: ``reward`` is the step's reward, ``discount``
    ``gamma * (1 - done)``, ``prior_logits`` uniform zeros and ``value`` the leaf value
    of the next state. Below a terminated node (``done`` is carried in the embedding)
    the reward, discount and value are all 0, selected with ``where`` so that nothing
    after the end of an episode counts, not even a model's NaN there (a zero discount
    alone would still give 0 * NaN).
    """

    def recurrent_fn(params, key, action, node: _Node):
        del params
        step_key, value_key = jax.random.split(key)
        next_state, reward, done = step_fn(node.state, action, step_key)
        done = node.done | jnp.asarray(done, bool)
        output = mctx.RecurrentFnOutput(
            reward=jnp.where(node.done, 0.0, reward).astype(jnp.float32),
            discount=jnp.where(done, 0.0, gamma).astype(jnp.float32),
            prior_logits=jnp.zeros((action.shape[0], num_actions), jnp.float32),
            value=jnp.where(done, 0.0, leaf_value(next_state, value_key)).astype(jnp.float32),
        )
        return output, _Node(next_state, done)

    return recurrent_fn


def mcts(
    num_actions: int,
    num_simulations: int,
    *,
    gamma: Any = 1.0,
    max_depth: int | None = None,
    value_fn: ValueFn | None = None,
    rollout_horizon: int = 0,
    max_num_considered_actions: int | None = None,
    gumbel_scale: Any = 1.0,
) -> Planner:
    """A decision-time MCTS planner for ``num_actions`` discrete actions.

    Runs ``mctx.gumbel_muzero_policy`` (Gumbel MuZero, Danihelka et al. 2022) with
    ``num_simulations`` simulations from the single start state, the StepFn as the
    recurrent function: each expansion calls ``step_fn`` once and returns its reward,
    ``discount = gamma * (1 - done)``, a uniform prior (zero logits: no policy network)
    and a leaf value. The leaf value is the return of a uniformly random rollout of
    ``rollout_horizon`` steps through ``step_fn`` (bootstrapped by ``value_fn``) when
    ``rollout_horizon > 0``, else ``value_fn(next_states)`` (a batch of states ->
    (N,)), else 0; the root is valued the same way. Rewards after a termination do
    not count. ``max_depth`` bounds the tree depth (default: ``num_simulations``);
    ``max_num_considered_actions`` is the number of root actions Sequential Halving
    starts from (default: all); ``gumbel_scale=0`` makes the root selection
    deterministic given the Q-values.

    ``plan(planner_state, step_fn, state, key) -> (action, planner_state, MCTSInfo)``
    returns an int32 scalar action; the planner state is ``()`` (nothing is kept
    between calls). ``jax.vmap`` over ``plan`` plans for a batch of start states.
    """
    num_actions = check_count("num_actions", num_actions, 1)
    num_simulations = check_count("num_simulations", num_simulations, 1)
    check_in_range("gamma", gamma, 0.0, 1.0)
    if max_depth is not None:
        max_depth = check_count("max_depth", max_depth, 1)
    rollout_horizon = check_count("rollout_horizon", rollout_horizon, 0)
    if max_num_considered_actions is None:
        max_num_considered_actions = num_actions
    max_num_considered_actions = check_count(
        "max_num_considered_actions", max_num_considered_actions, 1
    )
    check_nonnegative("gumbel_scale", gumbel_scale)

    def init(key: PRNGKey) -> tuple:
        del key
        return ()

    def plan(planner_state: Any, step_fn: StepFn, state: State, key: PRNGKey):
        def leaf_value(states: State, value_key: PRNGKey) -> jax.Array:
            return _leaf_value(
                step_fn,
                states,
                value_key,
                num_actions=num_actions,
                gamma=gamma,
                value_fn=value_fn,
                rollout_horizon=rollout_horizon,
            )

        root_key, search_key = jax.random.split(key)
        root_state = repeat_state(state, 1)
        root = mctx.RootFnOutput(
            prior_logits=jnp.zeros((1, num_actions), jnp.float32),
            value=leaf_value(root_state, root_key).astype(jnp.float32),
            embedding=_Node(root_state, jnp.zeros((1,), bool)),
        )
        output = mctx.gumbel_muzero_policy(
            params=(),
            rng_key=search_key,
            root=root,
            recurrent_fn=_recurrent_fn(step_fn, leaf_value, gamma, num_actions),
            num_simulations=num_simulations,
            max_depth=max_depth,
            max_num_considered_actions=max_num_considered_actions,
            gumbel_scale=gumbel_scale,
        )
        summary = output.search_tree.summary()
        info = MCTSInfo(
            visit_counts=summary.visit_counts[0],
            action_weights=output.action_weights[0],
            qvalues=summary.qvalues[0],
            value=summary.value[0],
        )
        return output.action[0].astype(jnp.int32), planner_state, info

    return Planner(init=init, plan=plan)
