"""Shooting planners: search open-loop action sequences by simulating them through a
:data:`~mbrl_jax.types.StepFn` (a learned model or the true dynamics).

This module holds what every shooting planner shares, and the simplest of them,
:func:`random_shooting`. One call of ``plan`` draws ``population`` action sequences
of length ``horizon``, rolls each out ``particles`` times from the current state
(one ``lax.scan`` over the horizon for all ``population x particles`` rollouts at
once, candidate-major, :func:`evaluate_sequences`) and scores a sequence by its mean
return over particles. The first action of the chosen sequence is taken
(model-predictive control) and the plan, shifted by one step, warm-starts the next
call. The others:

- :func:`~mbrl_jax.planners.cem` and :func:`~mbrl_jax.planners.icem`
  (``cross_entropy.py``): a Gaussian over sequences refitted to the elites;
- :func:`~mbrl_jax.planners.mppi` (``path_integral.py``): Gaussian perturbations
  averaged with softmax weights of their returns;
- :func:`~mbrl_jax.planners.categorical_cem` (``categorical.py``): CEM for discrete
  actions.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from mbrl_jax.hyperparameters import traced
from mbrl_jax.planners.rollout import _repeat_state, rollout
from mbrl_jax.types import Planner, PRNGKey, State, StepFn, ValueFn
from mbrl_jax.validation import check_count, check_in_range, continuous_action_shape


class PlanInfo(NamedTuple):
    """What a planning call found: the best sequence evaluated and its mean return
    over particles, and the plan it acted on (the first action was taken)."""

    best_return: jax.Array  # ()
    best_sequence: jax.Array  # (H, *action_shape)
    plan: jax.Array  # (H, *action_shape)


class GaussianPlanState(NamedTuple):
    """The warm start of a Gaussian search (:func:`~mbrl_jax.planners.cem`,
    :func:`~mbrl_jax.planners.mppi`): the plan of the last call shifted by one step."""

    mean: jax.Array  # (H, *action_shape): the warm-start mean of the next call


class Bounds(NamedTuple):
    low: np.ndarray  # action_shape, float32
    high: np.ndarray  # action_shape, float32


def _concrete_or_traced(value: Any) -> Any:
    """``value`` as a float32 NumPy array, or unchanged when it is a traced JAX value
    (a vmapped hyperparameter)."""
    if isinstance(value, jax.core.Tracer):
        return value
    return np.asarray(value, np.float32)


def _smallest(value: Any) -> Any:
    """The smallest entry, concrete when ``value`` is (so that validation checks it)."""
    return jnp.min(value) if isinstance(value, jax.core.Tracer) else np.min(value)


def action_bounds(
    action_space: Any, low: Any = None, high: Any = None, *, who: str = "a continuous planner"
) -> Bounds:
    """Bounds of a continuous action space (a gymnax ``Box``), optionally narrowed
    by ``low``/``high``, which must have the action space's shape (or be scalars) and
    lie within the space's bounds (they only narrow them). The result must be finite:
    a planner samples and averages actions between the bounds. ``who`` names the
    planner in the errors. The bounds are concrete (NumPy) float32 arrays, so a
    planner can be built inside ``jit``/``vmap``."""
    shape = continuous_action_shape(action_space, who)
    space = Bounds(
        np.broadcast_to(np.asarray(action_space.low, np.float32), shape),
        np.broadcast_to(np.asarray(action_space.high, np.float32), shape),
    )
    bounds = Bounds(
        _narrowed(low, space.low, "low", shape, who),
        _narrowed(high, space.high, "high", shape, who),
    )
    outside = (bounds.low < space.low) | (bounds.high > space.high)
    if np.any(outside):
        raise ValueError(
            f"{who}: action bounds low={low!r}, high={high!r} lie outside the action space's "
            f"[{_show(space.low)}, {_show(space.high)}]; low and high may only narrow the "
            "space's bounds"
        )
    if not np.all(np.isfinite(bounds.low) & np.isfinite(bounds.high)):
        raise ValueError(
            f"{who} needs finite action bounds, got [{_show(bounds.low)}, {_show(bounds.high)}]; "
            "pass finite low= and high= to the planner"
        )
    if not np.all(bounds.low < bounds.high):
        raise ValueError(f"action bounds need low < high, got low={low!r}, high={high!r}")
    return bounds


def _narrowed(value: Any, default: np.ndarray, name: str, shape: tuple, who: str) -> np.ndarray:
    """``value`` (None: the space's ``default``) as a float32 array of the action shape."""
    if value is None:
        return default
    if isinstance(value, (str, bool)) or isinstance(value, jax.core.Tracer):
        raise ValueError(f"{who}: action bound {name} must be a number or array, got {value!r}")
    array = np.asarray(value, np.float32)
    if array.ndim and array.shape != shape:
        raise ValueError(
            f"action bound {name} has shape {array.shape}, but the action space has shape {shape}"
        )
    if np.any(np.isnan(array)):
        raise ValueError(f"{who}: action bound {name} must not be NaN, got {value!r}")
    return np.broadcast_to(array, shape)


def _show(array: np.ndarray) -> str:
    """A bound for an error message: one number when all entries are equal."""
    flat = np.ravel(array)
    return repr(float(flat[0])) if flat.size and np.all(flat == flat[0]) else str(array.tolist())


def evaluate_sequences(
    step_fn: StepFn,
    state: State,
    sequences: jax.Array,
    key: PRNGKey,
    *,
    particles: int = 1,
    gamma: Any = 1.0,
    value_fn: ValueFn | None = None,
) -> jax.Array:
    """Mean return over ``particles`` rollouts of each of K action sequences
    (K, H, *action_shape) from one start state: shape (K,). Non-finite returns (a
    model that diverged) score -inf, so they are never chosen."""
    chex.assert_rank(sequences, {2, 3, 4})
    num = sequences.shape[0]
    actions = jnp.repeat(sequences, particles, axis=0)  # entry c * particles + p
    returns = rollout(
        step_fn, _repeat_state(state, num * particles), actions, key, gamma=gamma, value_fn=value_fn
    )
    mean = jnp.mean(jnp.reshape(returns, (num, particles)), axis=1)
    return jnp.where(jnp.isfinite(mean), mean, -jnp.inf)


class _Scoring(NamedTuple):
    """How a shooting planner scores its candidates (see :func:`evaluate_sequences`)."""

    particles: int
    gamma: Any
    value_fn: ValueFn | None


def _score(
    scoring: _Scoring, step_fn: StepFn, state: State, sequences: jax.Array, key: PRNGKey
) -> jax.Array:
    return evaluate_sequences(
        step_fn,
        state,
        sequences,
        key,
        particles=scoring.particles,
        gamma=scoring.gamma,
        value_fn=scoring.value_fn,
    )


def _shift(plan: jax.Array, fill: jax.Array) -> jax.Array:
    """The plan one step later: drop the first step, append ``fill`` (warm start)."""
    return jnp.concatenate([plan[1:], fill[None]], axis=0)


def _check_common(horizon: int, population: int, particles: int, gamma: Any) -> None:
    check_count("horizon", horizon, minimum=1)
    check_count("population", population, minimum=1)
    check_count("particles", particles, minimum=1)
    check_in_range("gamma", gamma, 0.0, 1.0)


def _check_elites(population: int, elites: int, iterations: int, smoothing: Any) -> tuple[int, int]:
    """Checked (elites, iterations) of a CEM-like planner."""
    iterations = check_count("iterations", iterations, minimum=1)
    elites = check_count("elites", elites, minimum=1)
    if elites > population:
        raise ValueError(f"elites ({elites}) must not exceed population ({population})")
    check_in_range("smoothing", smoothing, 0.0, 1.0)
    return elites, iterations


class _Best(NamedTuple):
    """The best sequence evaluated so far and its mean return."""

    value: jax.Array  # ()
    sequence: jax.Array  # (H, *action_shape)


def _best(sequences: jax.Array, returns: jax.Array, best: _Best) -> _Best:
    """The best (return, sequence) among those seen so far and the new ones."""
    i = jnp.argmax(returns)
    better = returns[i] > best.value
    return _Best(
        jnp.where(better, returns[i], best.value), jnp.where(better, sequences[i], best.sequence)
    )


class _RandomShooting(NamedTuple):
    bounds: Bounds
    shape: tuple[int, ...]  # (population, H, *action_shape)
    scoring: _Scoring


def _random_shooting_plan(
    search: _RandomShooting, planner_state, step_fn: StepFn, state: State, key: PRNGKey
):
    k_sample, k_eval = jax.random.split(key)
    low, high = search.bounds
    sequences = jax.random.uniform(k_sample, search.shape, minval=low, maxval=high)
    returns = _score(search.scoring, step_fn, state, sequences, k_eval)
    i = jnp.argmax(returns)
    return sequences[i, 0], planner_state, PlanInfo(returns[i], sequences[i], sequences[i])


@traced("gamma")
def random_shooting(
    action_space: Any,
    *,
    horizon: int = 15,
    population: int = 500,
    particles: int = 1,
    gamma: Any = 1.0,
    value_fn: ValueFn | None = None,
    low: Any = None,
    high: Any = None,
) -> Planner:
    """Random shooting (Nagabandi et al. 2018): ``population`` sequences drawn
    uniformly within the action bounds of a ``Box`` ``action_space`` (narrowed by
    ``low``/``high``); the first action of the best is taken. Each sequence is
    scored by its mean return over ``particles`` rollouts, discounted by ``gamma``
    and bootstrapped by ``value_fn`` after ``horizon`` steps. The planner state is
    ``()``. Defaults: the sizes of :func:`~mbrl_jax.planners.cem`'s (PETS)."""
    _check_common(horizon, population, particles, gamma)
    bounds = action_bounds(action_space, low, high, who="random_shooting")
    search = _RandomShooting(
        bounds, (population, horizon, *bounds.low.shape), _Scoring(particles, gamma, value_fn)
    )

    def init(key: PRNGKey) -> tuple:
        return ()

    def plan(planner_state, step_fn: StepFn, state: State, key: PRNGKey):
        return _random_shooting_plan(search, planner_state, step_fn, state, key)

    return Planner(init, plan)
