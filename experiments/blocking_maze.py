"""Figure 8.4: Dyna-Q vs Dyna-Q+ on the blocking maze (Example 8.2), 3000 time steps.

The short path on the right is blocked after 1000 steps; a longer path opens on
the left. Both agents must find it; Dyna-Q+'s exploration bonus finds it sooner.
Settings: n = 10 planning steps, kappa = 1e-4, alpha = 1, epsilon = 0.1, gamma = 0.95.
"""

from functools import partial

from experiments.changing_maze import run_changing_maze, summary
from mbrl_jax.envs import blocking_maze

NAME = "blocking-maze"
DESCRIPTION = "Figure 8.4: Dyna-Q vs Dyna-Q+ cumulative reward on the blocking maze"
run = partial(
    run_changing_maze,
    NAME,
    "Figure 8.4: blocking maze",
    blocking_maze(change_step=1000),
    num_steps=3000,
    planning_steps=10,
    kappa=1e-4,
)
__all__ = ["DESCRIPTION", "NAME", "run", "summary"]
