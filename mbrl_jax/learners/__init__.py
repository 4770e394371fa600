"""How to update: learners with the shared ``Learner(init, act, update)`` signature, and
the update rules and targets they are made of (one pure function each)."""

from mbrl_jax.learners.dqn import DQN, DQNState, QNetwork, check_q_training, dqn, td_loss
from mbrl_jax.learners.exploration import epsilon_greedy
from mbrl_jax.learners.sac import (
    SAC,
    SACLosses,
    SACState,
    check_sac_training,
    sac,
    soft_q_target,
    squashed_gaussian_log_prob,
    squashed_gaussian_sample,
    temperature_loss,
)
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
    advantage_learning_target,
    double_q_learning_target,
    expected_q_target,
    q_learning_target,
)

__all__ = [
    "DQN",
    "DQNState",
    "QNetwork",
    "QTable",
    "SAC",
    "SACLosses",
    "SACState",
    "advantage_learning_target",
    "as_distribution",
    "check_q_training",
    "check_sac_training",
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
    "sac",
    "soft_q_target",
    "squashed_gaussian_log_prob",
    "squashed_gaussian_sample",
    "temperature_loss",
    "td_loss",
]
