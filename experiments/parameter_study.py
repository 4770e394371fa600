"""Parameter study of Figure 8.2's Dyna-Q on the Dyna maze: step size alpha x
planning steps n x seeds, in the style of the book's parameter-study plots
(x = alpha on a log scale, one line per n, y = steps per episode averaged over
episodes 2-50 and seeds, with standard-error bands). Runnable as
``mbrl-jax sweep dyna-maze --alpha 0.05,0.1,0.2,0.4 --n 0,5,50 --seeds 30``.

Book settings otherwise (epsilon 0.1, gamma 0.95, 50 episodes); the same seeds
for every setting. n is static (one compile per n), alpha is vmapped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import numpy as np

from mbrl_jax.agents import dyna_q
from mbrl_jax.envs import dyna_maze
from mbrl_jax.results import curve, format_table, make_result
from mbrl_jax.sweep import sweep
from mbrl_jax.train import TrainConfig, make_train
from mbrl_jax.validation import check_count

NAME = "dyna-maze-sweep"
DESCRIPTION = "Parameter study: Dyna-Q on the Dyna maze over alpha x n, mean steps per episode"
METRIC = "mean_steps"  # a run's steps per episode, averaged over episodes 2..num_episodes


def make_dyna_maze_train(
    num_episodes: int = 50, epsilon: float = 0.1, gamma: float = 0.95
) -> Callable[..., jax.Array]:
    """``train(key, *, alpha, planning_steps) -> steps per episode`` (shape
    (num_episodes,), -1 where unfinished) of Dyna-Q on the Dyna maze."""
    env = dyna_maze()
    config = TrainConfig(num_episodes=num_episodes)

    def train(key: jax.Array, *, alpha: jax.Array, planning_steps: int) -> jax.Array:
        agent = dyna_q(
            env.num_states,
            env.num_actions,
            planning_steps=planning_steps,
            alpha=alpha,
            epsilon=epsilon,
            gamma=gamma,
        )
        return make_train(env, agent, config)(key)[1].episode_length

    return train


def check_grid(alphas: Sequence[float], planning_steps: Sequence[int]) -> None:
    """Raise ValueError for an empty list, alpha outside (0, 1], or planning steps not an
    integer >= 0."""
    for name, values in (("alpha", alphas), ("planning_steps", planning_steps)):
        if not values:
            raise ValueError(f"give at least one value of {name}")
    for alpha in alphas:
        if not 0.0 < alpha <= 1.0:  # also rejects NaN
            raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
    for n in planning_steps:
        check_count("planning_steps", n, minimum=0)


def mean_steps(lengths: np.ndarray) -> np.ndarray:
    """Steps per episode averaged over episodes 2.. (the last axis); NaN for a run
    with an episode unfinished (length -1)."""
    lengths = np.asarray(lengths, float)[..., 1:]
    return np.where(np.any(lengths < 0, axis=-1), np.nan, lengths.mean(axis=-1))


def run(
    *,
    runs: int = 30,
    seed: int = 0,
    progress: bool = True,
    alphas: Sequence[float] = (0.05, 0.1, 0.2, 0.4),
    planning_steps: Sequence[int] = (0, 5, 50),
    chunk_size: int | None = None,
    num_episodes: int = 50,
    epsilon: float = 0.1,
    gamma: float = 0.95,
) -> dict:
    """The parameter study's result.json dict; ``runs`` seeds from ``seed`` on. Its
    extra key ``"per_run"`` holds one row per (alpha, planning_steps, seed) with the run's
    ``mean_steps``."""
    check_grid(alphas, planning_steps)
    check_count("runs", runs, minimum=1)
    check_count("seed", seed, minimum=0)
    check_count("num_episodes", num_episodes, minimum=2)
    seeds = list(range(seed, seed + runs))
    result = sweep(
        make_dyna_maze_train(num_episodes, epsilon, gamma),
        {"alpha": list(alphas), "planning_steps": list(planning_steps)},
        seeds,
        static=("planning_steps",),
        chunk_size=chunk_size,
        progress=progress,
    )
    values = mean_steps(result.metrics)  # (settings, seeds)
    rows = [
        {**setting, "seed": s, METRIC: None if np.isnan(v) else float(v)}
        for setting, per_seed in zip(result.settings, values, strict=True)
        for s, v in zip(seeds, per_seed, strict=True)
    ]
    by_alpha_n = values.reshape(len(alphas), len(planning_steps), runs)  # grid order: n fastest
    curves = {f"n={n}": curve(alphas, by_alpha_n[:, j].T) for j, n in enumerate(planning_steps)}
    return make_result(
        NAME,
        params=dict(
            alpha=list(alphas),
            planning_steps=list(planning_steps),
            num_episodes=num_episodes,
            epsilon=epsilon,
            gamma=gamma,
            runs=runs,
            chunk_size=chunk_size,
            devices=jax.device_count(),
        ),
        seeds=seeds,
        timing=result.timing,
        x_label="Step size alpha",
        y_label=f"Steps per episode (mean over episodes 2-{num_episodes})",
        curves=curves,
        plot_style={"log_x": True, "title": "Parameter study: Dyna-Q on the Dyna maze"},
        per_run=rows,
    )


def summary(result: dict) -> str:
    return format_table(result, result["params"]["alpha"], "alpha")
