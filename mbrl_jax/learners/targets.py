"""Bootstrapped targets of one-step Q-learning, tabular and neural (rlax style: one pure
function per rule, the equation in its docstring, the caller vmaps).

The first three are the book's Q-learning target (S&B eq. 6.8) with a different
estimate of max_a Q(S', a): the table itself, a target network chosen by another network
(double Q), or an expectation over the outcomes of a distribution model (section 8.5).
:func:`advantage_learning_target` turns any of them into advantage learning's.
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp

from mbrl_jax.types import TransitionDistribution


def q_learning_target(
    reward: jax.Array, done: jax.Array, q_next: jax.Array, gamma: Any
) -> jax.Array:
    """The sample-update target of Q-learning (S&B eq. 6.8):

        y = R + gamma (1 - done) max_a Q(S', a)

    ``q_next`` holds Q(S', .) on its last axis; ``reward`` and ``done`` have its leading
    shape. No bootstrap from a terminal S'."""
    return reward + gamma * jnp.where(done, 0.0, jnp.max(q_next, axis=-1))


def double_q_learning_target(
    reward: jax.Array,
    done: jax.Array,
    q_next_target: jax.Array,
    q_next_selector: jax.Array,
    gamma: Any,
) -> jax.Array:
    """The double Q-learning target (van Hasselt et al. 2016):

        y = R + gamma (1 - done) Q_target(S', argmax_a Q_selector(S', a))

    With ``q_next_selector`` the online network's Q(S', .) this is double DQN; with the
    target network's own values it equals :func:`q_learning_target` on them."""
    chex.assert_equal_shape((q_next_target, q_next_selector))
    best = jnp.argmax(q_next_selector, axis=-1)
    bootstrap = jnp.take_along_axis(q_next_target, best[..., None], axis=-1)[..., 0]
    return reward + gamma * jnp.where(done, 0.0, bootstrap)


def advantage_learning_target(
    target: jax.Array, q: jax.Array, action: jax.Array, alpha: Any
) -> jax.Array:
    """Advantage learning's target (Baird 1999; the gap-increasing operator of Bellemare
    et al. 2016, eq. 6) from a Q-learning target ``y`` of (S, A):

        y_AL = y - alpha (max_b Q(S, b) - Q(S, A)),    0 <= alpha < 1

    ``q`` holds Q(S, .) (in DQN the target network's) on its last axis and ``action``
    the taken A. The taken action's gap to the greedy one is subtracted, so the values
    of the actions not chosen are pushed below the greedy one's; alpha = 0 is ``y``."""
    chex.assert_equal_shape((target, action))
    taken = jnp.take_along_axis(q, action[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return target - alpha * (jnp.max(q, axis=-1) - taken)


def expected_q_target(q: jax.Array, distribution: TransitionDistribution, gamma: Any) -> jax.Array:
    """The expected-update target of S&B section 8.5 over the K outcomes of a distribution:

        y = sum_k p_k [r_k + gamma (1 - done_k) max_a' Q(s'_k, a')]

    ``q`` is the (S, A) table; slots of probability 0 contribute nothing, whatever they hold."""
    chex.assert_rank(q, 2)
    per_outcome = q_learning_target(
        distribution.reward, distribution.done, q[distribution.next_obs], gamma
    )
    return jnp.sum(jnp.where(distribution.prob > 0, distribution.prob * per_outcome, 0.0), -1)
