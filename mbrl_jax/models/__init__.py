"""How to learn the model: models with the shared ``Model(init, update, sample)`` signature."""

from mbrl_jax.models.distribution import (
    CountModelState,
    check_outcome_overflow,
    count_distribution_model,
    draw,
    mdp_distribution_model,
)
from mbrl_jax.models.neural import (
    PROPAGATIONS,
    ModelConfig,
    NeuralModel,
    NeuralModelState,
    TrainInfo,
    check_training,
    gaussian_nll,
    neural_model,
)
from mbrl_jax.models.tabular import (
    SampleModelState,
    environment_model,
    fixed_model,
    tabular_sample_model,
)

__all__ = [
    "PROPAGATIONS",
    "CountModelState",
    "ModelConfig",
    "NeuralModel",
    "NeuralModelState",
    "SampleModelState",
    "TrainInfo",
    "check_outcome_overflow",
    "check_training",
    "count_distribution_model",
    "draw",
    "environment_model",
    "fixed_model",
    "gaussian_nll",
    "mdp_distribution_model",
    "neural_model",
    "tabular_sample_model",
]
