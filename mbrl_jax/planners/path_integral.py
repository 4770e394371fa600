"""Model-predictive path integral control, MPPI (Williams et al. 2017): Gaussian
perturbations of the plan averaged with softmax weights of their returns."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from mbrl_jax.hyperparameters import traced
from mbrl_jax.planners.shooting import (
    Bounds,
    GaussianPlanState,
    PlanInfo,
    _Best,
    _best,
    _check_common,
    _concrete_or_traced,
    _Prior,
    _prior,
    _prior_sequences,
    _score,
    _Scoring,
    _shift,
    _smallest,
    _with_prior,
    action_bounds,
)
from mbrl_jax.types import Planner, PolicyFn, PRNGKey, State, StepFn, ValueFn
from mbrl_jax.validation import check_count, check_in_range, check_nonnegative


def _mppi_weights(returns: jax.Array, temperature: Any) -> jax.Array:
    """The MPPI weights of K sampled sequences, w_k = softmax_k(R_k / lambda)
    (Williams et al. 2017): the information-theoretic optimal reweighting."""
    return jax.nn.softmax(returns / temperature)


class _MPPI(NamedTuple):
    bounds: Bounds
    middle: jax.Array  # action_shape: the first plan, and the warm start's last step
    std: jax.Array  # the perturbations' standard deviation
    plan_shape: tuple[int, ...]
    population: int
    iterations: int
    temperature: Any
    scoring: _Scoring
    prior: _Prior


class _MPPICarry(NamedTuple):
    mean: jax.Array  # (H, *action_shape)
    best: _Best


def _mppi_iteration(
    search: _MPPI, step_fn: StepFn, state: State, prior: jax.Array | None, carry: _MPPICarry, key
):
    """One MPPI round: u <- sum_k w_k u_k over u_k = clip(u + noise_k) and the
    ``prior`` sequences, if any."""
    k_sample, k_eval = jax.random.split(key)
    rows = search.population - search.prior.count
    noise = jax.random.normal(k_sample, (rows, *search.plan_shape))
    sampled = jnp.clip(carry.mean + search.std * noise, *search.bounds)
    sequences = _with_prior(sampled, prior)
    returns = _score(search.scoring, step_fn, state, sequences, k_eval)
    # Finite returns only: a -inf (diverged) sequence gets weight 0.
    finite = jnp.where(jnp.isfinite(returns), returns, -1e30)
    weights = _mppi_weights(finite, search.temperature)
    mean = jnp.tensordot(weights, sequences, axes=1)
    return _MPPICarry(mean, _best(sequences, returns, carry.best)), None


def _mppi_plan(
    search: _MPPI, planner_state: GaussianPlanState, step_fn: StepFn, state: State, key: PRNGKey
):
    chex.assert_shape(planner_state.mean, search.plan_shape)
    init = _MPPICarry(planner_state.mean, _Best(jnp.array(-jnp.inf), planner_state.mean))
    prior = _prior_sequences(search.prior, step_fn, state, key)
    iteration = functools.partial(_mppi_iteration, search, step_fn, state, prior)
    final, _ = jax.lax.scan(iteration, init, jax.random.split(key, search.iterations))
    info = PlanInfo(final.best.value, final.best.sequence, final.mean)
    return final.mean[0], GaussianPlanState(_shift(final.mean, search.middle)), info


@traced("gamma", "temperature", "noise_std")
def mppi(
    action_space: Any,
    *,
    horizon: int = 15,
    population: int = 500,
    iterations: int = 1,
    temperature: Any = 1.0,
    noise_std: Any = None,
    particles: int = 1,
    gamma: Any = 1.0,
    value_fn: ValueFn | None = None,
    policy: PolicyFn | None = None,
    prior_fraction: float = 0.05,
    low: Any = None,
    high: Any = None,
) -> Planner:
    """Model-predictive path integral control (Williams et al. 2017) over sequences of
    a ``Box`` ``action_space`` (defaults: :func:`~mbrl_jax.planners.cem`'s horizon and
    population, one iteration as in the paper).

    Each of ``iterations`` rounds perturbs the plan u with ``population`` Gaussian
    noises (``noise_std``, default a quarter of the bounds' width), clips to the
    bounds (``low``/``high`` narrow the space's), scores each by its mean return over
    ``particles`` rollouts (discounted by ``gamma``, bootstrapped by ``value_fn``),
    and replaces the plan by the return-weighted average

        u <- sum_k w_k u_k,    w_k = softmax_k(R_k / lambda),

    at ``temperature`` lambda. The plan, shifted by one step, warm-starts the next
    call.

    With a ``policy`` (TD-MPC2's policy prior), round(``prior_fraction`` x
    ``population``) of the u_k (at least one when the fraction is positive; halves
    round up) are the policy's rollouts of this call
    (:func:`~mbrl_jax.planners.policy_sequences`) in every iteration, not perturbations.
    ``prior_fraction`` (static, in [0, 1]) is unused without a policy.
    """
    _check_common(horizon, population, particles, gamma)
    iterations = check_count("iterations", iterations, minimum=1)
    check_in_range("temperature", temperature, 1e-12, float("inf"))
    bounds = action_bounds(action_space, low, high, who="mppi")
    middle = (bounds.low + bounds.high) / 2
    std = (bounds.high - bounds.low) / 4 if noise_std is None else _concrete_or_traced(noise_std)
    check_nonnegative("noise_std", _smallest(std))
    plan_shape = (horizon, *bounds.low.shape)
    scoring = _Scoring(particles, gamma, value_fn)
    prior = _prior(policy, prior_fraction, population, horizon, bounds)
    search = _MPPI(
        bounds, middle, std, plan_shape, population, iterations, temperature, scoring, prior
    )

    def init(key: PRNGKey) -> GaussianPlanState:
        return GaussianPlanState(jnp.broadcast_to(middle, plan_shape))

    def plan(planner_state: GaussianPlanState, step_fn: StepFn, state: State, key: PRNGKey):
        return _mppi_plan(search, planner_state, step_fn, state, key)

    return Planner(init, plan)
