"""The cross-entropy method for discrete actions (Rubinstein 1999): an independent
categorical distribution per time step, refitted to the elites' action frequencies."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from mbrl_jax.hyperparameters import traced
from mbrl_jax.planners.shooting import (
    PlanInfo,
    _Best,
    _best,
    _check_common,
    _check_elites,
    _score,
    _Scoring,
    _shift,
)
from mbrl_jax.types import Planner, PRNGKey, State, StepFn, ValueFn
from mbrl_jax.validation import discrete_actions


class CategoricalPlanState(NamedTuple):
    probs: jax.Array  # (H, num_actions): the warm-start distribution of the next call


class _CategoricalCEM(NamedTuple):
    num_actions: int
    horizon: int
    population: int
    elites: int
    iterations: int
    smoothing: Any
    scoring: _Scoring


class _CategoricalCarry(NamedTuple):
    probs: jax.Array  # (H, num_actions)
    best: _Best


def _categorical_iteration(
    search: _CategoricalCEM, step_fn: StepFn, state: State, carry: _CategoricalCarry, key
):
    """One round: sample sequences from p, refit p to the elites' action frequencies."""
    k_sample, k_eval = jax.random.split(key)
    sequences = jax.random.categorical(
        k_sample, jnp.log(carry.probs), shape=(search.population, search.horizon)
    ).astype(jnp.int32)
    returns = _score(search.scoring, step_fn, state, sequences, k_eval)
    _, top = jax.lax.top_k(returns, search.elites)
    frequency = jnp.mean(jax.nn.one_hot(sequences[top], search.num_actions), axis=0)
    probs = search.smoothing * carry.probs + (1 - search.smoothing) * frequency
    return _CategoricalCarry(probs, _best(sequences, returns, carry.best)), None


def _categorical_plan(
    search: _CategoricalCEM,
    planner_state: CategoricalPlanState,
    step_fn: StepFn,
    state: State,
    key: PRNGKey,
):
    chex.assert_shape(planner_state.probs, (search.horizon, search.num_actions))
    first_guess = jnp.argmax(planner_state.probs, axis=-1).astype(jnp.int32)
    init = _CategoricalCarry(planner_state.probs, _Best(jnp.array(-jnp.inf), first_guess))
    iteration = functools.partial(_categorical_iteration, search, step_fn, state)
    final, _ = jax.lax.scan(iteration, init, jax.random.split(key, search.iterations))
    plan = jnp.argmax(final.probs, axis=-1).astype(jnp.int32)
    info = PlanInfo(final.best.value, final.best.sequence, plan)
    uniform = jnp.full((search.num_actions,), 1.0 / search.num_actions)
    warm = 0.5 * _shift(final.probs, uniform) + 0.5 * uniform
    return final.best.sequence[0], CategoricalPlanState(warm), info


@traced("gamma", "smoothing")
def categorical_cem(
    action_space: Any,
    *,
    horizon: int = 15,
    population: int = 500,
    elites: int = 50,
    iterations: int = 5,
    smoothing: Any = 0.1,
    particles: int = 1,
    gamma: Any = 1.0,
    value_fn: ValueFn | None = None,
) -> Planner:
    """CEM for the actions of a ``Discrete`` ``action_space`` (Rubinstein 1999): at each
    step t of the horizon an independent categorical p_t; each of ``iterations``
    rounds samples ``population`` sequences, scores each by its mean return over
    ``particles`` rollouts (discounted by ``gamma``, bootstrapped by ``value_fn``) and
    refits to the ``elites``' action frequencies with smoothing s:

        p_t <- s p_t + (1 - s) (1/elites) sum_{elite} onehot(a_t).

    The first action of the best sequence found is taken. The final distribution,
    shifted by one step (uniform appended) and mixed half and half with the uniform
    distribution, warm-starts the next call: it keeps the plan's preferences but
    not its certainty (as continuous CEM keeps its mean but resets its spread).
    Defaults: :func:`~mbrl_jax.planners.cem`'s.
    """
    num_actions = discrete_actions(action_space, "categorical_cem")
    _check_common(horizon, population, particles, gamma)
    elites, iterations = _check_elites(population, elites, iterations, smoothing)
    scoring = _Scoring(particles, gamma, value_fn)
    search = _CategoricalCEM(
        num_actions, horizon, population, elites, iterations, smoothing, scoring
    )

    def init(key: PRNGKey) -> CategoricalPlanState:
        return CategoricalPlanState(jnp.full((horizon, num_actions), 1.0 / num_actions))

    def plan(planner_state: CategoricalPlanState, step_fn: StepFn, state: State, key: PRNGKey):
        return _categorical_plan(search, planner_state, step_fn, state, key)

    return Planner(init, plan)
