"""Tabular Q-learning (S&B eq. 6.8) and the expected update (section 8.5), acting
epsilon-greedily on a (num_states, num_actions) Q-table.

**What they accept.** Observations (``obs``, ``next_obs``) are integer state indices in
[0, num_states) and actions integers in [0, num_actions). Any other dtype is a
TypeError at once (at trace time under jit), and a concrete index out of range a
ValueError (:func:`~mbrl_jax.types.check_index`). Inside jit an index out of range
cannot raise (it does under :func:`mbrl_jax.train.checked`); the rule then is: the
update writes NaN into Q at the entry JAX's indexing picks for those indices (a
negative index counts from the end, one too large is clipped to the last), never a
number into another entry, and ``act`` on such an observation returns action -1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
from gymnax.environments import spaces as spaces_lib

from mbrl_jax.hyperparameters import traced
from mbrl_jax.learners.exploration import epsilon_greedy
from mbrl_jax.learners.targets import expected_q_target, q_learning_target
from mbrl_jax.types import (
    Learner,
    PRNGKey,
    Spaces,
    Transition,
    TransitionDistribution,
    check_index,
)
from mbrl_jax.validation import check_count, check_in_range


class QTable(NamedTuple):
    q: jax.Array  # (num_states, num_actions)


def q_learning_update(q: jax.Array, transition: Transition, alpha: Any, gamma: Any) -> jax.Array:
    """The sample update of eq. 6.8 on one transition of state indices:

    Q(S, A) <- Q(S, A) + alpha [R + gamma max_a Q(S', a) - Q(S, A)]

    S, S' are integer indices in [0, num_states), A in [0, num_actions) (see the module
    docstring for what happens to others)."""
    chex.assert_rank(q, 2)
    s, a = transition.obs, transition.action
    valid = _valid_indices("q_learning_update", q.shape, s, a, transition.next_obs)
    reward = jnp.where(valid, transition.reward, jnp.nan)
    target = q_learning_target(reward, transition.done, q[transition.next_obs], gamma)
    return q.at[s, a].add(alpha * (target - q[s, a]), mode="clip")


def _valid_indices(who: str, shape: tuple[int, int], obs, action, next_obs) -> jax.Array:
    """Whether (obs, action) and every ``next_obs`` (it may carry a trailing outcome
    axis) lie in the (S, A) table (:func:`~mbrl_jax.types.check_index`)."""
    num_states, num_actions = shape
    valid = check_index(who, "obs", obs, num_states) & check_index(
        who, "action", action, num_actions
    )
    next_valid = check_index(who, "next_obs", next_obs, num_states)
    if jnp.ndim(next_obs) > jnp.ndim(obs):
        next_valid = jnp.all(next_valid, axis=-1)
    return valid & next_valid


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

    A plain Transition counts as one outcome of probability 1 (then this is eq. 6.8).
    Indices as in :func:`q_learning_update`; every outcome's ``next_obs`` (padding
    slots included) must be a state index."""
    chex.assert_rank(q, 2)
    distribution = as_distribution(transition)
    s, a = distribution.obs, distribution.action
    who = "expected_q_learning_update"
    valid = _valid_indices(who, q.shape, s, a, distribution.next_obs)
    reward = jnp.where(valid[..., None], distribution.reward, jnp.nan)
    target = expected_q_target(q, distribution._replace(reward=reward), gamma)
    return q.at[s, a].add(alpha * (target - q[s, a]), mode="clip")


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
    ``update(state, transition, key) -> state`` rule. ``act`` takes an integer state
    index in [0, num_states) (see the module docstring for others); the learner's
    ``spaces`` are ``Discrete(num_states)`` and ``Discrete(num_actions)``."""
    num_states = check_count("num_states", num_states, minimum=1)
    num_actions = check_count("num_actions", num_actions, minimum=1)
    check_in_range("epsilon", epsilon, 0.0, 1.0)

    def init(key: PRNGKey) -> QTable:
        del key
        return QTable(jnp.full((num_states, num_actions), initial_value, jnp.float32))

    def act(state: QTable, obs, key: PRNGKey) -> jax.Array:
        valid = check_index("q_table_learner.act", "obs", obs, num_states)
        action = epsilon_greedy(state.q[jnp.clip(obs, 0, num_states - 1)], epsilon, key)
        return jnp.where(valid, action, -1)

    spaces = Spaces(spaces_lib.Discrete(num_states), spaces_lib.Discrete(num_actions))
    return Learner(init, act, update, spaces)
