"""Ready-made tabular agents of chapter 8, each one ``dyna(...)`` call."""

from __future__ import annotations

from mbrl_jax.dyna import dyna
from mbrl_jax.learners import q_learning
from mbrl_jax.models import tabular_sample_model
from mbrl_jax.search import prioritized, uniform_over_states, uniform_seen
from mbrl_jax.types import Agent


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
