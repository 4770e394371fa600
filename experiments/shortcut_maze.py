"""Figure 8.5: Dyna-Q vs Dyna-Q+ on the shortcut maze (Example 8.3), 6000 time steps.

A shorter path opens on the right after 3000 steps. Dyna-Q+, whose planning
rewards long-untried actions, finds it (its reward rate rises); Dyna-Q keeps to
the old path. Settings: n = 50, kappa = 1e-3, alpha = 1, epsilon = 0.1, gamma = 0.95.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax

from mbrl_jax.config import setting
from mbrl_jax.envs import shortcut_maze
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

NAME = "shortcut-maze"
DESCRIPTION = "Figure 8.5: Dyna-Q vs Dyna-Q+ cumulative reward on the shortcut maze"


@dataclass(frozen=True)
class Config(ChangingMazeConfig):
    num_steps: int = setting(6000, "time steps per run")
    change_step: int = setting(3000, "time step after which the shortcut opens")
    planning_steps: int = setting(50, "planning steps n per real step, both agents")
    kappa: float = setting(1e-3, "Dyna-Q+'s exploration bonus kappa * sqrt(tau)", traced=True)


def check(config: Config) -> None:
    """Raise ValueError for settings the experiment cannot run (before anything runs)."""
    check_changing_maze(shortcut_maze, config)


def train(config: Config, key: jax.Array) -> dict[str, StepMetrics]:
    """One run of Dyna-Q and Dyna-Q+ from ``key`` (the traced settings may be tracers)."""
    return train_changing_maze(shortcut_maze, config, key)


def run(config: Config = Config(), *, progress: bool = True) -> dict:
    return run_changing_maze(
        NAME, "Figure 8.5: shortcut maze", shortcut_maze, config, progress=progress
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
