"""Figure 8.7: expected versus sample updates (S&B section 8.5).

One state-action pair (s, a) whose b successor states are equally likely, for
branching factors b = 2, 10, 100, 1000, 10000. The successors' values are
correct (drawn per task, v_i ~ N(0, 1)); with gamma = 1 and the reward folded
into them, the true value is their expectation q = sum_i (1/b) v_i. The initial
estimate Q_0 = q + N(0, 1) has RMS error 1.

- The **expected update** Q <- sum_i (1/b) v_i costs b computations of
  max_a' Q(s', a') (one per successor) and leaves error 0; until it completes
  the estimate is unchanged, so its error stays at the initial error.
- A **sample update** costs one computation: draw a successor i uniformly and set
  Q <- Q + (1/t) (v_i - Q) (alpha = 1/t, sample averages). After t updates Q is
  the mean of t draws, so the RMS error is

      sqrt((b - 1) / (b t)),

  (b - 1) / b being the expected variance of the b successor values.

The x axis is the number of computations divided by b, from 0 to 2 (the book's
"1b", "2b"); y is the RMS error over ``config.runs`` tasks. Task i uses
``jax.random.key(seed + i)`` for every b, and its initial error Q_0 - q is drawn
from a key that does not depend on b. Each b is one compiled call: the sample
updates are a ``lax.scan`` over t, vmapped over tasks, recording the error only
at the grid points.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from mbrl_jax.config import ExperimentConfig, setting
from mbrl_jax.results import curve, make_result, timing_line
from mbrl_jax.sweep import run_seeds, seed_keys
from mbrl_jax.timing import Timing
from mbrl_jax.validation import check_count, check_in_range

NAME = "expected-vs-sample"
DESCRIPTION = "Figure 8.7: RMS error of expected vs sample updates, b = 2, 10, 100, 1000, 10000"

BRANCHING = (2, 10, 100, 1000, 10_000)
#: sample updates recorded at t = 1..SMALL_T as well, where the error falls fastest
SMALL_T = 8


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Figure 8.7's settings; the sample updates' step size is 1/t and gamma is 1
    (the figure's definition, not settings)."""

    runs: int = setting(1000, "independent runs (tasks); run i uses seed + i")
    seed: int = setting(0, "the first run's seed")
    branching: tuple[int, ...] = setting(BRANCHING, "branching factors b, one curve each")
    points: int = setting(50, "grid points per b on the x axis: 2 points + 1 from 0 to 2b")
    initial_error: float = setting(
        1.0, "standard deviation of the initial estimate's error Q_0 - q", traced=True
    )


def analytic_rms_error(branching: int, t, initial_error: float = 1.0) -> np.ndarray:
    """The RMS error after ``t`` sample updates with alpha = 1/t (S&B section 8.5):
    sqrt((b - 1) / (b t)) for t >= 1, and ``initial_error`` at t = 0."""
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(divide="ignore"):
        error = np.sqrt((branching - 1) / (branching * np.maximum(t, 1.0)))
    return np.where(t == 0, initial_error, error)


def computation_grid(branching: int, points: int) -> np.ndarray:
    """Numbers of computations t in [0, 2b] at which the sample updates' error is
    recorded: floor(k b / points) for k = 0..2 points, plus t = 1..SMALL_T and
    1, 2, 5 x 10^j (sorted, no repeats)."""
    ks = np.arange(2 * points + 1)
    geometric = [m * 10**j for j in range(6) for m in (1, 2, 5)]
    t = np.concatenate([(ks * branching) // points, np.arange(1, SMALL_T + 1), geometric])
    return np.unique(t[t <= 2 * branching]).astype(np.int64)


def expected_update(probs: jax.Array, successor_values: jax.Array) -> jax.Array:
    """The expected update Q(s, a) <- sum_{s'} p(s' | s, a) max_a' Q(s', a') (gamma = 1,
    rewards folded into the successor values); it costs one computation per successor."""
    return jnp.sum(probs * successor_values)


def sample_update(q: jax.Array, sampled_value: jax.Array, t: jax.Array) -> jax.Array:
    """The t-th sample update with alpha = 1/t: Q <- Q + (1/t) (v_sampled - Q)."""
    return q + (sampled_value - q) / t


def make_task(branching: int, grid: np.ndarray, points: int, initial_error: float = 1.0):
    """``task(key) -> (sample_errors, expected_errors)``: the signed errors Q - q of
    one task, after ``grid`` sample updates (shape (len(grid),)) and after
    floor(k b / points) computations of the expected update, k = 0..2 points
    (shape (2 points + 1,))."""
    branching = check_count("branching", branching, minimum=1)
    points = check_count("points", points, minimum=1)
    grid = np.asarray(grid, np.int64)
    if grid.ndim != 1 or grid[0] != 0 or np.any(np.diff(grid) <= 0):
        raise ValueError(f"grid must start at 0 and increase strictly, got {grid!r}")
    total = int(grid[-1])
    steps = np.arange(1, total + 1)
    # Step t writes its error into the slot of the first grid point >= t; the last
    # write into slot g comes from t = grid[g], so each slot ends with its own error.
    slots = np.searchsorted(grid, steps, side="left").astype(np.int32)
    expected_computations = (np.arange(2 * points + 1) * branching) // points
    probs = jnp.full((branching,), 1.0 / branching, jnp.float32)

    def task(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        k_values, k_initial, k_samples = jax.random.split(key, 3)
        values = jax.random.normal(k_values, (branching,))
        q_true = jnp.sum(probs * values)  # the true value, sum_{s'} p(s') v(s')
        q0 = q_true + initial_error * jax.random.normal(k_initial)
        successors = jax.random.randint(k_samples, (total,), 0, branching)

        def step(carry, xs):
            q, errors = carry
            t, slot, successor = xs
            q = sample_update(q, values[successor], t)
            errors = jax.lax.dynamic_update_slice(errors, (q - q_true)[None], (slot,))
            return (q, errors), None

        errors = jnp.zeros(len(grid), jnp.float32).at[0].set(q0 - q_true)
        xs = (jnp.asarray(steps, jnp.float32), jnp.asarray(slots), successors)
        (_, sample_errors), _ = jax.lax.scan(step, (q0, errors), xs)

        q_expected = expected_update(probs, values)  # complete after b computations
        done = jnp.asarray(expected_computations >= branching)
        expected_errors = jnp.where(done, q_expected, q0) - q_true
        return sample_errors, expected_errors

    return task


def rms_curve(x, errors: np.ndarray) -> dict[str, list[float]]:
    """The RMS over tasks of ``errors`` (shape (tasks, len(x))), with its standard
    error from the delta method: se(sqrt(m)) = se(m) / (2 sqrt(m)) for the mean
    squared error m (0 where the RMS error is 0)."""
    squared = curve(x, np.asarray(errors, np.float64) ** 2)
    mse, mse_err = np.asarray(squared["y"]), np.asarray(squared["y_err"])
    rms = np.sqrt(mse)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.where(rms > 0, mse_err / (2 * rms), 0.0)
    return {"x": squared["x"], "y": [float(v) for v in rms], "y_err": [float(v) for v in err]}


def check(config: Config) -> None:
    """Raise ValueError for settings the figure cannot be drawn with (before anything runs)."""
    check_count("points", config.points, minimum=1)
    for b in config.branching:
        check_count("branching factor b", b, minimum=1)
    if not config.branching or len(set(config.branching)) != len(config.branching):
        raise ValueError(
            f"branching must list distinct branching factors b >= 1, got {config.branching!r}"
        )
    check_in_range("initial_error", config.initial_error, 0.0, np.inf)


def run(config: Config = Config(), *, progress: bool = True) -> dict:
    """Figure 8.7 over ``config.runs`` tasks per branching factor, one compiled call
    per b."""
    check(config)
    points = config.points
    seeds, _ = seed_keys(config.seed, config.runs)
    curves, analytic, timing = {}, {}, Timing()
    expected_errors = []
    for b in tqdm(config.branching, desc=NAME, unit="group", disable=not progress):
        grid = computation_grid(b, points)
        task = make_task(b, grid, points, config.initial_error)
        (sample, expected), group_timing = run_seeds(task, seeds)
        timing += group_timing
        label = f"sample, b={b}"
        curves[label] = rms_curve(grid / b, np.asarray(sample))
        analytic[label] = [float(v) for v in analytic_rms_error(b, grid, config.initial_error)]
        expected_errors.append(np.asarray(expected, np.float64))
    # The expected update's error on the normalised axis, measured for every b: per
    # task the mean squared error over the b groups (the same initial error for all b).
    stacked = np.stack(expected_errors)  # (groups, tasks, 2 points + 1)
    x_expected = np.arange(2 * points + 1) / points
    mean_squared = np.mean(stacked**2, axis=0)
    curves["expected"] = rms_curve(x_expected, np.sqrt(mean_squared))
    spread = float(np.max(np.abs(stacked - stacked[:1]))) if len(stacked) > 1 else 0.0
    return make_result(
        NAME,
        config=config,
        seeds=seeds,
        timing=timing,
        x_label="Number of max_a' Q(s', a') computations, in multiples of b",
        y_label="RMS error in value estimate",
        curves=curves,
        analytic=analytic,
        expected_max_difference_between_b=spread,
        plot_style={"y_lim": [0, 1.1], "title": "Figure 8.7: expected vs sample updates"},
    )


def summary(result: dict) -> str:
    """Measured RMS error (standard error) of the sample updates against the
    analytic sqrt((b - 1) / (b t)) at a few t, and the expected update's error."""
    lines = [f"{'curve':>16} {'t':>6} {'t/b':>7} {'measured (se)':>18} {'analytic':>9}"]
    for label, c in result["curves"].items():
        if label == "expected":
            continue
        b = int(label.split("=")[1])
        for t in sorted({1, 2, 10, b // 2, b, 2 * b}):
            x = t / b
            if x not in c["x"]:
                continue
            i = c["x"].index(x)
            measured = f"{c['y'][i]:.4f} ({c['y_err'][i]:.4f})"
            lines.append(
                f"{label:>16} {t:>6} {x:>7.4g} {measured:>18} {result['analytic'][label][i]:>9.4f}"
            )
    c = result["curves"]["expected"]
    for x in (0.0, 0.98, 1.0, 2.0):
        if x in c["x"]:
            i = c["x"].index(x)
            measured = f"{c['y'][i]:.4f} ({c['y_err'][i]:.4f})"
            analytic = result["config"]["initial_error"] if x < 1 else 0.0
            lines.append(f"{'expected':>16} {'':>6} {x:>7.4g} {measured:>18} {analytic:>9.4f}")
    lines.append(timing_line(result))
    return "\n".join(lines)
