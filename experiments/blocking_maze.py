"""Figure 8.4: Dyna-Q vs Dyna-Q+ on the blocking maze (Example 8.2), 3000 time steps.

The short path on the right is blocked after 1000 steps; a longer path opens on
the left. Both agents must find it; Dyna-Q+'s exploration bonus finds it sooner.
Settings: n = 10 planning steps, kappa = 1e-4, alpha = 1, epsilon = 0.1, gamma = 0.95.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax

from mbrl_jax.config import setting
from mbrl_jax.envs import blocking_maze
from mbrl_jax.train import StepMetrics

from .changing_maze import (
    SCORE_LABEL,
    ChangingMazeConfig,
    check_changing_maze,
    run_changing_maze,
    score,
    summary,
    train_changing_maze,
)

NAME = "blocking-maze"
DESCRIPTION = "Figure 8.4: Dyna-Q vs Dyna-Q+ cumulative reward on the blocking maze"


@dataclass(frozen=True)
class Config(ChangingMazeConfig):
    num_steps: int = setting(3000, "time steps per run")
    change_step: int = setting(1000, "time step after which the short path is blocked")
    planning_steps: int = setting(10, "planning steps n per real step, both agents")
    kappa: float = setting(1e-4, "Dyna-Q+'s exploration bonus kappa * sqrt(tau)", traced=True)


def check(config: Config) -> None:
    """Raise ValueError for settings the experiment cannot run (before anything runs)."""
    check_changing_maze(blocking_maze, config)


def train(config: Config, key: jax.Array) -> dict[str, StepMetrics]:
    """One run of Dyna-Q and Dyna-Q+ from ``key`` (the traced settings may be tracers)."""
    return train_changing_maze(blocking_maze, config, key)


def run(config: Config = Config(), *, progress: bool = True) -> dict:
    return run_changing_maze(
        NAME, "Figure 8.4: blocking maze", blocking_maze, config, progress=progress
    )


__all__ = [
    "DESCRIPTION",
    "NAME",
    "SCORE_LABEL",
    "Config",
    "check",
    "run",
    "score",
    "summary",
    "train",
]
