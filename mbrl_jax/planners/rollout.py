"""Rollouts through a :data:`~mbrl_jax.types.StepFn`: one ``lax.scan`` over the horizon
for a whole batch of action sequences, and the true dynamics of a gymnax
environment as a StepFn (the perfect-model upper bound of model-based planning).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from mbrl_jax.types import PRNGKey, State, StepFn, ValueFn


def env_step_fn(env, env_params=None) -> StepFn:
    """A gymnax environment's own dynamics as a batched StepFn over environment
    states: ``env.step_env`` vmapped over the batch, without auto-reset. ``done`` is
    gymnax's own: for most of its environments (CartPole-v1, Pendulum-v1) it
    includes the time limit, which is right for planning, as no reward follows."""
    params = env.default_params if env_params is None else env_params
    step_one = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))

    def step(state: State, action: jax.Array, key: PRNGKey):
        batch = jax.tree.leaves(action)[0].shape[0]
        _, next_state, reward, terminated, _ = step_one(
            jax.random.split(key, batch), state, action, params
        )
        return next_state, reward.astype(jnp.float32), jnp.asarray(terminated, bool)

    return step


def _repeat_state(state: State, n: int) -> State:
    """``n`` copies of one unbatched state along a new leading axis."""
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *jnp.shape(x))), state)


class _RolloutCarry(NamedTuple):
    """The scan carry of :func:`rollout`: the batch's states, their returns so far,
    whether each is still running and the discount of the next reward."""

    state: State
    total: jax.Array  # (N,)
    alive: jax.Array  # (N,) bool
    discount: jax.Array  # ()


def _rollout_step(step_fn: StepFn, gamma: Any, carry: _RolloutCarry, inputs):
    """One step of every rollout: the reward counts while the rollout is alive."""
    action, key = inputs
    state, reward, done = step_fn(carry.state, action, key)
    chex.assert_shape([reward, done], carry.total.shape)
    total = carry.total + jnp.where(carry.alive, carry.discount * reward, 0.0)
    return _RolloutCarry(state, total, carry.alive & ~done, carry.discount * gamma), None


def rollout(
    step_fn: StepFn,
    states: State,
    actions: jax.Array,
    key: PRNGKey,
    *,
    gamma: Any = 1.0,
    value_fn: ValueFn | None = None,
) -> jax.Array:
    """The return of N rollouts, shape (N,):

        G = sum_{t < H} gamma^t r_t [no termination before t] + gamma^H V(s_H) [not terminated]

    ``states`` is a batch of N start states, ``actions`` (N, H, *action_shape)
    the action sequences. The reward of the terminating step counts; later
    rewards do not. ``value_fn(states) -> (N,)``, when given, values the
    states reached after H steps (a learned value function bootstrapping the
    search). One ``lax.scan`` over the horizon, one key per step.
    """
    chex.assert_rank(actions, {2, 3, 4})
    chex.assert_equal_shape_prefix([actions, *jax.tree.leaves(states)], 1)
    batch, horizon = actions.shape[:2]
    init = _RolloutCarry(
        states,
        jnp.zeros((batch,), jnp.float32),
        jnp.ones((batch,), bool),
        jnp.ones((), jnp.float32),
    )
    xs = (jnp.swapaxes(actions, 0, 1), jax.random.split(key, horizon))
    final, _ = jax.lax.scan(lambda c, x: _rollout_step(step_fn, gamma, c, x), init, xs)
    if value_fn is None:
        return final.total
    value = value_fn(final.state)
    chex.assert_shape(value, (batch,))
    return final.total + jnp.where(final.alive, final.discount * value, 0.0)
