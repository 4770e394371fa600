"""Figure 8.5: Dyna-Q vs Dyna-Q+ on the shortcut maze (Example 8.3), 6000 time steps.

A shorter path opens on the right after 3000 steps. Dyna-Q+, whose planning
rewards long-untried actions, finds it (its reward rate rises); Dyna-Q keeps to
the old path. Settings: n = 50, kappa = 1e-3, alpha = 1, epsilon = 0.1, gamma = 0.95.
"""

from functools import partial

from experiments.changing_maze import run_changing_maze, summary
from mbrl_jax.envs import shortcut_maze

NAME = "shortcut-maze"
DESCRIPTION = "Figure 8.5: Dyna-Q vs Dyna-Q+ cumulative reward on the shortcut maze"
run = partial(
    run_changing_maze,
    NAME,
    "Figure 8.5: shortcut maze",
    shortcut_maze(change_step=3000),
    num_steps=6000,
    planning_steps=50,
    kappa=1e-3,
)
__all__ = ["DESCRIPTION", "NAME", "run", "summary"]
