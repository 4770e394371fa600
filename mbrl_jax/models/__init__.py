"""How to learn the model: models with the shared ``Model(init, update, sample)`` signature."""

from mbrl_jax.models.distribution import (
    CountModelState,
    check_outcome_overflow,
    count_distribution_model,
    draw,
    mdp_distribution_model,
)
from mbrl_jax.models.tabular import (
    SampleModelState,
    environment_model,
    fixed_model,
    tabular_sample_model,
)

__all__ = [
    "CountModelState",
    "SampleModelState",
    "check_outcome_overflow",
    "count_distribution_model",
    "draw",
    "environment_model",
    "fixed_model",
    "mdp_distribution_model",
    "tabular_sample_model",
]
