"""Shooting planners: search open-loop action sequences by simulating them through a
:data:`~mbrl_jax.types.StepFn` (a learned model or the true dynamics).

This module holds what every shooting planner shares, and the simplest of them,
:func:`random_shooting`. One call of ``plan`` draws ``population`` action sequences
of length ``horizon``, rolls each out ``particles`` times from the current state
(one ``lax.scan`` over the horizon for all ``population x particles`` rollouts at
once, candidate-major, :func:`evaluate_sequences`) and scores a sequence by its mean
return over particles. The first action of the chosen sequence is taken
(model-predictive control) and the plan, shifted by one step, warm-starts the next
call. With a ``policy`` (a :data:`~mbrl_jax.types.PolicyFn`), ``prior_fraction`` of the
population is the policy's own rollouts through the StepFn (:func:`policy_sequences`,
TD-MPC2's policy prior), and a ``value_fn`` values the states reached after the horizon
(:func:`~mbrl_jax.planners.rollout`). The others:

- :func:`~mbrl_jax.planners.cem` and :func:`~mbrl_jax.planners.icem`
  (``cross_entropy.py``): a Gaussian over sequences refitted to the elites;
- :func:`~mbrl_jax.planners.mppi` (``path_integral.py``): Gaussian perturbations
  averaged with softmax weights of their returns;
- :func:`~mbrl_jax.planners.categorical_cem` (``categorical.py``): CEM for discrete
  actions.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from mbrl_jax.hyperparameters import traced
from mbrl_jax.planners.rollout import _repeat_state, rollout
from mbrl_jax.types import Planner, PolicyFn, PRNGKey, State, StepFn, ValueFn
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


def policy_sequences(
    policy: PolicyFn,
    step_fn: StepFn,
    state: State,
    key: PRNGKey,
    *,
    num: int,
    horizon: int,
    bounds: Bounds | None = None,
) -> jax.Array:
    """``num`` action sequences (num, horizon, *action_shape) of ``policy`` rolled through
    ``step_fn`` from one start ``state`` (TD-MPC2's policy trajectories, Hansen et al.
    2024): a_t = clip(policy(s_t), bounds), s_{t+1} = step_fn(s_t, a_t) for t < horizon,
    the ``num`` rollouts side by side (row i of a TSinf ensemble keeps member i mod E).
    ``bounds`` (an :class:`Bounds`, e.g. :func:`action_bounds` of the space) clips the
    policy's actions; None leaves them as they are. One key for the policy's draws and
    one for the model's at each step; the last state is not stepped (its action ends
    the sequence). Steps after a rollout terminates still follow the policy: a planner
    counts no reward after termination."""
    num = check_count("num", num, minimum=1)
    horizon = check_count("horizon", horizon, minimum=1)
    k_act, k_step = jax.random.split(key)
    act_keys = jax.random.split(k_act, horizon)

    def act(states: State, k: PRNGKey) -> jax.Array:
        actions = policy(states, k)
        chex.assert_axis_dimension(actions, 0, num)
        return actions if bounds is None else jnp.clip(actions, bounds.low, bounds.high)

    def step(states: State, keys) -> tuple[State, jax.Array]:
        actions = act(states, keys[0])
        next_states, _, _ = step_fn(states, actions, keys[1])
        return next_states, actions

    xs = (act_keys[:-1], jax.random.split(k_step, horizon - 1))
    last_state, actions = jax.lax.scan(step, _repeat_state(state, num), xs)
    actions = jnp.concatenate([actions, act(last_state, act_keys[-1])[None]], axis=0)
    return jnp.swapaxes(actions, 0, 1)


# The data folded into a planning call's key for the policy's rollouts, so that the
# search's own draws are those of the same planner without a policy.
_PRIOR_STREAM = 0x5EED


class _Prior(NamedTuple):
    """A planner's policy prior: ``count`` rollouts of ``policy`` (0: none) per call."""

    policy: PolicyFn | None
    count: int
    horizon: int
    bounds: Bounds


def _prior(
    policy: PolicyFn | None, prior_fraction: Any, population: int, horizon: int, bounds: Bounds
) -> _Prior:
    """The checked prior of a planner: round(prior_fraction x population) sequences
    (halves rounded up), at least 1 when the fraction is positive, none without a
    policy."""
    if isinstance(prior_fraction, jax.core.Tracer):
        raise ValueError(
            "prior_fraction is static (it sets how many sequences the policy rolls out): "
            "pass a Python number in [0.0, 1.0], got a traced value"
        )
    check_in_range("prior_fraction", prior_fraction, 0.0, 1.0)
    if policy is not None and not callable(policy):
        raise TypeError(f"policy must be a PolicyFn policy(states, key) -> actions, got {policy!r}")
    count = 0
    if policy is not None and prior_fraction > 0:
        count = max(1, math.floor(prior_fraction * population + 0.5))
    return _Prior(policy, count, horizon, bounds)


def _prior_sequences(
    prior: _Prior, step_fn: StepFn, state: State, key: PRNGKey
) -> jax.Array | None:
    """This call's policy sequences (count, H, *action_shape), None without a prior."""
    if prior.count == 0:
        return None
    k_prior = jax.random.fold_in(key, _PRIOR_STREAM)
    return policy_sequences(
        prior.policy,
        step_fn,
        state,
        k_prior,
        num=prior.count,
        horizon=prior.horizon,
        bounds=prior.bounds,
    )


def _with_prior(sampled: jax.Array, prior_sequences: jax.Array | None) -> jax.Array:
    """The population: the policy's sequences first, then the sampled ones."""
    if prior_sequences is None:
        return sampled
    return jnp.concatenate([prior_sequences, sampled], axis=0)


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
    shape: tuple[int, ...]  # (population - prior sequences, H, *action_shape): the draws
    scoring: _Scoring
    prior: _Prior


def _random_shooting_plan(
    search: _RandomShooting, planner_state, step_fn: StepFn, state: State, key: PRNGKey
):
    k_sample, k_eval = jax.random.split(key)
    low, high = search.bounds
    sampled = jax.random.uniform(k_sample, search.shape, minval=low, maxval=high)
    sequences = _with_prior(sampled, _prior_sequences(search.prior, step_fn, state, key))
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
    policy: PolicyFn | None = None,
    prior_fraction: float = 0.05,
    low: Any = None,
    high: Any = None,
) -> Planner:
    """Random shooting (Nagabandi et al. 2018): ``population`` sequences drawn
    uniformly within the action bounds of a ``Box`` ``action_space`` (narrowed by
    ``low``/``high``); the first action of the best is taken. Each sequence is
    scored by its mean return over ``particles`` rollouts, discounted by ``gamma``
    and bootstrapped by ``value_fn`` after ``horizon`` steps. The planner state is
    ``()``. Defaults: the sizes of :func:`~mbrl_jax.planners.cem`'s (PETS).

    With a ``policy``, round(``prior_fraction`` x ``population``) of the sequences (at
    least one when the fraction is positive; halves round up) are the policy's
    rollouts through the StepFn (:func:`policy_sequences`) instead of uniform draws.
    ``prior_fraction`` (static, in [0, 1]) is unused without a policy."""
    _check_common(horizon, population, particles, gamma)
    bounds = action_bounds(action_space, low, high, who="random_shooting")
    prior = _prior(policy, prior_fraction, population, horizon, bounds)
    shape = (population - prior.count, horizon, *bounds.low.shape)
    search = _RandomShooting(bounds, shape, _Scoring(particles, gamma, value_fn), prior)

    def init(key: PRNGKey) -> tuple:
        return ()

    def plan(planner_state, step_fn: StepFn, state: State, key: PRNGKey):
        return _random_shooting_plan(search, planner_state, step_fn, state, key)

    return Planner(init, plan)
