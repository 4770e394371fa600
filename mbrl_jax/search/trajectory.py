"""Search control for the distribution of updates of S&B section 8.6 (Figure 8.8):
on-policy trajectory sampling versus uniform sweeps over all state-action pairs.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mbrl_jax.hyperparameters import traced
from mbrl_jax.models import draw_transition
from mbrl_jax.types import Learner, PRNGKey, SearchControl, Transition, TransitionDistribution
from mbrl_jax.validation import check_count


class TrajectoryState(NamedTuple):
    obs: jax.Array  # () int32, the current state of the simulated trajectory
    start: jax.Array  # () int32, where every simulated episode begins


def _next_state(
    transition: Transition | TransitionDistribution, start: jax.Array, key: PRNGKey
) -> jax.Array:
    """Where a simulated trajectory goes after ``transition``: its next state, or
    ``start`` when it terminated; for a distribution, one outcome drawn by its prob."""
    if isinstance(transition, TransitionDistribution):
        transition = draw_transition(transition, key)
    return jnp.where(transition.done, start, transition.next_obs).astype(jnp.int32)


@traced("start_state")
def trajectory_sampling(learner: Learner, *, start_state: Any = 0) -> SearchControl:
    """On-policy trajectory sampling (S&B section 8.6): planning updates follow
    simulated episodes that all begin in ``start_state``, with actions from the
    current policy ``learner.act`` (e.g. epsilon-greedy on the current Q).

    The state is the simulated trajectory's current state. ``propose`` picks the
    action there with ``learner.act(learner_state, obs, key)`` and leaves the
    state as it is; ``update(..., simulated=True)`` moves it on with the simulated
    transition just learned from: to its ``next_obs`` for a Transition, or to an
    outcome drawn by ``prob`` for a TransitionDistribution (so the trajectory
    follows the model's dynamics, not the expected update's average), and back
    to ``start_state`` when that outcome is terminal. Real transitions
    (``simulated=False``) are ignored: the simulated trajectory runs on its own,
    as in the book's planning-only experiment. ``start_state`` may be traced
    (e.g. a vmapped task's start).
    """

    def init(key: PRNGKey) -> TrajectoryState:
        del key
        start = jnp.asarray(start_state, jnp.int32)
        return TrajectoryState(start, start)

    def update(
        state: TrajectoryState,
        transition,
        learner_state,
        model_state,
        key: PRNGKey,
        *,
        simulated: bool = False,
    ) -> TrajectoryState:
        del learner_state, model_state
        if not simulated:
            return state
        return TrajectoryState(_next_state(transition, state.start, key), state.start)

    def propose(state: TrajectoryState, learner_state, model_state, key: PRNGKey):
        del model_state
        action = learner.act(learner_state, state.obs, key)
        return state.obs, jnp.asarray(action, jnp.int32), state

    return SearchControl(init, update, propose)


def uniform_sweep(num_states: int, num_actions: int) -> SearchControl:
    """The uniform case of S&B section 8.6: cycle through all state-action pairs in
    order, (0, 0), (0, 1), ..., (S-1, A-1), (0, 0), ..., one per planning update,
    updating each in place (one sweep of exhaustive dynamic programming is S * A
    updates). The state is the index of the next pair; transitions are ignored.
    """
    num_states = check_count("num_states", num_states, minimum=1)
    num_actions = check_count("num_actions", num_actions, minimum=1)
    num_pairs = num_states * num_actions

    def init(key: PRNGKey) -> jax.Array:
        del key
        return jnp.zeros((), jnp.int32)

    def update(state, transition, learner_state, model_state, key, *, simulated=False):
        del transition, learner_state, model_state, key, simulated
        return state

    def propose(state: jax.Array, learner_state, model_state, key: PRNGKey):
        del learner_state, model_state, key
        obs, action = state // num_actions, state % num_actions
        return obs, action, jnp.where(state + 1 == num_pairs, 0, state + 1).astype(jnp.int32)

    return SearchControl(init, update, propose)
