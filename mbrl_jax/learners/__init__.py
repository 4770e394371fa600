"""How to update: learners with the shared ``Learner(init, act, update)`` signature."""

from mbrl_jax.learners.tabular import QTable, epsilon_greedy, q_learning, q_learning_target

__all__ = ["QTable", "epsilon_greedy", "q_learning", "q_learning_target"]
