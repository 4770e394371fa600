"""Model-predictive control: a decision-time planner and a model as one :class:`Agent`.

``mpc(planner, model, step_fn_of)`` acts by planning through the model at every
step (the first action of the plan is taken, the plan warm-starts the next
call) and learns by updating the model on each real transition, so decision-time
planning runs in the same training loop as Dyna (:func:`mbrl_jax.make_train`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import optax

from mbrl_jax.types import Agent, Model, Planner, PRNGKey, StepFn, Transition
from mbrl_jax.validation import check_count


def plan_batch(
    planner: Planner,
    planner_states: Any,
    step_fn: StepFn,
    states: Any,
    keys: jax.Array,
    *,
    chunk: int | None = None,
):
    """Plan for B environments in one call: ``planner.plan`` over a leading axis B of
    ``planner_states``, ``states`` and ``keys``, returning (actions, planner_states,
    infos) with that axis.

    ``chunk=None`` vmaps all B at once: best while one planning call is small (it
    fills the matmuls). With a large call (PETS: population 500 x 20 particles) the
    activations of B calls at once leave the cache, and ``chunk=c`` runs B / c
    sequential vmaps of c environments (``lax.map`` with ``batch_size``), so the
    cost stays B times one call's (see benchmarks/RESULTS.md).
    """

    def one(args):
        planner_state, state, key = args
        return planner.plan(planner_state, step_fn, state, key)

    args = (planner_states, states, keys)
    if chunk is None:
        return jax.vmap(one)(args)
    chunk = check_count("chunk", chunk, minimum=1)
    return jax.lax.map(one, args, batch_size=chunk)


class MPCState(NamedTuple):
    planner: Any
    model: Any


def mpc(planner: Planner, model: Model, step_fn_of: Callable[[Any], StepFn]) -> Agent:
    """An agent that plans with ``planner`` through ``step_fn_of(model_state)`` and
    learns with ``model.update``.

    For a learned model ``step_fn_of`` is e.g. ``lambda s: nm.step_fn(s, "tsinf")``
    of a :func:`mbrl_jax.models.neural_model`. The planner's warm start is reset
    when an episode terminates. Model training beyond ``model.update`` (PETS
    refits after each trial) is the caller's: see :mod:`mbrl_jax.pets`.
    """

    def init(key: PRNGKey) -> MPCState:
        k_planner, k_model = jax.random.split(key)
        return MPCState(planner.init(k_planner), model.init(k_model))

    def act_stateful(state: MPCState, obs, key: PRNGKey):
        action, planner_state, _ = planner.plan(state.planner, step_fn_of(state.model), obs, key)
        return action, state._replace(planner=planner_state)

    def act(state: MPCState, obs, key: PRNGKey):
        return act_stateful(state, obs, key)[0]

    def update(state: MPCState, transition: Transition, key: PRNGKey) -> MPCState:
        k_model, k_reset = jax.random.split(key)
        planner_state = optax.tree.where(transition.done, planner.init(k_reset), state.planner)
        return MPCState(planner_state, model.update(state.model, transition, k_model))

    return Agent(init, act, update, act_stateful=act_stateful)
