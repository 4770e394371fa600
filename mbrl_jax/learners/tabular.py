"""Tabular Q-learning (S&B eq. 6.8) and the expected update (section 8.5), acting
epsilon-greedily on a (num_states, num_actions) Q-table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from mbrl_jax.hyperparameters import traced
from mbrl_jax.learners.exploration import epsilon_greedy
from mbrl_jax.learners.targets import expected_q_target, q_learning_target
from mbrl_jax.types import Learner, PRNGKey, Transition, TransitionDistribution
from mbrl_jax.validation import check_count, check_in_range


class QTable(NamedTuple):
    q: jax.Array  # (num_states, num_actions)


def q_learning_update(q: jax.Array, transition: Transition, alpha: Any, gamma: Any) -> jax.Array:
    """The sample update of eq. 6.8 on one transition of state indices:

    Q(S, A) <- Q(S, A) + alpha [R + gamma max_a Q(S', a) - Q(S, A)]"""
    chex.assert_rank(q, 2)
    s, a = transition.obs, transition.action
    target = q_learning_target(transition.reward, transition.done, q[transition.next_obs], gamma)
    return q.at[s, a].add(alpha * (target - q[s, a]))


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


def expected_q_learning_update(
    q: jax.Array, transition: Transition | TransitionDistribution, alpha: Any, gamma: Any
) -> jax.Array:
    """The expected update of S&B section 8.5 over every outcome k of (s, a):

    Q(s, a) <- Q(s, a) + alpha [sum_k p_k (r_k + gamma (1 - done_k) max_a' Q(s'_k, a'))
                                - Q(s, a)]

    A plain Transition counts as one outcome of probability 1 (then this is eq. 6.8)."""
    chex.assert_rank(q, 2)
    distribution = as_distribution(transition)
    s, a = distribution.obs, distribution.action
    return q.at[s, a].add(alpha * (expected_q_target(q, distribution, gamma) - q[s, a]))


@traced("alpha", "epsilon", "gamma")
def q_learning(
    num_states: int,
    num_actions: int,
    *,
    alpha: Any = 0.1,
    epsilon: Any = 0.1,
    gamma: Any = 0.95,
    initial_value: float = 0.0,
) -> Learner:
    """One-step tabular Q-learning, the sample update of eq. 6.8
    (:func:`q_learning_update`). Observations are integer state indices."""
    return _rule_learner(
        num_states, num_actions, q_learning_update, alpha, epsilon, gamma, initial_value
    )


@traced("alpha", "epsilon", "gamma")
def expected_q_learning(
    num_states: int,
    num_actions: int,
    *,
    alpha: Any = 1.0,
    epsilon: Any = 0.1,
    gamma: Any = 1.0,
    initial_value: float = 0.0,
) -> Learner:
    """Tabular Q-learning with the expected update of S&B section 8.5
    (:func:`expected_q_learning_update`). With ``alpha = 1`` (the default) it is the book's
    Q(s, a) <- sum_{s', r} p(s', r | s, a) [r + gamma max_a' Q(s', a')]; on a deterministic
    model it is exactly :func:`q_learning` with the same alpha."""
    return _rule_learner(
        num_states, num_actions, expected_q_learning_update, alpha, epsilon, gamma, initial_value
    )


def _rule_learner(num_states, num_actions, rule, alpha, epsilon, gamma, initial_value) -> Learner:
    """A Q-table learner whose update is ``rule(q, transition, alpha, gamma) -> q``."""
    check_in_range("alpha", alpha, 0.0, 1.0)
    check_in_range("gamma", gamma, 0.0, 1.0)

    def update(state: QTable, transition, key: PRNGKey) -> QTable:
        del key
        return QTable(rule(state.q, transition, alpha, gamma))

    return q_table_learner(
        num_states, num_actions, update, epsilon=epsilon, initial_value=initial_value
    )


@traced("epsilon")
def q_table_learner(
    num_states: int,
    num_actions: int,
    update: Callable[[QTable, Any, PRNGKey], QTable],
    *,
    epsilon: Any = 0.1,
    initial_value: float = 0.0,
) -> Learner:
    """A learner over a (num_states, num_actions) Q-table filled with ``initial_value``,
    acting epsilon-greedily (:func:`~mbrl_jax.learners.epsilon_greedy`), with the given
    ``update(state, transition, key) -> state`` rule."""
    num_states = check_count("num_states", num_states, minimum=1)
    num_actions = check_count("num_actions", num_actions, minimum=1)
    check_in_range("epsilon", epsilon, 0.0, 1.0)

    def init(key: PRNGKey) -> QTable:
        del key
        return QTable(jnp.full((num_states, num_actions), initial_value, jnp.float32))

    def act(state: QTable, obs, key: PRNGKey) -> jax.Array:
        return epsilon_greedy(state.q[obs], epsilon, key)

    return Learner(init, act, update)
