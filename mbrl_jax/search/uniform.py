"""Uniform search control: planning starts from uniformly chosen (state, action) pairs.

Previously seen pairs are kept in an array list (append once, on first visit),
so a uniform draw is O(1): ``pairs[floor(u * count)]``, not a categorical over
all states.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mbrl_jax.types import PRNGKey, SearchControl, Transition
from mbrl_jax.validation import check_count


class SeenPairs(NamedTuple):
    seen: jax.Array  # (S, A) bool for pairs, (S,) bool for states
    items: jax.Array  # (capacity, 2) int32 (s, a) pairs or (capacity,) int32 states, in order seen
    count: jax.Array  # () int32


def _index(u: jax.Array, count: jax.Array) -> jax.Array:
    """floor(u * count), clipped into [0, count - 1]: a uniform index from u in [0, 1)."""
    return jnp.clip((u * count).astype(jnp.int32), 0, jnp.maximum(count - 1, 0))


def uniform_seen(num_states: int, num_actions: int) -> SearchControl:
    """Tabular Dyna-Q's search control (S&B section 8.2, step (f)): a random
    previously observed state, then a random action previously taken in it.

    Drawing uniformly over the list of seen (s, a) pairs is the same as the
    book's two-stage draw only when every state has the same number of tried
    actions; like most implementations, we draw the pair uniformly.
    """
    num_states = check_count("num_states", num_states, minimum=1)
    num_actions = check_count("num_actions", num_actions, minimum=1)

    def init(key: PRNGKey) -> SeenPairs:
        del key
        return SeenPairs(
            seen=jnp.zeros((num_states, num_actions), bool),
            items=jnp.zeros((num_states * num_actions, 2), jnp.int32),
            count=jnp.zeros((), jnp.int32),
        )

    def update(state, transition: Transition, learner_state, model_state, key, *, simulated=False):
        del learner_state, model_state, key
        if simulated:
            return state
        s, a = transition.obs, transition.action
        new = ~state.seen[s, a]
        pair = jnp.stack([s, a]).astype(jnp.int32)
        items = state.items.at[state.count].set(jnp.where(new, pair, state.items[state.count]))
        return SeenPairs(state.seen.at[s, a].set(True), items, state.count + new)

    def propose(state: SeenPairs, learner_state, model_state, key: PRNGKey):
        del learner_state, model_state
        u = jax.random.uniform(key)
        pair = state.items[_index(u, state.count)]
        return pair[0], pair[1], state

    return SearchControl(init, update, propose, independent=True)


def uniform_over_states(num_states: int, num_actions: int, *, states: Any = None) -> SearchControl:
    """A uniformly random state from a list, then a uniformly random action of all
    ``num_actions`` (tried or not).

    With ``states=None`` the list is the states observed so far: Dyna-Q+'s
    search control (S&B section 8.3 footnote: untried actions may be planned
    with). With a fixed array of states, it is the random-sample one-step
    tabular Q-planning of section 8.1 (step 1: a state and an action at random).
    """
    num_states = check_count("num_states", num_states, minimum=1)
    num_actions = check_count("num_actions", num_actions, minimum=1)
    fixed = None if states is None else jnp.asarray(states, jnp.int32)
    if fixed is not None and fixed.ndim != 1 or fixed is not None and fixed.size == 0:
        raise ValueError(f"states must be a non-empty 1-D list of state indices, got {states!r}")

    def init(key: PRNGKey) -> SeenPairs:
        del key
        if fixed is not None:
            return SeenPairs(
                jnp.ones((num_states,), bool), fixed, jnp.asarray(fixed.size, jnp.int32)
            )
        return SeenPairs(
            seen=jnp.zeros((num_states,), bool),
            items=jnp.zeros((num_states,), jnp.int32),
            count=jnp.zeros((), jnp.int32),
        )

    def update(state, transition: Transition, learner_state, model_state, key, *, simulated=False):
        del learner_state, model_state, key
        if simulated or fixed is not None:
            return state
        s = transition.obs
        new = ~state.seen[s]
        items = state.items.at[state.count].set(jnp.where(new, s, state.items[state.count]))
        return SeenPairs(state.seen.at[s].set(True), items, state.count + new)

    def propose(state: SeenPairs, learner_state, model_state, key: PRNGKey):
        del learner_state, model_state
        u = jax.random.uniform(key, (2,))
        s = state.items[_index(u[0], state.count)]
        a = jnp.minimum((u[1] * num_actions).astype(jnp.int32), num_actions - 1)
        return s, a, state

    return SearchControl(init, update, propose, independent=True)
