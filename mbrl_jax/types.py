"""The one signature: every learning part is a NamedTuple of pure functions.

In the style of optax's ``GradientTransformation(init, update)``. See DESIGN.md.
State objects are arbitrary pytrees; nothing is hidden in closures except
hyperparameters, which may be Python floats or (traced) JAX arrays so that
``jax.vmap`` can sweep them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

PRNGKey = jax.Array
Obs = Any
Action = Any
State = Any


class Transition(NamedTuple):
    """One step of experience, real or simulated. Leaves may carry a leading batch axis.

    ``done`` is True when ``next_obs`` is terminal (the episode *terminated*, so the
    target does not bootstrap). A time-limit truncation is not ``done``.
    """

    obs: Obs
    action: Action
    reward: jax.Array
    next_obs: Obs
    done: jax.Array


class TransitionDistribution(NamedTuple):
    """Every outcome of taking ``action`` in ``obs`` with its probability: what a
    distribution model gives and an expected update (S&B section 8.5) consumes.

    ``reward``, ``next_obs``, ``done`` and ``prob`` carry a trailing outcome axis
    of fixed size K; ``prob`` sums to 1 over it and padding slots have prob 0.
    A single outcome with prob 1 is a :class:`Transition` (a deterministic model).
    """

    obs: Obs
    action: Action
    reward: jax.Array
    next_obs: Obs
    done: jax.Array
    prob: jax.Array


class Spaces(NamedTuple):
    """The observation and action spaces a part was built for, as gymnax spaces:
    ``Discrete(num_states)`` for integer state indices or ``Box`` of shape
    ``(obs_size,)`` for vectors; ``Discrete(num_actions)`` or a ``Box`` for actions.
    :func:`mbrl_jax.train.make_train` compares them with the environment's."""

    observation: Any
    action: Any


class Agent(NamedTuple):
    """What the training loop runs: ``init(key)``, ``act(state, obs, key)``,
    ``update(state, transition, key) -> state``.

    ``spaces`` (a :class:`Spaces`, or None when unknown) says which observations and
    actions the agent was built for; :func:`~mbrl_jax.train.make_train` checks them
    against the environment before anything runs. An agent whose acting changes its
    own state (a decision-time planner keeps the last plan to warm-start the next
    one) also gives ``act_stateful(state, obs, key) -> (action, state)``; the
    training loop then calls it instead of ``act`` (see :func:`select_action`).
    """

    init: Callable[[PRNGKey], State]
    act: Callable[[State, Obs, PRNGKey], Action]
    update: Callable[[State, Transition, PRNGKey], State]
    spaces: Spaces | None = None
    act_stateful: Callable[[State, Obs, PRNGKey], tuple[Action, State]] | None = None


def select_action(agent: Agent, state: State, obs: Obs, key: PRNGKey) -> tuple[Action, State]:
    """``(action, state)``: the agent's ``act_stateful`` when it has one, else ``act``
    with the state unchanged."""
    if agent.act_stateful is not None:
        return agent.act_stateful(state, obs, key)
    return agent.act(state, obs, key), state


class Learner(NamedTuple):
    """How to update a value function (or policy) from one transition, real or simulated.

    Same triple as :class:`Agent` (and ``spaces``, None when unknown): a learner on
    its own is a model-free agent, ``Agent(*learner)``.
    """

    init: Callable[[PRNGKey], State]
    act: Callable[[State, Obs, PRNGKey], Action]
    update: Callable[[State, Transition, PRNGKey], State]
    spaces: Spaces | None = None


class Model(NamedTuple):
    """How to learn the model: ``update`` from real transitions,
    ``sample(state, obs, action, key) -> Transition`` of simulated experience."""

    init: Callable[[PRNGKey], State]
    update: Callable[[State, Transition, PRNGKey], State]
    sample: Callable[[State, Obs, Action, PRNGKey], Transition]


class SearchControl(NamedTuple):
    """What to update: which (obs, action) pairs the planning steps start from.

    ``update(state, transition, learner_state, model_state, key, simulated=False)``
    sees every transition the learner has just learned from (``simulated`` is a
    static Python bool), after the learner and the model have been updated;
    ``propose(state, learner_state, model_state, key) -> (obs, action, state)``.
    With ``independent=True`` dyna may call ``propose`` for all planning steps of
    a real step at once (vmapped over keys), before the planning updates.
    ``has_proposal(state) -> bool array``, when given, says whether there is
    anything to plan from (prioritized sweeping's queue may be empty): planning
    stops early when it is False, and the skipped updates are not counted.
    """

    init: Callable[[PRNGKey], State]
    update: SearchUpdate
    propose: Callable[[State, State, State, PRNGKey], tuple[Obs, Action, State]]
    # True when proposals neither change the search state nor depend on the
    # planning updates of the same step (uniform draws): dyna then draws all n
    # proposals of a step in one vectorized call instead of one per update.
    independent: bool = False
    has_proposal: Callable[[State], jax.Array] | None = None


class SearchUpdate(Protocol):
    def __call__(
        self,
        state: State,
        transition: Transition,
        learner_state: State,
        model_state: State,
        key: PRNGKey,
        *,
        simulated: bool = False,
    ) -> State: ...


StepFn = Callable[[State, Action, PRNGKey], tuple[State, jax.Array, jax.Array]]
"""``step(state, action, key) -> (next_state, reward, done)`` over a batch: every
leaf of ``state`` and ``action`` has a leading axis N, ``reward`` is (N,) float
and ``done`` (N,) bool (the episode ended: no reward follows). It is a learned model
(:func:`mbrl_jax.models.ensemble_step_fn`) or a true environment's dynamics
(:func:`mbrl_jax.planners.env_step_fn`, the perfect-model upper bound).

A planner calls it on N = population x particles rollouts, candidate-major:
entry ``c * particles + p`` is particle p of candidate c.
"""


ValueFn = Callable[[State], jax.Array]
"""``value_fn(states) -> (N,)``: a value estimate for a batch of StepFn states, e.g. a
learned value function bootstrapping a planner's search beyond its horizon."""


PolicyFn = Callable[[State, PRNGKey], Action]
"""``policy(states, key) -> actions``: actions (N, *action_shape) for a batch of StepFn
states (every leaf with a leading axis N), e.g. a learned policy whose rollouts through
the model seed a planner's population (the policy prior of TD-MPC2)."""


class Planner(NamedTuple):
    """Decision-time planning: ``init(key) -> planner_state`` (e.g. CEM's warm-start
    mean), ``plan(planner_state, step_fn, state, key) -> (action, planner_state,
    info)``: the action to take in ``state`` (one unbatched start state of
    ``step_fn``) after searching through ``step_fn``."""

    init: Callable[[PRNGKey], State]
    plan: Callable[[State, StepFn, State, PRNGKey], tuple[Action, State, Any]]


def check_index(who: str, name: str, value: Any, size: int) -> jax.Array:
    """Whether each entry of ``value`` (an integer index or an array of them) lies in
    [0, size): a bool array of its shape, for the caller's rule on the others.

    Nothing out of range passes unseen:

    - a value without an integer dtype (a float, a bool) is a TypeError at once (at
      trace time under jit), naming ``who``, ``name``, the dtype and [0, size);
    - a concrete value (an eager call) out of range is a ValueError at once, naming
      the first values out of range;
    - a traced value (inside jit) cannot raise: it gets a ``checkify.debug_check``,
      an error under :func:`mbrl_jax.train.checked` (``jax.experimental.checkify``)
      and nothing otherwise, and the caller applies its documented rule to the
      entries out of range (never a silent move to another index).
    """
    dtype = jnp.result_type(value)
    if not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(
            f"{who}: {name} must be an integer index in [0, {size}), got "
            f"{_shown(value)} of dtype {dtype}"
        )
    if isinstance(value, jax.core.Tracer):
        valid = (value >= 0) & (value < size)
        checkify.debug_check(
            jnp.all(valid), f"{who}: {name} must be an integer in [0, {size}), got {{}}", value
        )
        return valid
    array = np.asarray(value)
    valid = (array >= 0) & (array < size)
    if not valid.all():
        bad = array[~valid]
        raise ValueError(
            f"{who}: {name} must be an integer in [0, {size}), got "
            f"{', '.join(str(v) for v in bad.ravel()[:5])}" + (" ..." if bad.size > 5 else "")
        )
    return jnp.asarray(valid)


def _shown(value: Any) -> str:
    """A short description of ``value`` for an error message."""
    if isinstance(value, jax.core.Tracer):
        return f"a traced array of shape {jnp.shape(value)}"
    array = np.asarray(value)
    return repr(array.item()) if array.size == 1 else f"an array of shape {array.shape}"
