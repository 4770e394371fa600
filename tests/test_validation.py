"""Bad input gets a clear error naming the value and what is allowed."""

import pytest

from mbrl_jax import TrainConfig
from mbrl_jax.learners import q_learning
from mbrl_jax.models import tabular_sample_model
from mbrl_jax.search import uniform_over_states


@pytest.mark.parametrize("name", ["alpha", "epsilon", "gamma"])
@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan")])
def test_probabilities_outside_unit_interval(name, value):
    with pytest.raises(ValueError, match=rf"{name} must be in \[0.0, 1.0\], got {value}"):
        q_learning(10, 4, **{name: value})


def test_negative_kappa_and_bad_table_sizes():
    with pytest.raises(ValueError, match="kappa must be in"):
        tabular_sample_model(10, 4, kappa=-1.0)
    with pytest.raises(ValueError, match="num_states must be an integer >= 1, got 0"):
        q_learning(0, 4)
    with pytest.raises(ValueError, match="num_actions must be an integer >= 1"):
        tabular_sample_model(10, 2.0)
    with pytest.raises(ValueError, match="non-empty 1-D list"):
        uniform_over_states(10, 4, states=[])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of num_steps or num_episodes"),
        ({"num_steps": 5, "num_episodes": 5}, "exactly one of"),
        ({"num_steps": 0}, "num_steps must be an integer >= 1, got 0"),
        ({"num_episodes": -3}, "num_episodes must be an integer >= 1, got -3"),
        ({"num_episodes": 3, "max_steps": 0}, "max_steps must be"),
    ],
)
def test_train_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)
