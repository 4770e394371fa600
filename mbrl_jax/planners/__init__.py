"""When to plan, at decision time: planners with the shared ``Planner(init, plan)`` signature,
searching action sequences through any :data:`~mbrl_jax.types.StepFn`, and
:func:`mpc`, which wraps a planner and a model as an ``Agent``."""

from mbrl_jax.planners.mcts import MCTSInfo, mcts
from mbrl_jax.planners.mpc import MPCState, mpc, plan_batch
from mbrl_jax.planners.rollout import env_step_fn, repeat_state, rollout
from mbrl_jax.planners.shooting import (
    CategoricalPlanState,
    GaussianPlanState,
    ICEMState,
    PlanInfo,
    action_bounds,
    categorical_cem,
    cem,
    colored_noise,
    evaluate_sequences,
    icem,
    mppi,
    mppi_weights,
    random_shooting,
)

__all__ = [
    "CategoricalPlanState",
    "GaussianPlanState",
    "ICEMState",
    "MCTSInfo",
    "MPCState",
    "PlanInfo",
    "action_bounds",
    "categorical_cem",
    "cem",
    "colored_noise",
    "env_step_fn",
    "evaluate_sequences",
    "icem",
    "mcts",
    "mpc",
    "mppi",
    "mppi_weights",
    "plan_batch",
    "random_shooting",
    "repeat_state",
    "rollout",
]
