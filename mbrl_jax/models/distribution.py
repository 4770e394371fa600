"""Distribution models (S&B section 8.1): every outcome of (s, a) with its probability.

A distribution model's ``sample`` returns a :class:`~mbrl_jax.types.TransitionDistribution`
(the input of an expected update, section 8.5) or, with ``expected=False``, one
:class:`~mbrl_jax.types.Transition` drawn from it (the input of a sample update):
"expected vs sample" is that one switch, with the same model underneath.

- :func:`mdp_distribution_model`: the known model of a random MDP (section 8.6).
- :func:`count_distribution_model`: a tabular model learned from real experience,
  p(s' | s, a) estimated by visit counts, in fixed (S, A, K) arrays.
- :func:`draw_transition`: one transition drawn from a distribution by its probabilities.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from mbrl_jax.envs import RandomMDPParams, transition_distribution
from mbrl_jax.models.tabular import fixed_model
from mbrl_jax.types import Model, PRNGKey, Transition, TransitionDistribution, check_index
from mbrl_jax.validation import check_count


def draw_transition(distribution: TransitionDistribution, key: PRNGKey) -> Transition:
    """One outcome of ``distribution`` drawn with its probability, as a Transition.

    Inverse-CDF on the cumulative probabilities (normalised by their sum), so
    slots of probability 0 are never drawn; one uniform number per draw.
    """
    prob = distribution.prob
    cdf = jnp.cumsum(prob)
    u = jax.random.uniform(key, dtype=cdf.dtype) * cdf[-1]
    k = jnp.sum(cdf <= u).astype(jnp.int32)
    # Guard float rounding at the top: never past the last slot with positive probability.
    num = prob.shape[-1]
    last_positive = num - 1 - jnp.argmax(prob[::-1] > 0)
    k = jnp.minimum(k, last_positive)
    return Transition(
        distribution.obs,
        distribution.action,
        distribution.reward[k],
        distribution.next_obs[k],
        distribution.done[k],
    )


def mdp_distribution_model(params: RandomMDPParams, *, expected: bool = True) -> Model:
    """The true model of a random MDP (S&B section 8.6): ``sample(state, obs, action,
    key)`` returns :func:`~mbrl_jax.envs.random_mdp.transition_distribution`, all
    b + 1 outcomes (for expected updates). With ``expected=False`` it returns one
    Transition drawn from them (for sample updates). Real transitions leave it
    unchanged; its state is empty.
    """

    def sample(state, obs, action, key: PRNGKey):
        del state
        distribution = transition_distribution(params, obs, action)
        return distribution if expected else draw_transition(distribution, key)

    return fixed_model(sample)


class CountModelState(NamedTuple):
    """Counts of the outcomes of every (s, a): slot k of a pair is its k-th distinct
    outcome (next_obs, done) seen, in order of first visit; empty slots have count 0."""

    next_obs: jax.Array  # (S, A, K) int32
    done: jax.Array  # (S, A, K) bool
    count: jax.Array  # (S, A, K) int32, visits of the outcome
    reward: jax.Array  # (S, A, K) float32, mean reward observed on the outcome
    overflow: jax.Array  # (S, A) int32, real transitions dropped: a (K+1)-th distinct outcome


def check_outcome_overflow(state: CountModelState) -> None:
    """Raise (outside jit) if a count model dropped transitions: some pair had more
    distinct outcomes than its ``max_outcomes`` slots, so its estimate is biased.
    ``state`` may carry leading batch axes (vmapped runs)."""
    dropped = int(jnp.sum(state.overflow))
    if dropped:
        pairs = int(jnp.sum(state.overflow > 0))
        raise ValueError(
            f"count_distribution_model: {dropped} transitions of {pairs} state-action pairs "
            f"had no room among max_outcomes={state.count.shape[-1]} outcomes; use a larger "
            f"max_outcomes"
        )


def _count_init(shape: tuple[int, int, int]) -> CountModelState:
    return CountModelState(
        next_obs=jnp.zeros(shape, jnp.int32),
        done=jnp.zeros(shape, bool),
        count=jnp.zeros(shape, jnp.int32),
        reward=jnp.zeros(shape, jnp.float32),
        overflow=jnp.zeros(shape[:2], jnp.int32),
    )


def _count_update(state: CountModelState, transition: Transition) -> CountModelState:
    """Count the outcome of one real transition: its slot if seen before, else the
    first free slot, else (all K slots taken) one more overflow of its pair."""
    num_states, num_actions, max_outcomes = state.count.shape
    who = "count_distribution_model.update"
    valid, s, a = _checked_pair(who, state, transition.obs, transition.action)
    valid = valid & check_index(who, "next_obs", transition.next_obs, num_states)
    next_obs = jnp.clip(jnp.asarray(transition.next_obs, jnp.int32), 0, num_states - 1)
    done = jnp.asarray(transition.done, bool)
    counts = state.count[s, a]
    used = counts > 0
    match = used & (state.next_obs[s, a] == next_obs) & (state.done[s, a] == done)
    found = jnp.any(match)
    num_used = jnp.sum(used).astype(jnp.int32)  # slots fill in order: first free slot
    stored = found | (num_used < max_outcomes)
    k = jnp.where(found, jnp.argmax(match), jnp.minimum(num_used, max_outcomes - 1))
    new_count = counts[k] + stored.astype(jnp.int32)
    old_reward = state.reward[s, a, k]
    reward = jnp.where(valid, transition.reward, jnp.nan)
    delta = (reward - old_reward) / jnp.maximum(new_count, 1)
    new_reward = jnp.where(stored, old_reward + delta, old_reward)
    return CountModelState(
        next_obs=state.next_obs.at[s, a, k].set(
            jnp.where(stored, next_obs, state.next_obs[s, a, k])
        ),
        done=state.done.at[s, a, k].set(jnp.where(stored, done, state.done[s, a, k])),
        count=state.count.at[s, a, k].set(new_count),
        reward=state.reward.at[s, a, k].set(new_reward),
        overflow=state.overflow.at[s, a].add((~stored).astype(jnp.int32)),
    )


def _count_distribution(state: CountModelState, obs, action) -> TransitionDistribution:
    """p^(s', done | s, a) = n(s, a, s', done) / n(s, a); an unvisited pair: the same
    state, reward 0, not done, with probability 1. Indices out of range (inside jit):
    rewards NaN."""
    valid, s, a = _checked_pair("count_distribution_model.sample", state, obs, action)
    counts = state.count[s, a]
    total = jnp.sum(counts)
    visited = total > 0
    first = jnp.arange(counts.shape[-1]) == 0
    prob = jnp.where(visited, counts / jnp.maximum(total, 1), first.astype(jnp.float32)).astype(
        jnp.float32
    )
    obs = jnp.asarray(obs, jnp.int32)
    reward = jnp.where(visited, state.reward[s, a], 0.0)
    return TransitionDistribution(
        obs,
        action,
        jnp.where(valid, reward, jnp.nan),
        jnp.where(visited, state.next_obs[s, a], s),
        jnp.where(visited, state.done[s, a], False),
        prob,
    )


def _checked_pair(who: str, state: CountModelState, obs, action):
    """``(valid, s, a)``: whether (obs, action) lies in the count table, and the pair
    clipped into it."""
    num_states, num_actions, _ = state.count.shape
    valid = check_index(who, "obs", obs, num_states) & check_index(
        who, "action", action, num_actions
    )
    return valid, jnp.clip(obs, 0, num_states - 1), jnp.clip(action, 0, num_actions - 1)


def count_distribution_model(
    num_states: int, num_actions: int, *, max_outcomes: int = 8, expected: bool = True
) -> Model:
    """A distribution model learned from visit counts (S&B section 8.1):
    p^(s', done | s, a) = n(s, a, s', done) / n(s, a), and the reward of each
    outcome the running mean of the rewards observed on it.

    An outcome is identified by (next_obs, done), so a terminal transition (whose
    next_obs is only a placeholder) is never merged with a non-terminal one to the
    same index. Each pair keeps at most ``max_outcomes`` (K) distinct outcomes in
    fixed (S, A, K) arrays (no dense (S, A, S) array). A real transition to a
    (K+1)-th distinct outcome is not stored: it is counted in
    ``state.overflow[s, a]`` and left out of the estimate, which is then biased.
    **Callers must check** it, with :func:`check_outcome_overflow` outside jit (and
    pick K at least the true branching factor, plus one for termination).

    ``sample(state, obs, action, key)`` returns a TransitionDistribution with
    ``prob = count / sum(count)`` (0 in empty slots). A pair never visited gives
    a single outcome: the same state, reward 0, not done, with probability 1 (the
    book's convention for untried actions, section 8.3 footnote). With
    ``expected=False`` it returns one Transition drawn from that distribution, to
    drive a sample learner such as ``q_learning``.

    ``obs``, ``next_obs`` are integer state indices in [0, num_states), actions in
    [0, num_actions): another dtype is a TypeError, a concrete index out of range a
    ValueError (:func:`~mbrl_jax.types.check_index`); inside jit (where it cannot
    raise, except under :func:`mbrl_jax.train.checked`) it is counted at the indices
    clipped into the table with reward NaN, and ``sample`` of it has NaN rewards.
    """
    num_states = check_count("num_states", num_states, minimum=1)
    num_actions = check_count("num_actions", num_actions, minimum=1)
    max_outcomes = check_count("max_outcomes", max_outcomes, minimum=1)

    def init(key: PRNGKey) -> CountModelState:
        del key
        return _count_init((num_states, num_actions, max_outcomes))

    def update(state: CountModelState, transition: Transition, key: PRNGKey) -> CountModelState:
        del key
        return _count_update(state, transition)

    def sample(state: CountModelState, obs, action, key: PRNGKey):
        dist = _count_distribution(state, obs, action)
        return dist if expected else draw_transition(dist, key)

    return Model(init, update, sample)
