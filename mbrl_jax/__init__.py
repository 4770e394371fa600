"""mbrl_jax: model-based reinforcement learning in JAX — Dyna, planning, learned models.

The core: :class:`Transition`, the ``(init, act/sample/propose, update)`` triples
:class:`Agent`, :class:`Learner`, :class:`Model`, :class:`SearchControl`, and the
combinator :func:`dyna`. Training runs are functions: :func:`make_train`; a run
measured in episodes is also a :class:`TrainLoop`, which :func:`run_in_lanes` runs
for many keys in fewer lanes.
"""

import mbrl_jax._gymnax_import  # noqa: F401  (first: gymnax without its plotting imports)
from mbrl_jax.dyna import DynaState, dyna, init_dyna_state, planning_updates, q_planning
from mbrl_jax.train import (
    EpisodeMetrics,
    StepMetrics,
    TrainCarry,
    TrainConfig,
    TrainLoop,
    make_train,
    make_train_chunks,
    make_train_loop,
    run_in_lanes,
)
from mbrl_jax.types import (
    Agent,
    Learner,
    Model,
    Planner,
    SearchControl,
    StepFn,
    Transition,
    TransitionDistribution,
    select_action,
)

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "DynaState",
    "EpisodeMetrics",
    "Learner",
    "Model",
    "Planner",
    "SearchControl",
    "StepFn",
    "StepMetrics",
    "TrainCarry",
    "TrainConfig",
    "TrainLoop",
    "Transition",
    "TransitionDistribution",
    "dyna",
    "init_dyna_state",
    "make_train",
    "make_train_chunks",
    "make_train_loop",
    "planning_updates",
    "q_planning",
    "run_in_lanes",
    "select_action",
]
