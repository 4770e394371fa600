"""Tabular expected Q-learning update (S&B section 8.5), with epsilon-greedy acting."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mbrl_jax.learners.tabular import QTable, q_table_learner
from mbrl_jax.types import Learner, PRNGKey, Transition, TransitionDistribution
from mbrl_jax.validation import check_in_range


def expected_q_target(q: jax.Array, distribution: TransitionDistribution, gamma) -> jax.Array:
    """sum_k p_k [r_k + gamma (1 - done_k) max_a' Q(s'_k, a')], over the outcome axis.

    Slots of probability 0 contribute nothing, whatever they hold.
    """
    bootstrap = jnp.where(distribution.done, 0.0, jnp.max(q[distribution.next_obs], axis=-1))
    per_outcome = distribution.reward + gamma * bootstrap
    return jnp.sum(jnp.where(distribution.prob > 0, distribution.prob * per_outcome, 0.0), -1)


def as_distribution(transition: Transition | TransitionDistribution) -> TransitionDistribution:
    """A Transition as a distribution with one outcome of probability 1; a
    TransitionDistribution unchanged (Python-level dispatch on the type)."""
    if isinstance(transition, TransitionDistribution):
        return transition
    t = transition
    reward, next_obs, done = (jnp.asarray(x)[..., None] for x in (t.reward, t.next_obs, t.done))
    return TransitionDistribution(
        t.obs, t.action, reward, next_obs, done, jnp.ones(reward.shape, jnp.float32)
    )


def expected_q_learning(
    num_states: int,
    num_actions: int,
    *,
    alpha=1.0,
    epsilon=0.1,
    gamma=1.0,
    initial_value: float = 0.0,
) -> Learner:
    """One-step tabular Q-learning with the expected update of S&B section 8.5:

        Q(s, a) <- Q(s, a) + alpha [ sum_k p_k (r_k + gamma (1 - done_k) max_a' Q(s'_k, a'))
                                     - Q(s, a) ]

    over the outcomes k of a :class:`~mbrl_jax.types.TransitionDistribution`.
    With ``alpha = 1`` (the default) this is the book's expected update
    Q(s, a) <- sum_{s', r} p(s', r | s, a) [r + gamma max_a' Q(s', a')]. ``update``
    also accepts a plain :class:`~mbrl_jax.types.Transition`, taken as one outcome
    of probability 1, so on a deterministic model it is exactly the sample update
    of :func:`~mbrl_jax.learners.tabular.q_learning` (eq. 6.8) with the same alpha.
    Acting is epsilon-greedy on Q (ties broken uniformly). ``alpha``, ``epsilon``
    and ``gamma`` may be traced arrays, so a vmap can sweep them.
    """
    check_in_range("alpha", alpha, 0.0, 1.0)
    check_in_range("gamma", gamma, 0.0, 1.0)

    def update(
        state: QTable, transition: Transition | TransitionDistribution, key: PRNGKey
    ) -> QTable:
        del key
        q = state.q
        distribution = as_distribution(transition)
        s, a = distribution.obs, distribution.action
        error = expected_q_target(q, distribution, gamma) - q[s, a]
        return QTable(q.at[s, a].add(alpha * error))

    return q_table_learner(num_states, num_actions, update, epsilon, initial_value)
