"""Ready-made agents, each one ``dyna(...)`` call: the tabular agents of chapter 8
and neural Dyna (a DQN learner, a learned model, branched rollouts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from mbrl_jax.dyna import dyna
from mbrl_jax.hyperparameters import traced
from mbrl_jax.learners import DQN, SAC, q_learning
from mbrl_jax.models import NeuralModel, tabular_sample_model
from mbrl_jax.search import branched_rollouts, prioritized, uniform_over_states, uniform_seen
from mbrl_jax.types import Agent, SearchControl

__all__ = ["NeuralDyna", "dyna_q", "dyna_q_plus", "neural_dyna", "prioritized_sweeping"]


@traced("planning_steps", "alpha", "epsilon", "gamma")
def dyna_q(
    num_states: int,
    num_actions: int,
    *,
    planning_steps: Any,
    alpha: Any = 0.1,
    epsilon: Any = 0.1,
    gamma: Any = 0.95,
) -> Agent:
    """Tabular Dyna-Q (S&B section 8.2): Q-learning, last-seen sample model,
    planning from uniformly drawn previously seen (s, a)."""
    return dyna(
        q_learning(num_states, num_actions, alpha=alpha, epsilon=epsilon, gamma=gamma),
        tabular_sample_model(num_states, num_actions),
        uniform_seen(num_states, num_actions),
        planning_steps=planning_steps,
    )


@traced("planning_steps", "kappa", "alpha", "epsilon", "gamma")
def dyna_q_plus(
    num_states: int,
    num_actions: int,
    *,
    planning_steps: Any,
    kappa: Any = 1e-3,
    alpha: Any = 0.1,
    epsilon: Any = 0.1,
    gamma: Any = 0.95,
) -> Agent:
    """Dyna-Q+ (S&B section 8.3): planning rewards r + kappa * sqrt(tau), and
    planning from any action of a previously seen state."""
    return dyna(
        q_learning(num_states, num_actions, alpha=alpha, epsilon=epsilon, gamma=gamma),
        tabular_sample_model(num_states, num_actions, kappa=kappa),
        uniform_over_states(num_states, num_actions),
        planning_steps=planning_steps,
    )


@traced("planning_steps", "theta", "alpha", "epsilon", "gamma")
def prioritized_sweeping(
    num_states: int,
    num_actions: int,
    *,
    planning_steps: Any,
    theta: Any = 1e-4,
    alpha: Any = 0.1,
    epsilon: Any = 0.1,
    gamma: Any = 0.95,
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
        planning_steps=planning_steps,
        direct_rl=False,
    )


class NeuralDyna(NamedTuple):
    """A neural Dyna agent and the parts it was built from (for evaluation and
    diagnostics: ``learner.q_values`` or ``learner.mean_action``, ``model.predict``)."""

    agent: Agent
    learner: DQN | SAC
    model: NeuralModel
    search_control: SearchControl


def neural_dyna(
    learner: DQN | SAC,
    model: NeuralModel,
    obs_size: int,
    *,
    planning_steps: int,
    batch_size: int = 64,
    horizon: int | Callable[[Any], Any] = 1,
    planning_starts: int = 500,
) -> NeuralDyna:
    """Neural Dyna: a DQN learner (:func:`mbrl_jax.learners.dqn`) or a SAC learner
    (:func:`mbrl_jax.learners.sac`), a learned model (:func:`mbrl_jax.models.neural_model`,
    which stores every real transition and may train online) and MBPO-style branched
    rollouts, the same ``dyna`` call as :func:`dyna_q` with different parts.

    Each of the ``planning_steps`` simulated updates per real step is a learner update on
    ``batch_size`` model transitions from branched rollouts of ``horizon`` steps (a
    count or a schedule of real steps, :func:`mbrl_jax.search.rollout_length_schedule`;
    :func:`mbrl_jax.search.branched_rollouts`), once ``planning_starts`` real steps have
    been seen. ``planning_steps=0`` is the learner alone (plain DQN or SAC).

    With SAC, a probabilistic ensemble and a SAC ``model_capacity`` this is MBPO (Janner
    et al. 2019): ``planning_steps`` is MBPO's G gradient steps per real step, each on a
    minibatch of the model buffer mixed with real replay at SAC's ``real_ratio``, and
    ``planning_steps x batch_size`` model transitions are rolled out per real step
    (MBPO's M rollouts per step). Refitting the model every F real steps is the
    caller's (``model.fit`` between chunks of the run; experiments/mbpo_pendulum.py).
    """
    search = branched_rollouts(
        learner, obs_size, batch_size=batch_size, horizon=horizon, planning_starts=planning_starts
    )
    agent = dyna(learner, model, search, planning_steps=planning_steps)
    return NeuralDyna(agent, learner, model, search)
