"""Prioritized sweeping (S&B section 8.4) as a search control.

Two array structures make it work inside jit and vmap:

- a :mod:`mbrl_jax.priority_queue` of state-action pairs, each popped by
  highest priority (one entry per pair, as in the book's box);
- :class:`Predecessors`: for every state, a fixed-capacity list of the pairs
  (s_bar, a_bar) the model has seen leading to it, so that the pairs "predicted
  to lead to S" are found without scanning the model. An entry whose pair the
  model now sends elsewhere is stale: it is skipped when read and its slot is
  reused when written. A pair that finds no free slot is counted in
  ``overflow`` (never dropped silently: :func:`check_predecessor_overflow`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mbrl_jax.hyperparameters import traced
from mbrl_jax.learners import q_learning_target
from mbrl_jax.priority_queue import (
    PriorityQueue,
    queue_init,
    queue_is_empty,
    queue_pop,
    queue_push,
)
from mbrl_jax.types import Model, PRNGKey, SearchControl, Transition
from mbrl_jax.validation import check_count, check_nonnegative

_EMPTY = -1  # an unused predecessor slot


class Predecessors(NamedTuple):
    pairs: jax.Array  # (num_states, capacity) int32 pair index s_bar * A + a_bar, or _EMPTY
    overflow: jax.Array  # () int32: pairs that found no free slot


def _predecessors_init(num_states: int, capacity: int) -> Predecessors:
    return Predecessors(
        jnp.full((num_states, capacity), _EMPTY, jnp.int32), jnp.zeros((), jnp.int32)
    )


def _predecessors_add(
    preds: Predecessors, next_obs: jax.Array, pair: jax.Array, live: jax.Array
) -> Predecessors:
    """Record that ``pair`` leads to ``next_obs``. ``live`` (shape (capacity,), bool)
    says which current entries of ``next_obs``'s list the model still sends there;
    the pair goes into the first slot that is empty or stale, unless already listed."""
    row = preds.pairs[next_obs]
    free = (row == _EMPTY) | ~live
    listed = jnp.any((row == pair) & live)
    has_free = jnp.any(free)
    slot = jnp.argmax(free)
    write = ~listed & has_free
    row = row.at[slot].set(jnp.where(write, pair, row[slot]))
    overflow = preds.overflow + (~listed & ~has_free).astype(jnp.int32)
    return Predecessors(preds.pairs.at[next_obs].set(row), overflow)


class SweepState(NamedTuple):
    queue: PriorityQueue
    predecessors: Predecessors


def check_predecessor_overflow(search_state: SweepState) -> None:
    """Raise (outside jit) if any run had more predecessors of a state than the
    lists hold; their pushes were lost, so the run is not prioritized sweeping."""
    lost = int(jnp.max(search_state.predecessors.overflow))
    if lost:
        capacity = search_state.predecessors.pairs.shape[-1]
        raise ValueError(
            f"prioritized sweeping: {lost} predecessor pairs found no room in lists of "
            f"max_predecessors={capacity}; use a larger max_predecessors"
        )


class _Sweep(NamedTuple):
    """What the search control's functions share: fixed by the factory."""

    model: Model
    num_actions: int
    theta: Any
    gamma: Any


def _predict(sweep: _Sweep, model_state, pairs: jax.Array, target, key: PRNGKey):
    """``(predicted, live)``: the model's transitions from the listed ``pairs`` (a row
    of the predecessor lists of ``target``), and which entries are live: listed, and
    the model still sends that pair to ``target``."""
    listed_pairs = jnp.maximum(pairs, 0)
    s_bar, a_bar = listed_pairs // sweep.num_actions, listed_pairs % sweep.num_actions
    keys = jax.random.split(key, pairs.shape[0])
    sample = jax.vmap(sweep.model.sample, in_axes=(None, 0, 0, 0))
    predicted = sample(model_state, s_bar, a_bar, keys)
    return predicted, (pairs != _EMPTY) & (predicted.next_obs == target)


def _priority(q: jax.Array, transition: Transition, gamma: Any) -> jax.Array:
    """P = |R + gamma max_a Q(S', a) - Q(S, A)|: the size of the pair's TD error."""
    target = q_learning_target(transition.reward, transition.done, q[transition.next_obs], gamma)
    return jnp.abs(target - q[transition.obs, transition.action])


def _after_real(sweep: _Sweep, state: SweepState, transition, q, model_state, key) -> SweepState:
    """List (S, A) as a predecessor of S' and queue it by its priority."""
    s, a, s_next = transition.obs, transition.action, transition.next_obs
    pair = (s * sweep.num_actions + a).astype(jnp.int32)
    _, live = _predict(sweep, model_state, state.predecessors.pairs[s_next], s_next, key)
    predecessors = _predecessors_add(state.predecessors, s_next, pair, live)
    p = _priority(q, transition, sweep.gamma)
    queue = queue_push(state.queue, pair, jnp.where(p > sweep.theta, p, -jnp.inf))
    return SweepState(queue, predecessors)


def _after_planning(sweep: _Sweep, state: SweepState, transition, q, model_state, key):
    """Queue the live predecessors of the state whose value was just updated."""
    pairs = state.predecessors.pairs[transition.obs]
    predicted, live = _predict(sweep, model_state, pairs, transition.obs, key)
    p = jax.vmap(_priority, in_axes=(None, 0, None))(q, predicted, sweep.gamma)
    queue = queue_push(state.queue, pairs, jnp.where(live & (p > sweep.theta), p, -jnp.inf))
    return SweepState(queue, state.predecessors)


@traced("theta", "gamma")
def prioritized(
    num_states: int,
    num_actions: int,
    model: Model,
    *,
    theta: Any = 1e-4,
    gamma: Any = 0.95,
    max_predecessors: int = 8,
    block_size: int | None = None,
) -> SearchControl:
    """Prioritized sweeping's search control (S&B section 8.4, the box for a
    deterministic environment), for a tabular learner whose state has ``.q``.

    Real transition (S, A, R, S'): list (S, A) as a predecessor of S', then

        P = |R + gamma max_a Q(S', a) - Q(S, A)|,  insert (S, A) if P > theta.

    Planning: pop the highest-priority pair; after the learner's update of (S, A),
    for every listed (S_bar, A_bar) that ``model`` predicts to lead to S, with
    predicted reward R_bar:

        P = |R_bar + gamma max_a Q(S, a) - Q(S_bar, A_bar)|,  insert if P > theta.

    ``has_proposal`` is False when the queue is empty, so dyna stops planning early
    (the book's "while PQueue is not empty"). Use with ``dyna(..., direct_rl=False)``
    to follow the book, where Q changes only through planning.

    ``max_predecessors`` bounds the pairs listed per state (8 covers any
    4-action gridworld: 4 neighbours plus up to 4 moves into walls).
    """
    num_states = check_count("num_states", num_states, minimum=1)
    num_actions = check_count("num_actions", num_actions, minimum=1)
    check_nonnegative("theta", theta)
    max_predecessors = check_count("max_predecessors", max_predecessors, minimum=1)
    if max_predecessors > num_states * num_actions:
        raise ValueError(
            f"max_predecessors must be at most num_states * num_actions = "
            f"{num_states * num_actions}, got {max_predecessors}"
        )
    capacity = num_states * num_actions
    if block_size is not None and not 1 <= block_size <= capacity:
        raise ValueError(
            f"block_size must be in [1, num_states * num_actions = {capacity}], got {block_size}"
        )
    sweep = _Sweep(model, num_actions, theta, gamma)

    def init(key: PRNGKey) -> SweepState:
        del key
        return SweepState(
            queue_init(capacity, block_size), _predecessors_init(num_states, max_predecessors)
        )

    def update(state: SweepState, transition, learner_state, model_state, key, *, simulated=False):
        after = _after_planning if simulated else _after_real
        return after(sweep, state, transition, learner_state.q, model_state, key)

    def propose(state: SweepState, learner_state, model_state, key: PRNGKey):
        del learner_state, model_state, key
        pair, _, queue = queue_pop(state.queue)
        return pair // num_actions, pair % num_actions, SweepState(queue, state.predecessors)

    def has_proposal(state: SweepState) -> jax.Array:
        return ~queue_is_empty(state.queue)

    return SearchControl(init, update, propose, has_proposal=has_proposal)
