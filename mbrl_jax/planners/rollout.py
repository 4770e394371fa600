"""Rollouts through a :data:`~mbrl_jax.types.StepFn`: one ``lax.scan`` over the horizon
for a whole batch of action sequences, and the true dynamics of a gymnax
environment as a StepFn (the perfect-model upper bound of model-based planning).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from mbrl_jax.types import PRNGKey, State, StepFn


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


def repeat_state(state: State, n: int) -> State:
    """``n`` copies of one unbatched state along a new leading axis."""
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *jnp.shape(x))), state)


def rollout(
    step_fn: StepFn,
    states: State,
    actions: jax.Array,
    key: PRNGKey,
    *,
    gamma: Any = 1.0,
    terminal_value=None,
) -> jax.Array:
    """The return of N rollouts, shape (N,):

        G = sum_{t < H} gamma^t r_t [no termination before t] + gamma^H V(s_H) [not terminated]

    ``states`` is a batch of N start states, ``actions`` (N, H, *action_shape)
    the action sequences. The reward of the terminating step counts; later
    rewards do not. ``terminal_value(states) -> (N,)``, when given, values the
    states reached after H steps (a learned value function bootstrapping the
    search). One ``lax.scan`` over the horizon, one key per step.
    """
    horizon = actions.shape[1]
    batch = actions.shape[0]

    def body(carry, inputs):
        state, total, alive, discount = carry
        action, step_key = inputs
        state, reward, done = step_fn(state, action, step_key)
        total = total + jnp.where(alive, discount * reward, 0.0)
        return (state, total, alive & ~done, discount * gamma), None

    init = (
        states,
        jnp.zeros((batch,), jnp.float32),
        jnp.ones((batch,), bool),
        jnp.ones((), jnp.float32),
    )
    xs = (jnp.swapaxes(actions, 0, 1), jax.random.split(key, horizon))
    (final, total, alive, discount), _ = jax.lax.scan(body, init, xs)
    if terminal_value is not None:
        total = total + jnp.where(alive, discount * terminal_value(final), 0.0)
    return total
