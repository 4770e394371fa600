"""How to learn the model: models with the shared ``Model(init, update, sample)`` signature.

Tabular (:mod:`~mbrl_jax.models.tabular`): the last-seen sample model of Dyna-Q and
Dyna-Q+, a given model (the true environment). Distribution models
(:mod:`~mbrl_jax.models.distribution`): visit counts, the known random MDP. Neural
(:mod:`~mbrl_jax.models.neural`): a deterministic MLP or a probabilistic ensemble,
built from its network and losses, normalization, training loop and propagation, and
the ensemble's disagreement as an exploration bonus (:mod:`~mbrl_jax.models.disagreement`).
"""

from mbrl_jax.models.disagreement import disagreement_step_fn
from mbrl_jax.models.distribution import (
    CountModelState,
    check_outcome_overflow,
    count_distribution_model,
    draw_transition,
    mdp_distribution_model,
)
from mbrl_jax.models.network import (
    MemberNetwork,
    Prediction,
    ensemble_loss,
    gaussian_nll,
    member_loss,
)
from mbrl_jax.models.neural import (
    NeuralModel,
    NeuralModelState,
    check_training,
    neural_model,
)
from mbrl_jax.models.normalization import Normalizer, RunningStats
from mbrl_jax.models.propagation import (
    PROPAGATIONS,
    TaskFn,
    check_propagation,
)
from mbrl_jax.models.tabular import (
    SampleModelState,
    environment_model,
    fixed_model,
    tabular_sample_model,
)
from mbrl_jax.models.training import TrainInfo

__all__ = [
    "PROPAGATIONS",
    "CountModelState",
    "MemberNetwork",
    "NeuralModel",
    "NeuralModelState",
    "Normalizer",
    "Prediction",
    "RunningStats",
    "SampleModelState",
    "TaskFn",
    "TrainInfo",
    "check_outcome_overflow",
    "check_propagation",
    "check_training",
    "count_distribution_model",
    "disagreement_step_fn",
    "draw_transition",
    "ensemble_loss",
    "environment_model",
    "fixed_model",
    "gaussian_nll",
    "mdp_distribution_model",
    "member_loss",
    "neural_model",
    "tabular_sample_model",
]
