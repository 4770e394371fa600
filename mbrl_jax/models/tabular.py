"""Tabular models: the deterministic last-seen sample model and the true environment.

**What the sample model accepts.** ``obs``, ``next_obs`` are integer state indices in
[0, num_states), actions integers in [0, num_actions). Another dtype is a TypeError at
once, a concrete index out of range a ValueError (:func:`~mbrl_jax.types.check_index`).
Inside jit an index out of range cannot raise (it does under
:func:`mbrl_jax.train.checked`); the rule then is: ``update`` stores the transition at
the indices clipped into the table with reward NaN, and ``sample`` returns reward NaN,
so the learner planning from it shows NaN rather than another pair's numbers.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mbrl_jax.hyperparameters import traced
from mbrl_jax.types import Model, PRNGKey, Transition, check_index
from mbrl_jax.validation import check_count, check_nonnegative


class SampleModelState(NamedTuple):
    next_obs: jax.Array  # (S, A) int32, last observed next state
    reward: jax.Array  # (S, A) float32, last observed reward
    done: jax.Array  # (S, A) bool, last observed termination
    last_tried: jax.Array  # (S, A) int32, real time step at which (s, a) was last tried
    time: jax.Array  # () int32, number of real transitions seen


def _sample_model_init(num_states: int, num_actions: int) -> SampleModelState:
    shape = (num_states, num_actions)
    return SampleModelState(
        next_obs=jnp.broadcast_to(jnp.arange(num_states, dtype=jnp.int32)[:, None], shape),
        reward=jnp.zeros(shape, jnp.float32),
        done=jnp.zeros(shape, bool),
        last_tried=jnp.zeros(shape, jnp.int32),
        time=jnp.zeros((), jnp.int32),
    )


def _sample_model_update(
    state: SampleModelState, transition: Transition, with_bonus: bool
) -> SampleModelState:
    """Remember the last outcome of (s, a) (and, for Dyna-Q+, when it was tried)."""
    who = "tabular_sample_model.update"
    valid, s, a = _checked_pair(who, state, transition.obs, transition.action)
    valid = valid & check_index(who, "next_obs", transition.next_obs, state.reward.shape[0])
    next_obs = jnp.clip(transition.next_obs, 0, state.reward.shape[0] - 1)
    time = state.time + 1
    return SampleModelState(
        next_obs=state.next_obs.at[s, a].set(next_obs),
        reward=state.reward.at[s, a].set(jnp.where(valid, transition.reward, jnp.nan)),
        done=state.done.at[s, a].set(transition.done),
        last_tried=state.last_tried.at[s, a].set(time) if with_bonus else state.last_tried,
        time=time,
    )


def _sample_model_sample(state: SampleModelState, obs, action, kappa, with_bonus: bool):
    """The last outcome of (s, a), its reward plus kappa sqrt(tau) for Dyna-Q+."""
    num_states, num_actions = state.reward.shape
    who = "tabular_sample_model.sample"
    valid = check_index(who, "obs", obs, num_states) & check_index(
        who, "action", action, num_actions
    )
    reward = state.reward[obs, action]
    if with_bonus:
        tau = (state.time - state.last_tried[obs, action]).astype(jnp.float32)
        reward = reward + kappa * jnp.sqrt(tau)
    reward = jnp.where(valid, reward, jnp.nan)
    return Transition(obs, action, reward, state.next_obs[obs, action], state.done[obs, action])


def _checked_pair(who: str, state: SampleModelState, obs, action):
    """``(valid, s, a)``: whether (obs, action) lies in the (S, A) table, and the pair
    clipped into it."""
    num_states, num_actions = state.reward.shape
    valid = check_index(who, "obs", obs, num_states) & check_index(
        who, "action", action, num_actions
    )
    return valid, jnp.clip(obs, 0, num_states - 1), jnp.clip(action, 0, num_actions - 1)


@traced("kappa")
def tabular_sample_model(num_states: int, num_actions: int, *, kappa: float = 0.0) -> Model:
    """The deterministic model of Tabular Dyna-Q (S&B section 8.2): for each (s, a)
    the last observed next state and reward.

    With ``kappa > 0`` it is Dyna-Q+'s model (section 8.3): a simulated reward is
    ``r + kappa * sqrt(tau)``, tau the number of real time steps since (s, a) was
    last tried. Pairs never tried lead back to the same state with reward 0 (the
    book's footnote), so Dyna-Q+ may plan with actions not yet taken. ``kappa`` may
    be traced (a traced kappa always keeps the bonus's bookkeeping).
    """
    num_states = check_count("num_states", num_states, minimum=1)
    num_actions = check_count("num_actions", num_actions, minimum=1)
    check_nonnegative("kappa", kappa)
    with_bonus = not (isinstance(kappa, int | float) and kappa == 0)

    def init(key: PRNGKey) -> SampleModelState:
        del key
        return _sample_model_init(num_states, num_actions)

    def update(state: SampleModelState, transition: Transition, key: PRNGKey) -> SampleModelState:
        del key
        return _sample_model_update(state, transition, with_bonus)

    def sample(state: SampleModelState, obs, action, key: PRNGKey) -> Transition:
        del key
        return _sample_model_sample(state, obs, action, kappa, with_bonus)

    return Model(init, update, sample)


def environment_model(transition_fn) -> Model:
    """A perfect model: ``transition_fn(obs, action, key) -> (next_obs, reward, done)``
    is the true environment's dynamics (for a maze, ``Maze.transition`` with its params).

    Used by random-sample one-step tabular Q-planning (S&B section 8.1). Learning
    from real transitions leaves it unchanged.
    """

    def sample(state, obs, action, key: PRNGKey) -> Transition:
        del state
        next_obs, reward, done = transition_fn(obs, action, key)
        return Transition(obs, action, reward, next_obs, done)

    return fixed_model(sample)


def fixed_model(sample) -> Model:
    """A model that is given, not learned: empty state, real transitions change
    nothing, ``sample(state, obs, action, key)`` as given."""

    def init(key: PRNGKey) -> tuple:
        del key
        return ()

    def update(state, transition: Transition, key: PRNGKey):
        del transition, key
        return state

    return Model(init, update, sample)
