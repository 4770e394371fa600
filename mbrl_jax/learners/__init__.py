"""How to update: learners with the shared ``Learner(init, act, update)`` signature."""

from mbrl_jax.learners.dqn import DQN, DQNState, check_q_training, dqn, td_loss, td_target
from mbrl_jax.learners.expected import as_distribution, expected_q_learning, expected_q_target
from mbrl_jax.learners.tabular import (
    QTable,
    epsilon_greedy,
    q_learning,
    q_learning_target,
    q_table_learner,
)

__all__ = [
    "DQN",
    "DQNState",
    "QTable",
    "as_distribution",
    "check_q_training",
    "dqn",
    "epsilon_greedy",
    "expected_q_learning",
    "expected_q_target",
    "q_learning",
    "q_learning_target",
    "q_table_learner",
    "td_loss",
    "td_target",
]
