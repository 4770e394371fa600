"""Figures 8.4 and 8.5: Dyna-Q vs Dyna-Q+ when the maze changes (Examples 8.2, 8.3).

Cumulative reward per time step, averaged over runs. The book gives no
step size or kappa for these figures; in a deterministic maze alpha = 1 is the
natural choice (the sample model is exact), and kappa is chosen small enough
that the exploration bonus does not swamp the +1 goal reward.

The shared part of ``blocking_maze.py`` and ``shortcut_maze.py``: each defines its
``Config`` from :class:`ChangingMazeConfig` with its own defaults and passes its maze
(a function of the change step) to the functions here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import jax
import numpy as np

from mbrl_jax.agents import dyna_q, dyna_q_plus
from mbrl_jax.config import ExperimentConfig, setting
from mbrl_jax.envs import Maze
from mbrl_jax.results import curve, format_table, make_result
from mbrl_jax.sweep import run_seeds, seed_keys
from mbrl_jax.train import StepMetrics, TrainConfig, make_train
from mbrl_jax.types import Agent

SCORE_LABEL = "Reward (per run)"
MazeFn = Callable[[int], Maze]  # change step -> the maze


@dataclass(frozen=True)
class ChangingMazeConfig(ExperimentConfig):
    runs: int = setting(30, "independent runs; run i uses seed + i")
    seed: int = setting(0, "the first run's seed")
    num_steps: int = setting(3000, "time steps per run")
    change_step: int = setting(1000, "time step after which the maze changes")
    planning_steps: int = setting(10, "planning steps n per real step, both agents")
    kappa: float = setting(1e-4, "Dyna-Q+'s exploration bonus kappa * sqrt(tau)", traced=True)
    alpha: float = setting(1.0, "step size of the Q-learning updates", traced=True)
    epsilon: float = setting(0.1, "exploration rate of the epsilon-greedy policy", traced=True)
    gamma: float = setting(0.95, "discount rate", traced=True)
    rate_window: int = setting(500, "steps of the reward-rate windows (before the change, last)")


def agents(env: Maze, config: ChangingMazeConfig) -> dict[str, Agent]:
    """Dyna-Q and Dyna-Q+ on ``env``; the constructors check the settings."""
    common = dict(
        planning_steps=config.planning_steps,
        alpha=config.alpha,
        epsilon=config.epsilon,
        gamma=config.gamma,
    )
    return {
        "Dyna-Q": dyna_q(env.num_states, env.num_actions, **common),
        "Dyna-Q+": dyna_q_plus(env.num_states, env.num_actions, kappa=config.kappa, **common),
    }


def check_changing_maze(maze: MazeFn, config: ChangingMazeConfig) -> None:
    """Raise ValueError for settings the experiment cannot run (before anything runs)."""
    steps, change, window = config.num_steps, config.change_step, config.rate_window
    if steps < 1:
        raise ValueError(f"num_steps must be an integer >= 1, got {steps}")
    if not 1 <= change < steps:
        raise ValueError(f"change_step must be in [1, num_steps - 1 = {steps - 1}], got {change}")
    if not 1 <= window <= min(change - 1, steps - change):
        raise ValueError(
            f"rate_window must be in [1, {min(change - 1, steps - change)}] (below change_step "
            f"= {change}, at most num_steps - change_step = {steps - change}), got {window}"
        )
    agents(maze(change), config)


def train_changing_maze(
    maze: MazeFn, config: ChangingMazeConfig, key: jax.Array
) -> dict[str, StepMetrics]:
    """One run of both agents from ``key`` (the traced settings may be tracers)."""
    env = maze(config.change_step)
    length = TrainConfig(num_steps=config.num_steps)
    return {
        label: make_train(env, agent, length)(key)[1]
        for label, agent in agents(env, config).items()
    }


def score(config: ChangingMazeConfig, metrics: dict[str, StepMetrics]) -> dict[str, np.ndarray]:
    """Per run and agent: the cumulative reward at the end and the reward in the last
    ``rate_window`` steps."""
    scores = {}
    for label, m in metrics.items():
        cumulative = np.asarray(m.cumulative_reward)
        last = config.num_steps - 1
        scores[f"{label} final cumulative reward"] = cumulative[..., last]
        scores[f"{label} reward in the last window"] = (
            cumulative[..., last] - cumulative[..., last - config.rate_window]
        )
    return scores


def run_changing_maze(
    name: str,
    title: str,
    maze: MazeFn,
    config: ChangingMazeConfig,
    *,
    progress: bool = True,
) -> dict:
    check_changing_maze(maze, config)
    seeds, _ = seed_keys(config.seed, config.runs)
    train = partial(train_changing_maze, maze, config)
    metrics, timing = run_seeds(train, seeds, progress=progress)
    steps, change = config.num_steps, config.change_step
    curves, slopes = {}, {}
    for label, m in metrics.items():
        cumulative = np.asarray(m.cumulative_reward)
        curves[label] = curve(np.arange(1, steps + 1), cumulative)
        slopes[label] = reward_rates(cumulative, change, steps, config.rate_window)
    return make_result(
        name,
        config=config,
        seeds=seeds,
        timing=timing,
        x_label="Time steps",
        y_label="Cumulative reward",
        curves=curves,
        change_step=change,
        reward_rates=slopes,
        plot_style={"title": title},
    )


def reward_rates(
    cumulative: np.ndarray, change: int, num_steps: int, window: int = 500
) -> dict[str, float]:
    """Mean reward per 1000 steps in the ``window`` steps before the change and in the
    last ``window`` steps of the run (the slopes of the cumulative-reward curve)."""
    before = cumulative[:, change - 1] - cumulative[:, change - 1 - window]
    end = cumulative[:, num_steps - 1] - cumulative[:, num_steps - 1 - window]
    return {
        "before_change": float(before.mean() * (1000 / window)),
        "last_window": float(end.mean() * (1000 / window)),
        "runs_recovered": int((end > 0).sum()),
    }


def summary(result: dict) -> str:
    steps = result["config"]["num_steps"]
    marks = sorted({500, 1000, 1500, 2000, 3000, 4000, 5000, steps})
    text = format_table(result, [m for m in marks if m <= steps], "time step")
    window = result["config"]["rate_window"]
    rates = "\n".join(
        f"{label}: reward per 1000 steps in the {window} steps before the change "
        f"{r['before_change']:.1f}, in the last {window} steps {r['last_window']:.1f} "
        f"({r['runs_recovered']}/{result['config']['runs']} runs rewarded there)"
        for label, r in result["reward_rates"].items()
    )
    return text + "\n" + rates
