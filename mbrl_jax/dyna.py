"""Dyna: planning and learning as the same update on different experience (S&B ch. 8).

``dyna(learner, model, search_control, planning_steps=n)`` is the Tabular Dyna-Q box of section
8.2 with every design question made a part:

    (d) learner.update on the real transition        (direct RL)
    (e) model.update on the real transition          (model learning)
    (f) repeat n times: search_control.propose (S, A) -> model.sample (S, A)
        -> learner.update on the simulated transition (planning)

Prioritized sweeping (section 8.4) is the same loop with ``direct_rl=False``
and a search control whose queue may run empty (``has_proposal``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mbrl_jax.hyperparameters import traced
from mbrl_jax.types import Agent, Learner, Model, PRNGKey, SearchControl, Transition
from mbrl_jax.validation import check_count


class DynaState(NamedTuple):
    learner: Any
    model: Any
    search: Any
    updates: jax.Array  # () int32: value-function updates made so far, real plus planning


class _PlanningLoop(NamedTuple):
    step: jax.Array  # () int32 planning updates made in this real step
    state: DynaState


def init_dyna_state(
    learner: Learner, model: Model, search_control: SearchControl, key: PRNGKey
) -> DynaState:
    """The learner is initialised with ``key`` itself (the model and the search control
    with keys folded from it), so a Dyna agent starts as its learner alone would."""
    return DynaState(
        learner.init(key),
        model.init(jax.random.fold_in(key, 1)),
        search_control.init(jax.random.fold_in(key, 2)),
        jnp.zeros((), jnp.int32),
    )


def _check_planning_steps(planning_steps: Any) -> Any:
    """``planning_steps`` (n) as given: a Python int >= 0 (a loop of static length) or a
    traced integer scalar (a loop bound read at run time, so one executable serves every
    n); a ValueError for anything else."""
    if isinstance(planning_steps, jax.core.Tracer):
        if planning_steps.shape != () or not jnp.issubdtype(planning_steps.dtype, jnp.integer):
            raise ValueError(
                f"a traced planning_steps must be an integer scalar, got {planning_steps.dtype}"
                f"{list(planning_steps.shape)}"
            )
        return planning_steps
    return check_count("planning_steps", planning_steps, minimum=0)


#: a traced n with an ``independent`` search control draws its proposals this many at a
#: time (one vectorized call per block, the last block's surplus unused)
PROPOSAL_BLOCK = 16


def _proposals(
    search_control: SearchControl, state: DynaState, key: PRNGKey, first: Any, count: int
) -> tuple[Any, Any]:
    """The (obs, action) proposals of planning updates ``first .. first + count - 1``
    in one vectorized call (an ``independent`` search control), update i's from
    ``fold_in(key, i)``."""
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, first + jnp.arange(count))
    propose_all = jax.vmap(search_control.propose, in_axes=(None, None, None, 0))
    obs, actions, _ = propose_all(state.search, state.learner, state.model, keys)
    return obs, actions


class _Parts(NamedTuple):
    learner: Learner
    model: Model
    search_control: SearchControl


def _planning_update(
    parts: _Parts, key: PRNGKey, i: Any, carry: DynaState, proposal: Any = None
) -> DynaState:
    """Planning update i (step (f) once): propose (unless ``proposal`` gives the pair),
    sample the model, update the learner and the search control; keys from
    ``fold_in(key, i)``."""
    learner_state, model_state, search_state, updates = carry
    k = jax.random.fold_in(key, i)
    if proposal is None:
        obs, action, search_state = parts.search_control.propose(
            search_state, learner_state, model_state, k
        )
    else:
        obs, action = proposal
    simulated = parts.model.sample(model_state, obs, action, jax.random.fold_in(k, 1))
    learner_state = parts.learner.update(learner_state, simulated, jax.random.fold_in(k, 2))
    search_state = parts.search_control.update(
        search_state, simulated, learner_state, model_state, jax.random.fold_in(k, 3),
        simulated=True,
    )  # fmt: skip
    return DynaState(learner_state, model_state, search_state, updates + 1)


def _blocked_planning(parts: _Parts, planning_steps: Any, state: DynaState, key) -> DynaState:
    """A traced n with an independent search control: ceil(n / PROPOSAL_BLOCK) blocks,
    each proposing PROPOSAL_BLOCK pairs in one call and using as many as n leaves."""

    def block(b, carry: DynaState) -> DynaState:
        first = b * PROPOSAL_BLOCK
        obs, actions = _proposals(parts.search_control, carry, key, first, PROPOSAL_BLOCK)

        def update_in_block(j, c):
            return _planning_update(parts, key, first + j, c, (obs[j], actions[j]))

        count = jnp.minimum(PROPOSAL_BLOCK, planning_steps - first)
        return jax.lax.fori_loop(0, count, update_in_block, carry)

    blocks = (planning_steps + PROPOSAL_BLOCK - 1) // PROPOSAL_BLOCK
    return jax.lax.fori_loop(0, blocks, block, state)


def planning_updates(
    learner: Learner,
    model: Model,
    search_control: SearchControl,
    planning_steps: Any,
    state: DynaState,
    key: PRNGKey,
) -> DynaState:
    """Run up to ``planning_steps`` simulated updates (step (f) of Tabular Dyna-Q);
    fewer when ``search_control.has_proposal`` turns False.

    Update i draws from ``fold_in(key, i)`` (equal to ``split(key, n)[i]`` under JAX's
    default partitionable threefry), so a traced n gives the same result as the same
    n given as a Python int. An ``independent`` search control proposes in vectorized
    calls: all n at once for a static n, :data:`PROPOSAL_BLOCK` at a time for a traced
    one. Under ``vmap`` with a batched n, every row runs as many steps as the largest
    n, the rest masked: keep n unbatched (one value per call) for speed.
    """
    static = not isinstance(planning_steps, jax.core.Tracer)
    if static and planning_steps == 0:
        return state
    parts = _Parts(learner, model, search_control)
    one_update = functools.partial(_planning_update, parts, key)
    vectorized = search_control.independent and search_control.has_proposal is None
    if vectorized and static:
        obs, actions = _proposals(search_control, state, key, 0, planning_steps)
        return jax.lax.fori_loop(
            0, planning_steps, lambda i, c: one_update(i, c, (obs[i], actions[i])), state
        )
    if vectorized:
        return _blocked_planning(parts, planning_steps, state, key)
    if search_control.has_proposal is None:
        return jax.lax.fori_loop(0, planning_steps, one_update, state)

    def keep_planning(loop: _PlanningLoop) -> jax.Array:
        return (loop.step < planning_steps) & search_control.has_proposal(loop.state.search)

    def body(loop: _PlanningLoop) -> _PlanningLoop:
        return _PlanningLoop(loop.step + 1, one_update(loop.step, loop.state))

    start = _PlanningLoop(jnp.zeros((), jnp.int32), state)
    return jax.lax.while_loop(keep_planning, body, start).state


@traced("planning_steps")
def dyna(
    learner: Learner,
    model: Model,
    search_control: SearchControl,
    *,
    planning_steps: Any,
    direct_rl: bool = True,
) -> Agent:
    """Compose a learner, a model and a search control into a Dyna agent.

    ``planning_steps`` (n) is a Python int (the planning loop's static length: runs
    with different n compile separately) or a traced integer scalar (a run-time loop
    bound: one executable serves every n, with the same result as the int; see
    :func:`planning_updates`). With
    ``direct_rl=False`` the real transition only trains the model and the search
    control, and the value function learns from planning alone (the prioritized
    sweeping box of S&B section 8.4). ``DynaState.updates`` counts the learner
    updates made, real and simulated.

    The parts decide what one update is: a tabular learner takes one transition and
    its model samples one; a neural learner (:func:`mbrl_jax.learners.dqn`) takes a
    batch, which its search control and model propose and sample as a batch
    (:func:`mbrl_jax.search.branched_rollouts`). So each planning step is one
    learner update on whatever the model returns. The agent was built for the
    learner's spaces (``Agent.spaces`` is ``learner.spaces``).
    """
    planning_steps = _check_planning_steps(planning_steps)

    def init(key: PRNGKey) -> DynaState:
        return init_dyna_state(learner, model, search_control, key)

    def act(state: DynaState, obs, key: PRNGKey):
        return learner.act(state.learner, obs, key)

    def update(state: DynaState, transition: Transition, key: PRNGKey) -> DynaState:
        # The learner's direct-RL update gets ``key`` itself, so with n = 0 the agent's
        # learner follows exactly the path of the learner run on its own.
        k_model, k_search, k_plan = (jax.random.fold_in(key, i) for i in range(1, 4))
        learner_state, updates = state.learner, state.updates
        if direct_rl:
            learner_state = learner.update(learner_state, transition, key)
            updates = updates + 1
        model_state = model.update(state.model, transition, k_model)
        search_state = search_control.update(
            state.search, transition, learner_state, model_state, k_search
        )
        state = DynaState(learner_state, model_state, search_state, updates)
        return planning_updates(learner, model, search_control, planning_steps, state, k_plan)

    return Agent(init, act, update, learner.spaces)


def q_planning(
    learner: Learner, model: Model, search_control: SearchControl, *, planning_steps: int
) -> Callable[[PRNGKey], Any]:
    """Random-sample one-step tabular Q-planning (S&B section 8.1): planning alone,
    with no real experience. Returns ``run(key) -> learner_state`` after
    ``planning_steps`` updates on transitions sampled from ``model`` (typically
    :func:`mbrl_jax.models.environment_model`, the true dynamics) at pairs chosen
    by ``search_control`` (typically :func:`mbrl_jax.search.uniform_over_states`).
    """
    planning_steps = check_count("planning_steps", planning_steps, minimum=0)

    def run(key: PRNGKey):
        k_init, k_plan = jax.random.split(key)
        state = init_dyna_state(learner, model, search_control, k_init)
        return planning_updates(
            learner, model, search_control, planning_steps, state, k_plan
        ).learner

    return run
