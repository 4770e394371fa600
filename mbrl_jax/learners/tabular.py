"""Tabular Q-learning (S&B eq. 6.8) with epsilon-greedy acting."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mbrl_jax.types import Learner, PRNGKey, Transition
from mbrl_jax.validation import check_count, check_in_range


class QTable(NamedTuple):
    q: jax.Array  # (num_states, num_actions)


def epsilon_greedy(q_values: jax.Array, epsilon, key: PRNGKey) -> jax.Array:
    """An action from ``q_values`` (shape (A,)): uniformly random with probability
    epsilon, otherwise greedy with ties broken uniformly among the maximal actions.

    One uniform draw of A + 2 numbers serves all three random choices.
    """
    num_actions = q_values.shape[-1]
    u = jax.random.uniform(key, (num_actions + 2,))
    is_max = q_values == jnp.max(q_values)
    greedy = jnp.argmax(jnp.where(is_max, u[2:], -1.0))
    random_action = jnp.minimum((u[1] * num_actions).astype(jnp.int32), num_actions - 1)
    return jnp.where(u[0] < epsilon, random_action, greedy).astype(jnp.int32)


def q_learning_target(q: jax.Array, transition: Transition, gamma) -> jax.Array:
    """The sample-update target R + gamma * max_a Q(S', a), without bootstrap at terminal S'."""
    bootstrap = jnp.where(transition.done, 0.0, jnp.max(q[transition.next_obs]))
    return transition.reward + gamma * bootstrap


def q_learning(
    num_states: int,
    num_actions: int,
    *,
    alpha=0.1,
    epsilon=0.1,
    gamma=0.95,
    initial_value: float = 0.0,
) -> Learner:
    """One-step tabular Q-learning, the sample update of eq. 6.8:

        Q(S, A) <- Q(S, A) + alpha * [R + gamma * max_a Q(S', a) - Q(S, A)]

    Observations are integer state indices. ``alpha``, ``epsilon`` and ``gamma``
    may be traced arrays, so a vmap can sweep them.
    """
    check_in_range("alpha", alpha, 0.0, 1.0)
    check_in_range("gamma", gamma, 0.0, 1.0)

    def update(state: QTable, transition: Transition, key: PRNGKey) -> QTable:
        del key
        q = state.q
        s, a = transition.obs, transition.action
        td_error = q_learning_target(q, transition, gamma) - q[s, a]
        return QTable(q.at[s, a].add(alpha * td_error))

    return q_table_learner(num_states, num_actions, update, epsilon, initial_value)


def q_table_learner(
    num_states: int, num_actions: int, update, epsilon=0.1, initial_value: float = 0.0
) -> Learner:
    """A learner over a (num_states, num_actions) Q-table filled with
    ``initial_value``, acting epsilon-greedily, with the given ``update`` rule."""
    num_states = check_count("num_states", num_states, minimum=1)
    num_actions = check_count("num_actions", num_actions, minimum=1)
    check_in_range("epsilon", epsilon, 0.0, 1.0)

    def init(key: PRNGKey) -> QTable:
        del key
        return QTable(jnp.full((num_states, num_actions), initial_value, jnp.float32))

    def act(state: QTable, obs, key: PRNGKey) -> jax.Array:
        return epsilon_greedy(state.q[obs], epsilon, key)

    return Learner(init, act, update)
