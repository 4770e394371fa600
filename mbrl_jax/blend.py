"""The blend of background and decision-time planning (S&B section 8.8).

"You can store the information computed for planning at decision time for a specific
state so as to make even better decisions if the agent ever returns to that state; in
this way both methods are used together." :func:`decision_time` wraps a tabular Dyna
agent (:func:`mbrl_jax.dyna.dyna`) so that it acts by searching from its current state
through its own learned model, the leaves valued with the Q that background planning
learned, and writes what the search backed up for that state into Q(s, .). Background
planning (the agent's ``planning_steps``), decision-time search (the planner) and the
store each turn off on their own, so every combination runs on one code path.

:func:`value_guided` is the same blend for a neural Dyna agent over a learner with a
value and a policy (:func:`mbrl_jax.learners.sac`): it acts by planning a few steps
through its learned model with a shooting planner, bootstrapped by the learner's value
and seeded with the learner's policy rollouts (LOOP, Sikchi et al. 2022; TD-MPC2, Hansen
et al. 2024), and the planner's actions are the real experience the learner goes on
learning from in the background, with the model transitions of its own planning steps.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mbrl_jax.dyna import DynaState
from mbrl_jax.hyperparameters import traced
from mbrl_jax.learners import QTable, epsilon_greedy
from mbrl_jax.types import Agent, Model, Planner, PolicyFn, PRNGKey, StepFn, ValueFn
from mbrl_jax.validation import check_count, check_in_range

__all__ = ["ValueGuidedState", "decision_time", "store_root_values", "value_guided"]


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


class ValueGuidedState(NamedTuple):
    """The state of a :func:`value_guided` agent."""

    agent: DynaState  # the wrapped Dyna agent's: learner, model, search control, updates
    planner: Any  # the planner's warm start (reset when an episode terminates)
    real_steps: jax.Array  # () int32 real transitions seen


def _check_value_learner(learner: Any) -> None:
    """A clear error unless ``learner`` gives ``value(state, obs)`` and ``policy(state,
    obs, key)`` over batches of observations (as :class:`~mbrl_jax.learners.SAC`)."""
    missing = [n for n in ("value", "policy") if not callable(getattr(learner, n, None))]
    if missing:
        raise TypeError(
            "value_guided needs a learner with value(state, obs) and policy(state, obs, key) "
            f"(e.g. mbrl_jax.learners.sac), got {type(learner).__name__} without {missing}"
        )


def _check_dyna_state(state: Any) -> None:
    if not isinstance(state, DynaState):
        raise TypeError(
            "value_guided wraps a Dyna agent (dyna(learner, model, search_control, ...)), "
            f"got an agent state of type {type(state).__name__}"
        )


class _Guide(NamedTuple):
    """What :func:`value_guided` acts and plans with, fixed by the factory."""

    agent: Agent  # the Dyna agent: its act before planning_starts, its update always
    learner: Any  # gives value(state, obs) and policy(state, obs, key)
    planner_of: Callable[[ValueFn | None, PolicyFn | None], Planner]
    step_fn_of: Callable[[Any], StepFn]
    planner: Planner  # planner_of(None, None): its init (the state does not depend on them)
    planning_starts: int
    bootstrap: bool
    policy_prior: bool


def _guided_plan(guide: _Guide, state: ValueGuidedState, obs, key: PRNGKey):
    """(action, planner state): one planning call through the learned model, valued and
    seeded by the learner's current state."""
    learner, learner_state = guide.learner, state.agent.learner
    value_fn = (lambda s: learner.value(learner_state, s)) if guide.bootstrap else None
    policy = (lambda s, k: learner.policy(learner_state, s, k)) if guide.policy_prior else None
    planner = guide.planner_of(value_fn, policy)
    step_fn = guide.step_fn_of(state.agent.model)
    action, planner_state, _ = planner.plan(state.planner, step_fn, obs, key)
    return action, planner_state


def _guided_init(guide: _Guide, key: PRNGKey) -> ValueGuidedState:
    planner_state = guide.planner.init(jax.random.fold_in(key, 3))
    return ValueGuidedState(guide.agent.init(key), planner_state, jnp.zeros((), jnp.int32))


def _guided_act(guide: _Guide, state: ValueGuidedState, obs, key: PRNGKey):
    """(action, state): the plan's first action from ``planning_starts`` real steps on,
    the agent's own action before."""
    _check_dyna_state(state.agent)

    def planned(state: ValueGuidedState):
        return _guided_plan(guide, state, obs, jax.random.fold_in(key, 1))

    def own(state: ValueGuidedState):
        return guide.agent.act(state.agent, obs, key), state.planner

    if guide.planning_starts == 0:
        action, planner_state = planned(state)
    else:
        started = state.real_steps >= guide.planning_starts
        action, planner_state = jax.lax.cond(started, planned, own, state)
    return action, state._replace(planner=planner_state)


def _guided_action(guide: _Guide, state: ValueGuidedState, obs, key: PRNGKey):
    return _guided_act(guide, state, obs, key)[0]


def _guided_update(
    guide: _Guide, state: ValueGuidedState, transition, key: PRNGKey
) -> ValueGuidedState:
    """The agent's own update (on ``key`` itself: it learns as the agent alone would);
    the plan is reset where the episode ended."""
    reset = guide.planner.init(jax.random.fold_in(key, 5))
    planner_state = optax.tree.where(transition.done, reset, state.planner)
    agent_state = guide.agent.update(state.agent, transition, key)
    return ValueGuidedState(agent_state, planner_state, state.real_steps + 1)


def value_guided(
    agent: Agent,
    learner: Any,
    planner_of: Callable[[ValueFn | None, PolicyFn | None], Planner],
    step_fn_of: Callable[[Any], StepFn],
    *,
    planning_starts: int = 1_000,
    bootstrap: bool = True,
    policy_prior: bool = True,
) -> Agent:
    """Value-bootstrapped model-predictive control over a neural Dyna agent: the agent
    acts by planning and learns as it did.

    ``agent`` is a Dyna agent (:func:`mbrl_jax.dyna.dyna`, its state a
    :class:`~mbrl_jax.dyna.DynaState`) built over ``learner``, which gives
    ``value(state, obs) -> (B,)`` and ``policy(state, obs, key) -> actions`` (SAC:
    :func:`mbrl_jax.learners.sac`). At every real step from ``planning_starts`` on, in
    state s, the agent plans with the planner

        ``planner_of(value_fn, policy)``, e.g.
        ``lambda v, p: cem(space, horizon=3, gamma=0.99, value_fn=v, policy=p)``,

    through the learned model, ``step_fn_of(model_state)`` (e.g. ``lambda m:
    nm.step_fn(m, "tsinf")``), with ``value_fn(s) = learner.value(learner_state, s)``
    (``bootstrap``: a planned return sum_{t<H} gamma^t r_t + gamma^H V(s_H), so give the
    planner the learner's gamma) and ``policy(s, k) = learner.policy(learner_state, s,
    k)`` (``policy_prior``: the planner's ``prior_fraction`` of its population are the
    policy's rollouts through the model). ``bootstrap=False`` or ``policy_prior=False``
    passes None instead, for comparisons. The first action of the plan is taken; the
    plan warm-starts the next call and is reset when an episode terminates, as in
    :func:`~mbrl_jax.planners.mpc`.

    Before ``planning_starts`` real steps the value, the policy and the model are
    untrained, and the agent acts with its own ``act`` (SAC: uniform actions until its
    ``learning_starts``; give both the same number): so these steps are the agent's own,
    bit for bit on the same key, and cost no planning.

    It learns with the agent's own ``update`` on every real transition, so the learner
    learns in the background from the planner's actions (they land in its replay) and
    from the model transitions of the agent's ``planning_steps``: decision-time planning
    uses what background planning learned, and background planning learns from what
    decision-time planning did.
    """
    planning_starts = check_count("planning_starts", planning_starts, minimum=0)
    _check_value_learner(learner)
    guide = _Guide(
        agent, learner, planner_of, step_fn_of, planner_of(None, None), planning_starts,
        bool(bootstrap), bool(policy_prior),
    )  # fmt: skip
    return Agent(
        functools.partial(_guided_init, guide),
        functools.partial(_guided_action, guide),
        functools.partial(_guided_update, guide),
        agent.spaces,
        functools.partial(_guided_act, guide),
    )
