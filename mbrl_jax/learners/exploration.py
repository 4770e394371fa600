"""Epsilon-greedy acting, the one exploration rule of the tabular and the neural learners."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from mbrl_jax.types import PRNGKey


def epsilon_greedy(q_values: jax.Array, epsilon: Any, key: PRNGKey) -> jax.Array:
    """An action per row of ``q_values`` (shape (..., A)): uniformly random with
    probability epsilon, otherwise greedy with ties broken uniformly among the maximal
    actions (so an all-zero Q-table does not always pick action 0).

    One uniform draw of A + 2 numbers per row serves all three random choices. Returns
    int32 of shape ``q_values.shape[:-1]``."""
    num_actions = q_values.shape[-1]
    u = jax.random.uniform(key, (*q_values.shape[:-1], num_actions + 2))
    is_max = q_values == jnp.max(q_values, axis=-1, keepdims=True)
    greedy = jnp.argmax(jnp.where(is_max, u[..., 2:], -1.0), axis=-1)
    random_action = jnp.minimum((u[..., 1] * num_actions).astype(jnp.int32), num_actions - 1)
    return jnp.where(u[..., 0] < epsilon, random_action, greedy).astype(jnp.int32)
