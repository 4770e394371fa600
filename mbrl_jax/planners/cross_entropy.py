"""The cross-entropy method over continuous action sequences.

- :func:`cem`: CEM as PETS uses it (Chua et al. 2018; Botev et al. 2013): a Gaussian
  over sequences refitted to the elites.
- :func:`icem`: improved CEM (Pinneri et al. 2020): colored noise
  (:func:`colored_noise`), a shrinking population, elites kept across iterations and
  calls.

Both search a Gaussian N(mu, sigma^2) over (H, *action_shape) sequences within the
action bounds and warm-start the next call with the final mean shifted by one step.
With a ``policy``, every iteration's population also holds the same policy rollouts of
the call (TD-MPC2's policy prior, :func:`~mbrl_jax.planners.policy_sequences`).
"""

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
    _check_elites,
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
from mbrl_jax.validation import check_in_range, check_nonnegative


class ICEMState(NamedTuple):
    mean: jax.Array  # (H, *action_shape): the warm-start mean of the next call
    elites: jax.Array  # (kept, H, *action_shape): last call's elites, shifted


class _Gaussian(NamedTuple):
    """The fixed parts of a Gaussian search over sequences: bounds, their middle
    (the first plan), the initial standard deviation and the plan's shape."""

    bounds: Bounds
    middle: jax.Array
    std0: jax.Array
    plan_shape: tuple[int, ...]


def _gaussian(action_space, horizon: int, init_std, low, high, who: str) -> _Gaussian:
    bounds = action_bounds(action_space, low, high, who=who)
    std0 = (bounds.high - bounds.low) / 4 if init_std is None else _concrete_or_traced(init_std)
    check_in_range("init_std", _smallest(std0), 1e-12, float("inf"))
    middle = (bounds.low + bounds.high) / 2
    return _Gaussian(bounds, middle, std0, (horizon, *bounds.low.shape))


def _refit(mean: jax.Array, std: jax.Array, elite: jax.Array, smoothing: Any):
    """CEM's smoothed refit to the elites: mu <- s mu + (1 - s) mean(elites),
    sigma <- s sigma + (1 - s) std(elites), s the ``smoothing``."""
    mean = smoothing * mean + (1 - smoothing) * jnp.mean(elite, axis=0)
    std = smoothing * std + (1 - smoothing) * jnp.std(elite, axis=0)
    return mean, std


class _CEM(NamedTuple):
    gaussian: _Gaussian
    population: int
    elites: int
    iterations: int
    smoothing: Any
    scoring: _Scoring
    prior: _Prior


class _CEMCarry(NamedTuple):
    mean: jax.Array  # (H, *action_shape)
    std: jax.Array  # (H, *action_shape)
    best: _Best


def _cem_iteration(
    search: _CEM, step_fn: StepFn, state: State, prior: jax.Array | None, carry: _CEMCarry, key
):
    """One CEM round: sample around the mean (beside the ``prior`` sequences, if any),
    score, refit to the elites."""
    gaussian = search.gaussian
    k_sample, k_eval = jax.random.split(key)
    noise = jax.random.truncated_normal(
        k_sample, -2.0, 2.0, (search.population - search.prior.count, *gaussian.plan_shape)
    )
    sampled = jnp.clip(carry.mean + carry.std * noise, *gaussian.bounds)
    sequences = _with_prior(sampled, prior)
    returns = _score(search.scoring, step_fn, state, sequences, k_eval)
    _, top = jax.lax.top_k(returns, search.elites)
    mean, std = _refit(carry.mean, carry.std, sequences[top], search.smoothing)
    return _CEMCarry(mean, std, _best(sequences, returns, carry.best)), None


def _cem_plan(
    search: _CEM, planner_state: GaussianPlanState, step_fn: StepFn, state: State, key: PRNGKey
):
    gaussian = search.gaussian
    chex.assert_shape(planner_state.mean, gaussian.plan_shape)
    std = jnp.broadcast_to(gaussian.std0, gaussian.plan_shape)
    init = _CEMCarry(planner_state.mean, std, _Best(jnp.array(-jnp.inf), planner_state.mean))
    prior = _prior_sequences(search.prior, step_fn, state, key)
    iteration = functools.partial(_cem_iteration, search, step_fn, state, prior)
    final, _ = jax.lax.scan(iteration, init, jax.random.split(key, search.iterations))
    info = PlanInfo(final.best.value, final.best.sequence, final.mean)
    return final.mean[0], GaussianPlanState(_shift(final.mean, gaussian.middle)), info


@traced("gamma", "smoothing", "init_std")
def cem(
    action_space: Any,
    *,
    horizon: int = 15,
    population: int = 500,
    elites: int = 50,
    iterations: int = 5,
    smoothing: Any = 0.1,
    particles: int = 1,
    init_std: Any = None,
    gamma: Any = 1.0,
    value_fn: ValueFn | None = None,
    policy: PolicyFn | None = None,
    prior_fraction: float = 0.05,
    low: Any = None,
    high: Any = None,
) -> Planner:
    """The cross-entropy method over action sequences of a ``Box`` ``action_space``,
    as in PETS (defaults: PETS's horizon 15, population 500, 50 elites, 5 iterations,
    smoothing 0.1; PETS rolls out 20 ``particles`` through its ensemble, 1 suits a
    deterministic StepFn).

    Each of ``iterations`` rounds draws ``population`` sequences from
    N(mu, sigma^2) truncated to two standard deviations and clipped to the bounds
    (``low``/``high`` narrow the space's), takes the ``elites`` with the highest mean
    return over ``particles`` rollouts (discounted by ``gamma``, bootstrapped by
    ``value_fn`` after ``horizon`` steps), and refits with smoothing s:

        mu <- s mu + (1 - s) mean(elites),
        sigma <- s sigma + (1 - s) std(elites).

    sigma starts at ``init_std`` (default a quarter of the bounds' width) at every
    call; mu starts at the previous call's final mean shifted by one step (the
    middle of the bounds at the first call). The first action of the final mu is
    taken.

    With a ``policy`` (TD-MPC2's policy prior), each call rolls it through the StepFn
    (:func:`~mbrl_jax.planners.policy_sequences`, clipped to the bounds) for
    round(``prior_fraction`` x ``population``) sequences (at least one when the
    fraction is positive; halves round up), and these take the place of as many
    Gaussian samples in every iteration, so an elite can be a policy sequence.
    ``prior_fraction`` (static, in [0, 1]) is unused without a policy; with none the
    planner is the plain CEM, draw for draw.
    """
    _check_common(horizon, population, particles, gamma)
    elites, iterations = _check_elites(population, elites, iterations, smoothing)
    gaussian = _gaussian(action_space, horizon, init_std, low, high, "cem")
    scoring = _Scoring(particles, gamma, value_fn)
    prior = _prior(policy, prior_fraction, population, horizon, gaussian.bounds)
    search = _CEM(gaussian, population, elites, iterations, smoothing, scoring, prior)

    def init(key: PRNGKey) -> GaussianPlanState:
        return GaussianPlanState(jnp.broadcast_to(gaussian.middle, gaussian.plan_shape))

    def plan(planner_state: GaussianPlanState, step_fn: StepFn, state: State, key: PRNGKey):
        return _cem_plan(search, planner_state, step_fn, state, key)

    return Planner(init, plan)


def colored_noise(key: PRNGKey, beta: Any, shape: tuple[int, ...]) -> jax.Array:
    """Gaussian noise correlated along axis 1 (time) with power spectral density
    proportional to 1 / f^beta (Pinneri et al. 2020): beta = 0 is white noise,
    larger beta gives smoother sequences. Unit variance per entry.

    Drawn in the frequency domain: complex Gaussian amplitudes scaled by
    f^(-beta / 2) (the zero frequency takes the lowest nonzero one's scale), then
    an inverse real FFT, normalized so that every entry has variance 1.
    """
    horizon = shape[1]
    freqs = jnp.fft.rfftfreq(horizon)
    freqs = freqs.at[0].set(freqs[1] if horizon > 1 else 1.0)
    scale = freqs ** (-jnp.asarray(beta, jnp.float32) / 2)
    freq_shape = (shape[0], freqs.shape[0], *shape[2:])
    k_re, k_im = jax.random.split(key)
    spectrum = jax.random.normal(k_re, freq_shape) + 1j * jax.random.normal(k_im, freq_shape)
    spectrum = spectrum * jnp.reshape(scale, (1, -1) + (1,) * (len(shape) - 2))
    noise = jnp.fft.irfft(spectrum, n=horizon, axis=1)
    # Every entry of the inverse FFT has the same variance, sum_k w_k scale_k^2 / H^2:
    # the zero and Nyquist terms keep only their real part (w = 1); every other term
    # appears with its conjugate, 2 Re(c e^{i theta}) (w = 4).
    weights = jnp.full(freqs.shape, 4.0).at[0].set(1.0)
    if horizon % 2 == 0:
        weights = weights.at[-1].set(1.0)
    variance = jnp.sum(weights * scale**2) / horizon**2
    return noise / jnp.sqrt(variance)


class _ICEM(NamedTuple):
    gaussian: _Gaussian
    sizes: tuple[int, ...]  # the population of each iteration
    elites: int
    kept: int  # elites carried into the next iteration and call
    beta: Any
    smoothing: Any
    scoring: _Scoring
    prior: _Prior


class _ICEMCarry(NamedTuple):
    mean: jax.Array  # (H, *action_shape)
    std: jax.Array  # (H, *action_shape)
    carried: jax.Array  # (kept, H, *action_shape): elites kept from the last round
    best: _Best


def _icem_iteration(
    search: _ICEM,
    step_fn: StepFn,
    state: State,
    prior: jax.Array | None,
    carry: _ICEMCarry,
    key,
    size: int,
    last: bool,
) -> _ICEMCarry:
    """One iCEM round of ``size`` sequences (the ``prior`` ones, if any, and colored
    samples), the carried elites and, in the ``last`` round, the mean itself."""
    gaussian = search.gaussian
    k_sample, k_eval = jax.random.split(key)
    rows = max(size - search.prior.count, 0)
    noise = colored_noise(k_sample, search.beta, (rows, *gaussian.plan_shape))
    sampled = jnp.clip(carry.mean + carry.std * noise, *gaussian.bounds)
    samples = [_with_prior(sampled, prior), carry.carried]
    if last:
        samples.append(carry.mean[None])
    sequences = jnp.concatenate(samples, axis=0)
    returns = _score(search.scoring, step_fn, state, sequences, k_eval)
    _, top = jax.lax.top_k(returns, search.elites)
    elite = sequences[top]
    mean, std = _refit(carry.mean, carry.std, elite, search.smoothing)
    return _ICEMCarry(mean, std, elite[: search.kept], _best(sequences, returns, carry.best))


def _icem_plan(
    search: _ICEM, planner_state: ICEMState, step_fn: StepFn, state: State, key: PRNGKey
):
    """The iterations unrolled (their sizes differ): a static, small loop."""
    plan_shape = search.gaussian.plan_shape
    chex.assert_shape(planner_state.mean, plan_shape)
    chex.assert_shape(planner_state.elites, (search.kept, *plan_shape))
    std = jnp.broadcast_to(search.gaussian.std0, plan_shape)
    best = _Best(jnp.array(-jnp.inf), planner_state.mean)
    carry = _ICEMCarry(planner_state.mean, std, planner_state.elites, best)
    prior = _prior_sequences(search.prior, step_fn, state, key)
    last = len(search.sizes) - 1
    for i, size in enumerate(search.sizes):
        k = jax.random.fold_in(key, i)
        carry = _icem_iteration(search, step_fn, state, prior, carry, k, size, i == last)
    fill = carry.mean[-1]
    next_state = ICEMState(
        _shift(carry.mean, fill), jax.vmap(lambda e: _shift(e, fill))(carry.carried)
    )
    info = PlanInfo(carry.best.value, carry.best.sequence, carry.mean)
    return carry.best.sequence[0], next_state, info


@traced("gamma", "smoothing", "init_std", "beta")
def icem(
    action_space: Any,
    *,
    horizon: int = 15,
    population: int = 500,
    elites: int = 50,
    iterations: int = 5,
    beta: Any = 2.0,
    decay: float = 1.25,
    keep_fraction: float = 0.3,
    smoothing: Any = 0.1,
    particles: int = 1,
    init_std: Any = None,
    gamma: Any = 1.0,
    value_fn: ValueFn | None = None,
    policy: PolicyFn | None = None,
    prior_fraction: float = 0.05,
    low: Any = None,
    high: Any = None,
) -> Planner:
    """The improved cross-entropy method, iCEM (Pinneri et al. 2020): :func:`cem` with

    - colored noise (:func:`colored_noise`, exponent ``beta``) for smoother samples;
    - a population shrinking by ``decay`` each iteration, N_i = max(N / decay^i, 2 elites);
    - ``keep_fraction`` of the elites carried into the next iteration, and into the
      next call shifted by one step (the last step filled with the mean's);
    - the mean itself evaluated in the last iteration;
    - the first action of the best sequence evaluated taken (not the mean's).

    The other settings and the defaults are :func:`cem`'s, so that swapping one for
    the other compares like with like; ``beta``, ``decay`` and ``keep_fraction``
    default to values the paper uses. A ``policy`` prior is :func:`cem`'s:
    round(``prior_fraction`` x ``population``) policy sequences per call, in every
    iteration in place of as many colored samples (an iteration smaller than them
    samples none and evaluates them all).
    """
    _check_common(horizon, population, particles, gamma)
    elites, iterations = _check_elites(population, elites, iterations, smoothing)
    check_in_range("keep_fraction", keep_fraction, 0.0, 1.0)
    check_in_range("decay", decay, 1.0, float("inf"))
    check_nonnegative("beta", beta)
    gaussian = _gaussian(action_space, horizon, init_std, low, high, "icem")
    kept = int(keep_fraction * elites)
    sizes = tuple(max(int(population / decay**i), 2 * elites) for i in range(iterations))
    scoring = _Scoring(particles, gamma, value_fn)
    prior = _prior(policy, prior_fraction, population, horizon, gaussian.bounds)
    search = _ICEM(gaussian, sizes, elites, kept, beta, smoothing, scoring, prior)

    def init(key: PRNGKey) -> ICEMState:
        mean = jnp.broadcast_to(gaussian.middle, gaussian.plan_shape)
        return ICEMState(mean, jnp.broadcast_to(mean, (kept, *gaussian.plan_shape)))

    def plan(planner_state: ICEMState, step_fn: StepFn, state: State, key: PRNGKey):
        return _icem_plan(search, planner_state, step_fn, state, key)

    return Planner(init, plan)
