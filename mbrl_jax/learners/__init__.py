"""How to update: learners with the shared ``Learner(init, act, update)`` signature."""

from mbrl_jax.learners.expected import as_distribution, expected_q_learning, expected_q_target
from mbrl_jax.learners.tabular import (
    QTable,
    epsilon_greedy,
    q_learning,
    q_learning_target,
    q_table_learner,
)

__all__ = [
    "QTable",
    "as_distribution",
    "epsilon_greedy",
    "expected_q_learning",
    "expected_q_target",
    "q_learning",
    "q_learning_target",
    "q_table_learner",
]
