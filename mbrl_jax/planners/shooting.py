"""Shooting planners: search open-loop action sequences by simulating them through a
:data:`~mbrl_jax.types.StepFn` (a learned model or the true dynamics).

Every planner here is a :class:`~mbrl_jax.types.Planner`. One call of ``plan``
draws ``population`` action sequences of length ``horizon``, rolls each out
``particles`` times from the current state (one ``lax.scan`` over the horizon for
all ``population x particles`` rollouts at once, candidate-major) and scores a
sequence by its mean return over particles. The first action of the chosen
sequence is taken (model-predictive control) and the plan, shifted by one step,
warm-starts the next call.

- :func:`random_shooting`: uniform sequences, the best one is taken.
- :func:`cem`: the cross-entropy method as PETS uses it (Chua et al. 2018;
  Botev et al. 2013): a Gaussian over sequences refitted to the elites.
- :func:`mppi`: model-predictive path integral control (Williams et al. 2017):
  Gaussian perturbations averaged with softmax weights of their returns.
- :func:`icem`: improved CEM (Pinneri et al. 2020): colored noise, a shrinking
  population, elites kept across iterations and calls.
- :func:`categorical_cem`: CEM for discrete actions, a categorical distribution
  per time step refitted to the elites' action frequencies.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mbrl_jax.planners.rollout import repeat_state, rollout
from mbrl_jax.types import Planner, PRNGKey, State, StepFn, ValueFn
from mbrl_jax.validation import check_count, check_in_range, check_nonnegative


class PlanInfo(NamedTuple):
    """What a planning call found: the best sequence evaluated and its mean return
    over particles, and the plan it acted on (the first action was taken)."""

    best_return: jax.Array  # ()
    best_sequence: jax.Array  # (H, *action_shape)
    plan: jax.Array  # (H, *action_shape)


class Bounds(NamedTuple):
    low: jax.Array  # action_shape
    high: jax.Array  # action_shape


def action_bounds(action_space: Any, low: Any = None, high: Any = None) -> Bounds:
    """Bounds of a continuous action space (a gymnax ``Box``), optionally narrowed
    by ``low``/``high``, which must have the action space's shape (or be scalars)."""
    shape = tuple(getattr(action_space, "shape", ()) or ())
    if getattr(action_space, "n", None) is not None or not hasattr(action_space, "low"):
        raise ValueError(
            f"a continuous planner needs a Box action space, got {action_space!r}; "
            "use categorical_cem or mcts for discrete actions"
        )

    def fill(value, default, name):
        value = jnp.asarray(default if value is None else value, jnp.float32)
        if value.ndim and value.shape != shape:
            raise ValueError(
                f"action bound {name} has shape {value.shape}, but the action space has "
                f"shape {shape}"
            )
        return jnp.broadcast_to(value, shape)

    bounds = Bounds(fill(low, action_space.low, "low"), fill(high, action_space.high, "high"))
    if not bool(jnp.all(bounds.low < bounds.high)):
        raise ValueError(f"action bounds need low < high, got low={low!r}, high={high!r}")
    return bounds


def evaluate_sequences(
    step_fn: StepFn,
    state: State,
    sequences: jax.Array,
    key: PRNGKey,
    particles: int,
    gamma: Any = 1.0,
    terminal_value: ValueFn | None = None,
) -> jax.Array:
    """Mean return over ``particles`` rollouts of each of K action sequences
    (K, H, *action_shape) from one start state: shape (K,). Non-finite returns (a
    model that diverged) score -inf, so they are never chosen."""
    num = sequences.shape[0]
    actions = jnp.repeat(sequences, particles, axis=0)  # entry c * particles + p
    returns = rollout(
        step_fn,
        repeat_state(state, num * particles),
        actions,
        key,
        gamma=gamma,
        terminal_value=terminal_value,
    )
    mean = jnp.mean(jnp.reshape(returns, (num, particles)), axis=1)
    return jnp.where(jnp.isfinite(mean), mean, -jnp.inf)


def shift(plan: jax.Array, fill: jax.Array) -> jax.Array:
    """The plan one step later: drop the first step, append ``fill`` (warm start)."""
    return jnp.concatenate([plan[1:], fill[None]], axis=0)


def _check_common(horizon: int, population: int, particles: int, gamma: Any) -> None:
    check_count("horizon", horizon, minimum=1)
    check_count("population", population, minimum=1)
    check_count("particles", particles, minimum=1)
    check_in_range("gamma", gamma, 0.0, 1.0)


def _check_elites(population: int, elites: int, iterations: int, alpha: Any) -> tuple[int, int]:
    """Checked (elites, iterations) of a CEM-like planner."""
    iterations = check_count("iterations", iterations, minimum=1)
    elites = check_count("elites", elites, minimum=1)
    if elites > population:
        raise ValueError(f"elites ({elites}) must not exceed population ({population})")
    check_in_range("alpha", alpha, 0.0, 1.0)
    return elites, iterations


class _GaussianSearch(NamedTuple):
    """The fixed parts of a Gaussian search over sequences: bounds, their middle
    (the first plan), the initial standard deviation and the plan's shape."""

    bounds: Bounds
    middle: jax.Array
    std0: jax.Array
    plan_shape: tuple[int, ...]


def _gaussian_search(action_space, horizon: int, init_std, low, high) -> _GaussianSearch:
    bounds = action_bounds(action_space, low, high)
    std0 = (bounds.high - bounds.low) / 4 if init_std is None else jnp.asarray(init_std)
    check_in_range("init_std", jnp.min(std0), 1e-12, jnp.inf)
    middle = (bounds.low + bounds.high) / 2
    return _GaussianSearch(bounds, middle, std0, (horizon, *bounds.low.shape))


def _refit(mean: jax.Array, std: jax.Array, elite: jax.Array, alpha: Any):
    """CEM's smoothed refit to the elites: mu <- alpha mu + (1 - alpha) mean(elites),
    sigma <- alpha sigma + (1 - alpha) std(elites)."""
    mean = alpha * mean + (1 - alpha) * jnp.mean(elite, axis=0)
    std = alpha * std + (1 - alpha) * jnp.std(elite, axis=0)
    return mean, std


def _best(sequences: jax.Array, returns: jax.Array, best: tuple[jax.Array, jax.Array]):
    """The best (return, sequence) among those seen so far and the new ones."""
    i = jnp.argmax(returns)
    better = returns[i] > best[0]
    return jnp.where(better, returns[i], best[0]), jnp.where(better, sequences[i], best[1])


def random_shooting(
    action_space: Any,
    horizon: int,
    population: int,
    *,
    particles: int = 1,
    gamma: Any = 1.0,
    terminal_value: ValueFn | None = None,
    low: Any = None,
    high: Any = None,
) -> Planner:
    """Random shooting (Nagabandi et al. 2018): ``population`` sequences drawn
    uniformly within the action bounds; the first action of the best is taken."""
    _check_common(horizon, population, particles, gamma)
    bounds = action_bounds(action_space, low, high)
    shape = (population, horizon, *bounds.low.shape)

    def init(key: PRNGKey) -> tuple:
        return ()

    def plan(planner_state, step_fn: StepFn, state: State, key: PRNGKey):
        k_sample, k_eval = jax.random.split(key)
        sequences = jax.random.uniform(k_sample, shape, minval=bounds.low, maxval=bounds.high)
        returns = evaluate_sequences(
            step_fn, state, sequences, k_eval, particles, gamma, terminal_value
        )
        i = jnp.argmax(returns)
        return sequences[i, 0], planner_state, PlanInfo(returns[i], sequences[i], sequences[i])

    return Planner(init, plan)


class GaussianPlanState(NamedTuple):
    mean: jax.Array  # (H, *action_shape): the warm-start mean of the next call


def cem(
    action_space: Any,
    horizon: int,
    population: int,
    elites: int,
    iterations: int,
    *,
    alpha: Any = 0.1,
    particles: int = 1,
    init_std: Any = None,
    gamma: Any = 1.0,
    terminal_value: ValueFn | None = None,
    low: Any = None,
    high: Any = None,
) -> Planner:
    """The cross-entropy method over action sequences, as in PETS.

    Each of ``iterations`` rounds draws ``population`` sequences from
    N(mu, sigma^2) truncated to two standard deviations and clipped to the bounds,
    takes the ``elites`` with the highest mean return, and refits with smoothing

        mu <- alpha mu + (1 - alpha) mean(elites),
        sigma <- alpha sigma + (1 - alpha) std(elites).

    sigma starts at ``init_std`` (default a quarter of the bounds' width) at every
    call; mu starts at the previous call's final mean shifted by one step (the
    middle of the bounds at the first call). The first action of the final mu is
    taken.
    """
    _check_common(horizon, population, particles, gamma)
    elites, iterations = _check_elites(population, elites, iterations, alpha)
    bounds, middle, std0, plan_shape = _gaussian_search(action_space, horizon, init_std, low, high)

    def init(key: PRNGKey) -> GaussianPlanState:
        return GaussianPlanState(jnp.broadcast_to(middle, plan_shape))

    def plan(planner_state: GaussianPlanState, step_fn: StepFn, state: State, key: PRNGKey):
        def iteration(carry, k):
            mean, std, best = carry
            k_sample, k_eval = jax.random.split(k)
            noise = jax.random.truncated_normal(k_sample, -2.0, 2.0, (population, *plan_shape))
            sequences = jnp.clip(mean + std * noise, bounds.low, bounds.high)
            returns = evaluate_sequences(
                step_fn, state, sequences, k_eval, particles, gamma, terminal_value
            )
            _, top = jax.lax.top_k(returns, elites)
            mean, std = _refit(mean, std, sequences[top], alpha)
            return (mean, std, _best(sequences, returns, best)), None

        std = jnp.broadcast_to(std0, plan_shape)
        best = (jnp.array(-jnp.inf), planner_state.mean)
        (mean, _, best), _ = jax.lax.scan(
            iteration, (planner_state.mean, std, best), jax.random.split(key, iterations)
        )
        info = PlanInfo(best[0], best[1], mean)
        return mean[0], GaussianPlanState(shift(mean, middle)), info

    return Planner(init, plan)


def mppi_weights(returns: jax.Array, temperature: Any) -> jax.Array:
    """The MPPI weights of K sampled sequences, w_k = softmax_k(R_k / lambda)
    (Williams et al. 2017): the information-theoretic optimal reweighting."""
    return jax.nn.softmax(returns / temperature)


def mppi(
    action_space: Any,
    horizon: int,
    population: int,
    *,
    temperature: Any = 1.0,
    noise_std: Any = None,
    iterations: int = 1,
    particles: int = 1,
    gamma: Any = 1.0,
    terminal_value: ValueFn | None = None,
    low: Any = None,
    high: Any = None,
) -> Planner:
    """Model-predictive path integral control (Williams et al. 2017).

    Each of ``iterations`` rounds perturbs the plan u with Gaussian noise
    (``noise_std``, default a quarter of the bounds' width), clips to the bounds,
    and replaces it by the return-weighted average u <- sum_k w_k u_k with
    w = :func:`mppi_weights` at ``temperature`` lambda. The plan, shifted by one
    step, warm-starts the next call.
    """
    _check_common(horizon, population, particles, gamma)
    iterations = check_count("iterations", iterations, minimum=1)
    check_in_range("temperature", temperature, 1e-12, float("inf"))
    bounds = action_bounds(action_space, low, high)
    middle = (bounds.low + bounds.high) / 2
    std = (bounds.high - bounds.low) / 4 if noise_std is None else jnp.asarray(noise_std)
    check_nonnegative("noise_std", jnp.min(std))
    plan_shape = (horizon, *bounds.low.shape)

    def init(key: PRNGKey) -> GaussianPlanState:
        return GaussianPlanState(jnp.broadcast_to(middle, plan_shape))

    def plan(planner_state: GaussianPlanState, step_fn: StepFn, state: State, key: PRNGKey):
        def iteration(carry, k):
            mean, best = carry
            k_sample, k_eval = jax.random.split(k)
            noise = jax.random.normal(k_sample, (population, *plan_shape))
            sequences = jnp.clip(mean + std * noise, bounds.low, bounds.high)
            returns = evaluate_sequences(
                step_fn, state, sequences, k_eval, particles, gamma, terminal_value
            )
            # Finite returns only: a -inf (diverged) sequence gets weight 0.
            weights = mppi_weights(jnp.where(jnp.isfinite(returns), returns, -1e30), temperature)
            mean = jnp.tensordot(weights, sequences, axes=1)
            return (mean, _best(sequences, returns, best)), None

        best = (jnp.array(-jnp.inf), planner_state.mean)
        (mean, best), _ = jax.lax.scan(
            iteration, (planner_state.mean, best), jax.random.split(key, iterations)
        )
        info = PlanInfo(best[0], best[1], mean)
        return mean[0], GaussianPlanState(shift(mean, middle)), info

    return Planner(init, plan)


class CategoricalPlanState(NamedTuple):
    probs: jax.Array  # (H, num_actions): the warm-start distribution of the next call


def categorical_cem(
    num_actions: int,
    horizon: int,
    population: int,
    elites: int,
    iterations: int,
    *,
    alpha: Any = 0.1,
    particles: int = 1,
    gamma: Any = 1.0,
    terminal_value: ValueFn | None = None,
) -> Planner:
    """CEM for discrete actions (Rubinstein 1999): at each step t of the horizon an
    independent categorical p_t; each round samples ``population`` sequences and
    refits to the elites' action frequencies with smoothing

        p_t <- alpha p_t + (1 - alpha) (1/elites) sum_{elite} onehot(a_t).

    The first action of the best sequence found is taken. The final distribution,
    shifted by one step (uniform appended) and mixed half and half with the uniform
    distribution, warm-starts the next call: it keeps the plan's preferences but
    not its certainty (as continuous CEM keeps its mean but resets its spread).
    """
    num_actions = check_count("num_actions", num_actions, minimum=1)
    _check_common(horizon, population, particles, gamma)
    elites, iterations = _check_elites(population, elites, iterations, alpha)
    uniform = jnp.full((num_actions,), 1.0 / num_actions)

    def init(key: PRNGKey) -> CategoricalPlanState:
        return CategoricalPlanState(jnp.broadcast_to(uniform, (horizon, num_actions)))

    def plan(planner_state: CategoricalPlanState, step_fn: StepFn, state: State, key: PRNGKey):
        def iteration(carry, k):
            probs, best = carry
            k_sample, k_eval = jax.random.split(k)
            sequences = jax.random.categorical(
                k_sample, jnp.log(probs), shape=(population, horizon)
            ).astype(jnp.int32)
            returns = evaluate_sequences(
                step_fn, state, sequences, k_eval, particles, gamma, terminal_value
            )
            _, top = jax.lax.top_k(returns, elites)
            frequency = jnp.mean(jax.nn.one_hot(sequences[top], num_actions), axis=0)
            probs = alpha * probs + (1 - alpha) * frequency
            return (probs, _best(sequences, returns, best)), None

        first_guess = jnp.argmax(planner_state.probs, axis=-1).astype(jnp.int32)
        best = (jnp.array(-jnp.inf), first_guess)
        (probs, best), _ = jax.lax.scan(
            iteration, (planner_state.probs, best), jax.random.split(key, iterations)
        )
        info = PlanInfo(best[0], best[1], jnp.argmax(probs, axis=-1).astype(jnp.int32))
        warm = 0.5 * shift(probs, uniform) + 0.5 * uniform
        return best[1][0], CategoricalPlanState(warm), info

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


class ICEMState(NamedTuple):
    mean: jax.Array  # (H, *action_shape): the warm-start mean of the next call
    elites: jax.Array  # (kept, H, *action_shape): last call's elites, shifted


def icem(
    action_space: Any,
    horizon: int,
    population: int,
    elites: int,
    iterations: int,
    *,
    beta: Any = 2.0,
    decay: float = 1.25,
    keep_fraction: float = 0.3,
    alpha: Any = 0.1,
    particles: int = 1,
    init_std: Any = None,
    gamma: Any = 1.0,
    terminal_value: ValueFn | None = None,
    low: Any = None,
    high: Any = None,
) -> Planner:
    """The improved cross-entropy method, iCEM (Pinneri et al. 2020): CEM with

    - colored noise (:func:`colored_noise`, exponent ``beta``) for smoother samples;
    - a population shrinking by ``decay`` each iteration, N_i = max(N / decay^i, 2 elites);
    - ``keep_fraction`` of the elites carried into the next iteration, and into the
      next call shifted by one step (the last step filled with the mean's);
    - the mean itself evaluated in the last iteration;
    - the first action of the best sequence evaluated taken (not the mean's).

    Iteration sizes differ, so the iterations are unrolled (a static, small loop).
    """
    _check_common(horizon, population, particles, gamma)
    elites, iterations = _check_elites(population, elites, iterations, alpha)
    check_in_range("keep_fraction", keep_fraction, 0.0, 1.0)
    check_in_range("decay", decay, 1.0, float("inf"))
    check_nonnegative("beta", beta)
    bounds, middle, std0, plan_shape = _gaussian_search(action_space, horizon, init_std, low, high)
    kept = int(keep_fraction * elites)
    sizes = [max(int(population / decay**i), 2 * elites) for i in range(iterations)]

    def init(key: PRNGKey) -> ICEMState:
        mean = jnp.broadcast_to(middle, plan_shape)
        return ICEMState(mean, jnp.broadcast_to(mean, (kept, *plan_shape)))

    def plan(planner_state: ICEMState, step_fn: StepFn, state: State, key: PRNGKey):
        mean, std = planner_state.mean, jnp.broadcast_to(std0, plan_shape)
        carried = planner_state.elites
        best = (jnp.array(-jnp.inf), mean)
        for i, size in enumerate(sizes):
            k_sample, k_eval = jax.random.split(jax.random.fold_in(key, i))
            noise = colored_noise(k_sample, beta, (size, *plan_shape))
            samples = [jnp.clip(mean + std * noise, bounds.low, bounds.high), carried]
            if i == iterations - 1:
                samples.append(mean[None])
            sequences = jnp.concatenate(samples, axis=0)
            returns = evaluate_sequences(
                step_fn, state, sequences, k_eval, particles, gamma, terminal_value
            )
            _, top = jax.lax.top_k(returns, elites)
            elite = sequences[top]
            mean, std = _refit(mean, std, elite, alpha)
            carried = elite[:kept]
            best = _best(sequences, returns, best)
        next_state = ICEMState(
            shift(mean, mean[-1]), jax.vmap(lambda e: shift(e, mean[-1]))(carried)
        )
        return best[1][0], next_state, PlanInfo(best[0], best[1], mean)

    return Planner(init, plan)
