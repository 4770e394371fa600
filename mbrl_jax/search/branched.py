"""Search control for neural Dyna: branched model rollouts from replayed real states.

MBPO (Janner et al. 2019, "When to trust your model") as a Dyna search control.
Each planning step proposes a *batch* of (state, action) pairs: ``batch_size``
branches that start from real states drawn uniformly from the replay buffer and
follow the learner's current policy through the model for ``horizon`` (k) steps.
Planning step j of a branch proposes the state the model reached at step j - 1,
so the n planning updates of a real step walk the branches k steps deep, then
start new ones. With k = 1 every planning step starts afresh from real states:
classic Dyna's one-step planning (S&B section 8.2) on a batch. A branch whose
simulated transition terminates restarts from a fresh real state. k may grow with the
real steps seen (:func:`rollout_length_schedule`, MBPO's linear schedule).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mbrl_jax.replay import ReplayBuffer, buffer_sample
from mbrl_jax.types import Learner, PRNGKey, SearchControl, State, Transition
from mbrl_jax.validation import check_count


class BranchState(NamedTuple):
    obs: jax.Array  # (batch_size, obs_size) where each branch stands
    depth: jax.Array  # () int32 model steps taken along the current branches, 0 .. k - 1
    real_steps: jax.Array  # () int32 real transitions seen


def rollout_length_schedule(
    first_step: int, last_step: int, min_length: int, max_length: int
) -> Callable[[jax.Array], jax.Array]:
    """MBPO's rollout length k against real steps t (Janner et al. 2019, appendix C):

        k(t) = floor( min_length + clip((t - first_step) / (last_step - first_step), 0, 1)
                                   x (max_length - min_length) )

    ``min_length`` until ``first_step``, rising linearly to ``max_length`` at ``last_step``."""
    min_length = check_count("min_length", min_length, minimum=1)
    max_length = check_count("max_length", max_length, minimum=min_length)
    first_step = check_count("first_step", first_step, minimum=0)
    last_step = check_count("last_step", last_step, minimum=first_step + 1)

    def length(real_steps: jax.Array) -> jax.Array:
        progress = jnp.clip((real_steps - first_step) / (last_step - first_step), 0.0, 1.0)
        return jnp.floor(min_length + progress * (max_length - min_length)).astype(jnp.int32)

    return length


def _horizon_of(horizon: Any) -> Callable[[jax.Array], Any]:
    """``horizon`` (a count, or a schedule of real steps) as a schedule, checked: a
    schedule must give at least 1 at the first real step and at 10^9 (its ends, for a
    monotone schedule such as :func:`rollout_length_schedule`)."""
    if callable(horizon):
        for real_steps in (0, 10**9):
            length = int(horizon(jnp.asarray(real_steps, jnp.int32)))
            if length < 1:
                raise ValueError(
                    f"the rollout length schedule gives {length} at real step {real_steps}; "
                    "it must be >= 1"
                )
        return horizon
    horizon = check_count("horizon (the rollout length k)", horizon, minimum=1)
    return lambda real_steps: horizon


def _model_buffer(model_state: State) -> ReplayBuffer:
    """The real transitions a neural model keeps (``NeuralModelState.data``)."""
    return model_state.data


def branched_rollouts(
    learner: Learner,
    obs_size: int,
    *,
    batch_size: int = 64,
    horizon: int | Callable[[jax.Array], jax.Array] = 1,
    planning_starts: int = 1,
    real_buffer: Callable[[State], ReplayBuffer] = _model_buffer,
) -> SearchControl:
    """Propose ``batch_size`` (obs, action) pairs per planning step along branched
    rollouts of ``horizon`` model steps (see the module docstring): a count, or a
    schedule ``horizon(real_steps) -> k`` (:func:`rollout_length_schedule`).

    Start states are drawn from ``real_buffer(model_state)`` (the model's buffer of
    real transitions by default); actions come from ``learner.act`` on the current
    learner state, one key per branch. Planning waits until ``planning_starts`` real
    transitions have been seen (``has_proposal``; skipped updates are not counted).
    """
    obs_size = check_count("obs_size", obs_size, minimum=1)
    batch_size = check_count("batch_size", batch_size, minimum=1)
    horizon_of = _horizon_of(horizon)
    planning_starts = check_count("planning_starts", planning_starts, minimum=1)

    def fresh_states(model_state: State, key: PRNGKey) -> jax.Array:
        return buffer_sample(real_buffer(model_state), key, batch_size).obs

    def init(key: PRNGKey) -> BranchState:
        del key
        zero = jnp.zeros((), jnp.int32)
        return BranchState(jnp.zeros((batch_size, obs_size)), zero, zero)

    def update(
        state: BranchState,
        transition: Transition,
        learner_state,
        model_state,
        key,
        *,
        simulated: bool = False,
    ) -> BranchState:
        del learner_state
        if not simulated:
            return state._replace(real_steps=state.real_steps + 1)
        ended = transition.done[:, None]
        obs = jnp.where(ended, fresh_states(model_state, key), transition.next_obs)
        depth = state.depth + 1
        return state._replace(
            obs=obs, depth=jnp.where(depth >= horizon_of(state.real_steps), 0, depth)
        )

    def propose(state: BranchState, learner_state, model_state, key: PRNGKey):
        k_start, k_act = jax.random.split(key)
        obs = jnp.where(state.depth == 0, fresh_states(model_state, k_start), state.obs)
        keys = jax.random.split(k_act, batch_size)
        action = jax.vmap(learner.act, in_axes=(None, 0, 0))(learner_state, obs, keys)
        return obs, action, state._replace(obs=obs)

    def has_proposal(state: BranchState) -> jax.Array:
        return state.real_steps >= planning_starts

    return SearchControl(init, update, propose, has_proposal=has_proposal)
