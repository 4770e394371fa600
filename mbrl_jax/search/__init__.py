"""What to update: search controls with the shared ``SearchControl(init, update, propose)``."""

from mbrl_jax.search.branched import BranchState, branched_rollouts, rollout_length_schedule
from mbrl_jax.search.prioritized import SweepState, check_predecessor_overflow, prioritized
from mbrl_jax.search.trajectory import TrajectoryState, trajectory_sampling, uniform_sweep
from mbrl_jax.search.uniform import SeenPairs, uniform_over_states, uniform_seen

__all__ = [
    "BranchState",
    "SeenPairs",
    "SweepState",
    "TrajectoryState",
    "branched_rollouts",
    "check_predecessor_overflow",
    "prioritized",
    "rollout_length_schedule",
    "trajectory_sampling",
    "uniform_over_states",
    "uniform_seen",
    "uniform_sweep",
]
