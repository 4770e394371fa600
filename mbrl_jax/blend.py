"""The blend of background and decision-time planning (S&B section 8.8).

"You can store the information computed for planning at decision time for a specific
state so as to make even better decisions if the agent ever returns to that state; in
this way both methods are used together." :func:`decision_time` wraps a tabular Dyna
agent (:func:`mbrl_jax.dyna.dyna`) so that it acts by searching from its current state
through its own learned model, the leaves valued with the Q that background planning
learned, and writes what the search backed up for that state into Q(s, .). Background
planning (the agent's ``planning_steps``), decision-time search (the planner) and the
store each turn off on their own, so every combination runs on one code path.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from mbrl_jax.dyna import DynaState
from mbrl_jax.hyperparameters import traced
from mbrl_jax.learners import QTable, epsilon_greedy
from mbrl_jax.types import Agent, Model, Planner, PRNGKey
from mbrl_jax.validation import check_in_range

__all__ = ["decision_time", "store_root_values"]


def store_root_values(
    q: jax.Array, obs: Any, action_values: jax.Array, step_size: Any
) -> jax.Array:
    """Write a search's backed-up root values into the table:

        Q(s, a) <- Q(s, a) + beta [Q_search(s, a) - Q(s, a)]   for every action a

    With beta = 1 the table holds what the search found; with beta = 0 nothing is
    stored. Actions the search did not evaluate carry Q(s, a) itself, so they stay."""
    return q.at[obs].add(step_size * (action_values - q[obs]))


def _check_state(state: Any) -> None:
    """A clear error unless ``state`` is a tabular Dyna agent's state whose model tables
    have the Q-table's (num_states, num_actions)."""
    if not isinstance(state, DynaState) or not isinstance(state.learner, QTable):
        raise TypeError(
            "decision_time wraps a tabular Dyna agent (dyna(...) over a Q-table learner), "
            f"got an agent state of type {type(state).__name__}"
        )
    shape = jnp.shape(state.learner.q)
    for leaf in jax.tree.leaves(state.model):
        if jnp.ndim(leaf) >= 2 and jnp.shape(leaf)[:2] != shape:
            raise ValueError(
                f"decision_time: the model's tables have shape {jnp.shape(leaf)[:2]} over "
                f"(states, actions) but the learner's Q-table has {shape}; build the model "
                f"and the learner for the same environment"
            )


@traced("epsilon", "store_step_size")
def decision_time(
    agent: Agent,
    model: Model,
    planner: Planner | None,
    *,
    epsilon: Any = 0.1,
    store_step_size: Any = 1.0,
    bootstrap: bool = True,
) -> Agent:
    """A Dyna agent that also plans at decision time, and stores what it found.

    ``agent`` is a tabular Dyna agent (its state a :class:`~mbrl_jax.dyna.DynaState`
    over a :class:`~mbrl_jax.learners.QTable`) and ``model`` the same model part it was
    built with. At every real step, in state s:

    1. the planner searches from s through the learned model,
       ``planner.plan(leaf_q, partial(model.sample, model_state), s, key)``, with
       ``leaf_q`` the agent's Q (``bootstrap=True``: decision-time planning uses what
       background planning learned) or zeros (``bootstrap=False``: leaf value 0);
    2. the action is epsilon-greedy (``epsilon``) on the backed-up root values
       (:func:`~mbrl_jax.learners.epsilon_greedy`, ties broken uniformly); the
       learner's own ``act`` is not called, so give ``epsilon`` the learner's value to
       keep the same exploration;
    3. they are stored, :func:`store_root_values` with ``store_step_size`` (0: nothing
       is stored), so that the agent decides better when it comes back to s and
       background planning propagates the values further;

    then, on the real transition, the agent's own update: direct RL, model learning and
    its ``planning_steps`` background updates. With ``planner=None`` there is no
    search: the root values are Q(s, .) itself, and the agent acts and learns exactly
    as ``agent`` alone (bit for bit, on the same key). A planner's cost is in its info
    (``TabularPlanInfo.model_calls``): a budget of model calls per real step splits
    between the search and ``planning_steps``.
    """
    check_in_range("epsilon", epsilon, 0.0, 1.0)
    check_in_range("store_step_size", store_step_size, 0.0, 1.0)

    def act_stateful(state: DynaState, obs, key: PRNGKey):
        _check_state(state)
        q = state.learner.q
        if planner is None:
            values = q[obs]
        else:
            leaf_q = q if bootstrap else jnp.zeros_like(q)
            model_fn = functools.partial(model.sample, state.model)
            _, _, info = planner.plan(leaf_q, model_fn, obs, jax.random.fold_in(key, 1))
            values = info.action_values
        action = epsilon_greedy(values, epsilon, key)
        stored = QTable(store_root_values(q, obs, values, store_step_size))
        return action, state._replace(learner=stored)

    def act(state: DynaState, obs, key: PRNGKey):
        return act_stateful(state, obs, key)[0]

    return Agent(agent.init, act, agent.update, agent.spaces, act_stateful)
