"""What to update: search controls with the shared ``SearchControl(init, update, propose)``."""

from mbrl_jax.search.branched import BranchState, branched_rollouts, model_buffer
from mbrl_jax.search.prioritized import (
    PriorityQueue,
    SweepState,
    check_predecessor_overflow,
    prioritized,
    queue_init,
    queue_is_empty,
    queue_pop,
    queue_push,
)
from mbrl_jax.search.trajectory import TrajectoryState, trajectory_sampling, uniform_sweep
from mbrl_jax.search.uniform import SeenPairs, uniform_over_states, uniform_seen

__all__ = [
    "BranchState",
    "PriorityQueue",
    "SeenPairs",
    "SweepState",
    "TrajectoryState",
    "branched_rollouts",
    "check_predecessor_overflow",
    "model_buffer",
    "prioritized",
    "queue_init",
    "queue_is_empty",
    "queue_pop",
    "queue_push",
    "trajectory_sampling",
    "uniform_over_states",
    "uniform_seen",
    "uniform_sweep",
]
