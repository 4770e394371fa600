"""How to learn the model: models with the shared ``Model(init, update, sample)`` signature."""

from mbrl_jax.models.tabular import SampleModelState, environment_model, tabular_sample_model

__all__ = ["SampleModelState", "environment_model", "tabular_sample_model"]
