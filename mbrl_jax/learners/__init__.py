"""How to update: learners with the shared ``Learner(init, act, update)`` signature, and
the update rules and targets they are made of (one pure function each)."""

from mbrl_jax.learners.dqn import DQN, DQNState, QNetwork, check_q_training, dqn, td_loss
from mbrl_jax.learners.exploration import epsilon_greedy
from mbrl_jax.learners.tabular import (
    QTable,
    as_distribution,
    expected_q_learning,
    expected_q_learning_update,
    q_learning,
    q_learning_update,
    q_table_learner,
)
from mbrl_jax.learners.targets import (
    double_q_learning_target,
    expected_q_target,
    q_learning_target,
)

__all__ = [
    "DQN",
    "DQNState",
    "QNetwork",
    "QTable",
    "as_distribution",
    "check_q_training",
    "double_q_learning_target",
    "dqn",
    "epsilon_greedy",
    "expected_q_learning",
    "expected_q_learning_update",
    "expected_q_target",
    "q_learning",
    "q_learning_target",
    "q_learning_update",
    "q_table_learner",
    "td_loss",
]
