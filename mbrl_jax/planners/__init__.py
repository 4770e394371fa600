"""When to plan, at decision time: planners with the shared ``Planner(init, plan)`` signature,
searching action sequences through any :data:`~mbrl_jax.types.StepFn`, and
:func:`mpc`, which wraps a planner and a model as an ``Agent``.

Every planner takes its action space positionally (a gymnax ``Box`` for
:func:`random_shooting`, :func:`cem`, :func:`icem`, :func:`mppi`; a ``Discrete`` for
:func:`categorical_cem` and :func:`mcts`) and every setting keyword-only. The tabular
planners (:func:`heuristic_search`, :func:`rollout_planner`, :func:`tabular_mcts`; S&B
sections 8.8-8.11) take the sizes of a Q-table and search through a tabular model.
"""

from mbrl_jax.planners.categorical import CategoricalPlanState, categorical_cem
from mbrl_jax.planners.cross_entropy import ICEMState, cem, colored_noise, icem
from mbrl_jax.planners.mcts import MCTSInfo, mcts
from mbrl_jax.planners.mpc import MPCState, mpc, plan_batch
from mbrl_jax.planners.path_integral import mppi
from mbrl_jax.planners.rollout import env_step_fn, rollout
from mbrl_jax.planners.shooting import (
    Bounds,
    GaussianPlanState,
    PlanInfo,
    action_bounds,
    evaluate_sequences,
    policy_sequences,
    random_shooting,
)
from mbrl_jax.planners.tabular import (
    ROLLOUT_POLICIES,
    TabularModelFn,
    TabularPlanInfo,
    heuristic_search,
    rollout_planner,
    tabular_mcts,
    tabular_step_fn,
)

__all__ = [
    "ROLLOUT_POLICIES",
    "TabularModelFn",
    "TabularPlanInfo",
    "Bounds",
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
    "heuristic_search",
    "icem",
    "mcts",
    "mpc",
    "mppi",
    "plan_batch",
    "policy_sequences",
    "random_shooting",
    "rollout",
    "rollout_planner",
    "tabular_mcts",
    "tabular_step_fn",
]
