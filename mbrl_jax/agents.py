"""Ready-made agents, each one ``dyna(...)`` call: the tabular agents of chapter 8
and neural Dyna (a DQN learner, a learned model, branched rollouts)."""

from __future__ import annotations

from typing import Any, NamedTuple

from mbrl_jax.dyna import dyna
from mbrl_jax.learners import dqn, q_learning
from mbrl_jax.learners.dqn import DQN
from mbrl_jax.models import ModelConfig, NeuralModel, neural_model, tabular_sample_model
from mbrl_jax.models.neural import TaskFn
from mbrl_jax.search import branched_rollouts, prioritized, uniform_over_states, uniform_seen
from mbrl_jax.types import Agent, SearchControl


def dyna_q(
    num_states: int, num_actions: int, planning_steps: int, *, alpha=0.1, epsilon=0.1, gamma=0.95
) -> Agent:
    """Tabular Dyna-Q (S&B section 8.2): Q-learning, last-seen sample model,
    planning from uniformly drawn previously seen (s, a)."""
    return dyna(
        q_learning(num_states, num_actions, alpha=alpha, epsilon=epsilon, gamma=gamma),
        tabular_sample_model(num_states, num_actions),
        uniform_seen(num_states, num_actions),
        planning_steps,
    )


def dyna_q_plus(
    num_states: int,
    num_actions: int,
    planning_steps: int,
    *,
    kappa=1e-3,
    alpha=0.1,
    epsilon=0.1,
    gamma=0.95,
) -> Agent:
    """Dyna-Q+ (S&B section 8.3): planning rewards r + kappa * sqrt(tau), and
    planning from any action of a previously seen state."""
    return dyna(
        q_learning(num_states, num_actions, alpha=alpha, epsilon=epsilon, gamma=gamma),
        tabular_sample_model(num_states, num_actions, kappa=kappa),
        uniform_over_states(num_states, num_actions),
        planning_steps,
    )


def prioritized_sweeping(
    num_states: int,
    num_actions: int,
    planning_steps: int,
    *,
    theta=1e-4,
    alpha=0.1,
    epsilon=0.1,
    gamma=0.95,
    max_predecessors: int = 8,
) -> Agent:
    """Prioritized sweeping for a deterministic environment (S&B section 8.4):
    Q-learning updates at most ``planning_steps`` times per real step, on the pairs
    of highest priority |TD error| > theta, working backwards through predecessors.
    As in the book's box, the real transition updates the model and the queue,
    not Q directly (``direct_rl=False``)."""
    model = tabular_sample_model(num_states, num_actions)
    return dyna(
        q_learning(num_states, num_actions, alpha=alpha, epsilon=epsilon, gamma=gamma),
        model,
        prioritized(
            num_states,
            num_actions,
            model,
            theta=theta,
            gamma=gamma,
            max_predecessors=max_predecessors,
        ),
        planning_steps,
        direct_rl=False,
    )


#: neural Dyna's default model: a deterministic MLP taking one minibatch step per real step
MLP_MODEL = ModelConfig(
    ensemble_size=1, hidden=(200, 200), probabilistic=False, capacity=50_000,
    train_steps_per_update=1,
)  # fmt: skip


class NeuralDyna(NamedTuple):
    """A neural Dyna agent and the parts it was built from (for evaluation and
    diagnostics: ``learner.q_values``, ``model.predict``)."""

    agent: Agent
    learner: DQN
    model: NeuralModel
    search_control: SearchControl


def neural_dyna(
    obs_size: int,
    action_space: Any,
    planning_steps: int,
    *,
    horizon: int = 1,
    planning_batch: int = 64,
    model_config: ModelConfig = MLP_MODEL,
    termination_fn: TaskFn | None = None,
    reward_fn: TaskFn | None = None,
    planning_starts: int = 500,
    **dqn_kwargs: Any,
) -> NeuralDyna:
    """Neural Dyna: Dyna-DQN with MBPO-style branched rollouts, the same ``dyna``
    call as :func:`dyna_q` with different parts.

    The learner is :func:`mbrl_jax.learners.dqn` (``dqn_kwargs``); the model a
    :func:`mbrl_jax.models.neural_model` that stores every real transition (by
    default a deterministic MLP taking one minibatch step per real step;
    ``model_config`` picks an ensemble or another schedule). Each of the
    ``planning_steps`` simulated updates per real step is a DQN update on
    ``planning_batch`` model transitions from branched rollouts of ``horizon`` steps
    (:func:`mbrl_jax.search.branched_rollouts`), once ``planning_starts`` real steps
    have been seen. ``planning_steps=0`` is plain DQN.
    """
    num_actions = getattr(action_space, "n", None)
    if num_actions is None:
        raise ValueError(f"DQN needs a Discrete action space, got {action_space!r}")
    learner = dqn(obs_size, int(num_actions), **dqn_kwargs)
    model = neural_model(
        obs_size, action_space, model_config, reward_fn=reward_fn, termination_fn=termination_fn
    )
    search = branched_rollouts(
        learner, obs_size, planning_batch, horizon, start_after=planning_starts
    )
    return NeuralDyna(dyna(learner, model, search, planning_steps), learner, model, search)
