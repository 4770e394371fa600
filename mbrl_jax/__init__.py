"""mbrl_jax: model-based reinforcement learning in JAX — Dyna, planning, learned models.

The core: :class:`Transition`, the ``(init, act/sample/propose, update)`` triples
:class:`Agent`, :class:`Learner`, :class:`Model`, :class:`SearchControl`, and the
combinator :func:`dyna`. Training runs are functions: :func:`make_train`.
"""

from mbrl_jax.dyna import DynaState, dyna, init_dyna_state, planning_updates, q_planning
from mbrl_jax.train import (
    EpisodeMetrics,
    StepMetrics,
    TrainCarry,
    TrainConfig,
    make_train,
    make_train_chunks,
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
    "Transition",
    "TransitionDistribution",
    "dyna",
    "init_dyna_state",
    "make_train",
    "make_train_chunks",
    "planning_updates",
    "q_planning",
    "select_action",
]
