"""Planning at decision time over a tabular model (S&B sections 8.8-8.11).

Three planners with the shared ``Planner(init, plan)`` signature, searching from the
current state through a tabular model and valuing the leaves of their search with a
table of action values:

- :func:`heuristic_search` (section 8.9): the full lookahead tree of depth d of
  expected updates; d = 1 is the one-step greedy policy;
- :func:`rollout_planner` (section 8.10): m Monte Carlo rollouts of a rollout policy
  per action; act on the best mean return;
- :func:`tabular_mcts` (section 8.11): Gumbel MuZero search (``mctx``, through
  :func:`~mbrl_jax.planners.mcts`) with the tabular model as its recurrent function.

For a tabular planner ``plan(planner_state, step_fn, state, key)`` reads as
``plan(q, model_fn, obs, key) -> (action, q, TabularPlanInfo)``:

- the planner state ``q`` is the (S, A) table of action values the leaves are valued
  with, max_a Q(s, a) at a leaf s. ``init`` gives zeros (a search on its own, nothing
  learned); :func:`mbrl_jax.blend.decision_time` passes the Q that background planning
  learned, so the search bootstraps from it. ``plan`` returns it unchanged: storing
  what the search found is the caller's choice (``decision_time`` does it);
- ``model_fn(obs, action, key)`` is a tabular model's ``sample`` with its state bound
  (:data:`TabularModelFn`): the last-seen sample model, a counts model, or the true
  environment. A TransitionDistribution is used whole by heuristic search (expected
  updates) and drawn from by the sample-based rollouts and MCTS;
- ``obs`` is the integer state to plan from.

``TabularPlanInfo.action_values`` are the backed-up values of the root's actions,
completed with Q(s, a) for an action the search did not evaluate, so that writing them
into Q(s, .) changes only what the search computed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from gymnax.environments import spaces

from mbrl_jax.hyperparameters import traced
from mbrl_jax.learners import as_distribution, epsilon_greedy
from mbrl_jax.models import draw_transition
from mbrl_jax.planners.mcts import mcts
from mbrl_jax.planners.rollout import _rollout_step, _RolloutCarry
from mbrl_jax.types import (
    Action,
    Obs,
    Planner,
    PRNGKey,
    StepFn,
    Transition,
    TransitionDistribution,
)
from mbrl_jax.validation import check_count, check_in_range, check_nonnegative

TabularModelFn = Callable[[Obs, Action, PRNGKey], Transition | TransitionDistribution]
"""``model_fn(obs, action, key)``: one (s, a) through a tabular model, unbatched: a
Model's ``sample`` with its state bound, ``functools.partial(model.sample, model_state)``."""

ROLLOUT_POLICIES = ("random", "greedy")


class TabularPlanInfo(NamedTuple):
    """What a tabular search computed at its root.

    ``action_values`` (A,): the backed-up value of each root action, Q(s, a) where
    ``searched`` is False; ``searched`` (A,) bool: the search evaluated the action
    (all of them for heuristic search and rollouts, the visited ones for MCTS);
    ``model_calls`` (): the (s, a) pairs the search sent through the model.
    """

    action_values: jax.Array
    searched: jax.Array
    model_calls: jax.Array


class _Table(NamedTuple):
    """The sizes every tabular planner checks its value table against."""

    num_states: int
    num_actions: int


def _checked_table(num_states: int, num_actions: int) -> _Table:
    return _Table(
        check_count("num_states", num_states, minimum=1),
        check_count("num_actions", num_actions, minimum=1),
    )


def _check_q(who: str, table: _Table, q: jax.Array) -> None:
    """A clear error when the value table does not match the planner's sizes."""
    expected = (table.num_states, table.num_actions)
    if jnp.shape(q) != expected:
        raise ValueError(
            f"{who}: the value table (planner state) has shape {jnp.shape(q)}, expected "
            f"(num_states, num_actions) = {expected}; give the planner the sizes of the "
            f"environment and of the learner's Q-table"
        )


def _zeros(table: _Table) -> Callable[[PRNGKey], jax.Array]:
    def init(key: PRNGKey) -> jax.Array:
        del key
        return jnp.zeros((table.num_states, table.num_actions), jnp.float32)

    return init


def tabular_step_fn(model_fn: TabularModelFn) -> StepFn:
    """A tabular model as a batched :data:`~mbrl_jax.types.StepFn` over integer states:
    ``model_fn`` vmapped over the batch, one outcome drawn (:func:`draw_transition`)
    where it returns a whole distribution. The sample-based planners search through it."""

    def one(obs, action, key):
        k_model, k_draw = jax.random.split(key)
        transition = model_fn(obs, action, k_model)
        if isinstance(transition, TransitionDistribution):
            transition = draw_transition(transition, k_draw)
        return transition.next_obs, transition.reward, transition.done

    def step(obs, action, key):
        keys = jax.random.split(key, jnp.shape(obs)[0])
        next_obs, reward, done = jax.vmap(one)(obs, action, keys)
        return (
            jnp.asarray(next_obs, jnp.int32),
            jnp.asarray(reward, jnp.float32),
            jnp.asarray(done, bool),
        )

    return step


def _greedy(values: jax.Array, key: PRNGKey) -> jax.Array:
    """The action of highest value, ties broken uniformly (as the learners act)."""
    return epsilon_greedy(values, 0.0, key)


# --- heuristic search (section 8.9) ----------------------------------------------


def _lookahead(model_fn, q, gamma, depth: int, obs, key) -> jax.Array:
    """The (A,) action values of ``obs`` backed up through a depth-``depth`` tree of
    expected updates, max_a' Q(s', a') at the leaves:

        Q_d(s, a) = sum_k p_k [r_k + gamma (1 - done_k) max_a' Q_{d-1}(s'_k, a')],
        Q_0 = Q

    Every (s, a) of the tree goes through ``model_fn`` once (vmapped per level);
    subtrees below a terminal outcome or a slot of probability 0 are computed and
    then count for nothing."""
    num_actions = q.shape[1]
    k_model, k_below = jax.random.split(key)
    actions = jnp.arange(num_actions, dtype=jnp.int32)
    model_keys = jax.random.split(k_model, num_actions)
    dist = jax.vmap(lambda a, k: as_distribution(model_fn(obs, a, k)))(actions, model_keys)
    if depth == 1:
        below = jnp.max(q[dist.next_obs], axis=-1)  # (A, K)
    else:
        below_keys = jax.random.split(k_below, dist.next_obs.shape)
        subtree = jax.vmap(jax.vmap(lambda s, k: _lookahead(model_fn, q, gamma, depth - 1, s, k)))
        below = jnp.max(subtree(dist.next_obs, below_keys), axis=-1)
    per_outcome = dist.reward + gamma * jnp.where(dist.done, 0.0, below)
    return jnp.sum(jnp.where(dist.prob > 0, dist.prob * per_outcome, 0.0), axis=-1)


def _lookahead_calls(num_actions: int, outcomes: int, depth: int) -> int:
    """Model calls of a depth-d tree: A per node, (A K)^i nodes at depth i < d."""
    return sum(num_actions * (num_actions * outcomes) ** i for i in range(depth))


def _heuristic_plan(table: _Table, depth: int, gamma, q, model_fn, obs, key):
    _check_q("heuristic_search", table, q)
    k_search, k_act = jax.random.split(key)
    values = _lookahead(model_fn, q, gamma, depth, obs, k_search)
    probe = jax.eval_shape(lambda: as_distribution(model_fn(obs, 0, k_search)))
    calls = _lookahead_calls(table.num_actions, probe.prob.shape[-1], depth)
    info = TabularPlanInfo(
        values, jnp.ones((table.num_actions,), bool), jnp.asarray(calls, jnp.int32)
    )
    return _greedy(values, k_act), q, info


@traced("gamma")
def heuristic_search(
    num_states: int, num_actions: int, *, depth: int = 2, gamma: Any = 0.95
) -> Planner:
    """Heuristic search (S&B section 8.9): from the current state, the whole tree of
    ``depth`` levels of expected updates through the model, with the learned values
    max_a Q(s, a) (the planner state) at the leaves; act greedily on the root's
    backed-up action values (ties broken uniformly). ``depth=1`` is the greedy policy
    with one step of lookahead through the model.

    A tree of depth d costs A sum_{i<d} (A K)^i model calls (K outcomes per pair: 1 for
    a sample model): 4 and 20 on a maze at d = 1 and 2. See the module docstring for
    the ``plan`` signature.
    """
    table = _checked_table(num_states, num_actions)
    depth = check_count("depth", depth, minimum=1)
    check_in_range("gamma", gamma, 0.0, 1.0)

    def plan(q: jax.Array, model_fn: TabularModelFn, obs, key: PRNGKey):
        return _heuristic_plan(table, depth, gamma, q, model_fn, obs, key)

    return Planner(_zeros(table), plan)


# --- rollout planner (section 8.10) ----------------------------------------------


def _rollout_policy(policy: str, q, obs, key) -> jax.Array:
    """The rollout policy's actions for a batch of states: uniformly random, or
    greedy with respect to Q (ties broken uniformly)."""
    if policy == "greedy":
        return _greedy(q[obs], key)
    return jax.random.randint(key, jnp.shape(obs), 0, q.shape[1], jnp.int32)


def _rollout_returns(step_fn, policy: str, q, gamma, horizon: int, obs, first, key):
    """The discounted return of one rollout per entry of ``first`` (its root action),
    all from ``obs``: the root action, ``horizon - 1`` steps of the rollout policy,
    then gamma^horizon max_a Q(s_H, a) if the rollout has not terminated."""

    def policy_step(carry: _RolloutCarry, k):
        k_act, k_step = jax.random.split(k)
        action = _rollout_policy(policy, q, carry.state, k_act)
        return _rollout_step(step_fn, gamma, carry, (action, k_step))

    k_first, k_rest = jax.random.split(key)
    batch = first.shape[0]
    start = _RolloutCarry(
        jnp.full((batch,), obs, jnp.int32),
        jnp.zeros((batch,), jnp.float32),
        jnp.ones((batch,), bool),
        jnp.ones((), jnp.float32),
    )
    carry, _ = _rollout_step(step_fn, gamma, start, (first, k_first))
    carry, _ = jax.lax.scan(policy_step, carry, jax.random.split(k_rest, horizon - 1))
    leaf = jnp.max(q[carry.state], axis=-1)
    return carry.total + jnp.where(carry.alive, carry.discount * leaf, 0.0)


class _Rollouts(NamedTuple):
    """The settings of :func:`rollout_planner`, checked."""

    rollouts: int
    horizon: int
    gamma: Any
    policy: str


def _rollout_plan(table: _Table, settings: _Rollouts, q, model_fn, obs, key):
    _check_q("rollout_planner", table, q)
    k_search, k_act = jax.random.split(key)
    num_actions, m = table.num_actions, settings.rollouts
    first = jnp.repeat(jnp.arange(num_actions, dtype=jnp.int32), m)  # action-major
    returns = _rollout_returns(
        tabular_step_fn(model_fn),
        settings.policy,
        q,
        settings.gamma,
        settings.horizon,
        obs,
        first,
        k_search,
    )
    values = jnp.mean(returns.reshape(num_actions, m), axis=1)
    calls = num_actions * m * settings.horizon
    info = TabularPlanInfo(values, jnp.ones((num_actions,), bool), jnp.asarray(calls, jnp.int32))
    return _greedy(values, k_act), q, info


@traced("gamma")
def rollout_planner(
    num_states: int,
    num_actions: int,
    *,
    rollouts: int = 8,
    horizon: int = 10,
    gamma: Any = 0.95,
    rollout_policy: str = "random",
) -> Planner:
    """A rollout planner (S&B section 8.10): for each action a of the current state,
    ``rollouts`` (m) Monte Carlo trajectories through the model that start with a and
    then follow the rollout policy for ``horizon - 1`` more steps; a trajectory still
    running after ``horizon`` steps is truncated and bootstrapped with
    gamma^horizon max_a Q(s_H, a) (the planner state; zeros give plain truncated
    rollouts). Acts on the best mean return (ties broken uniformly).

    ``rollout_policy`` is ``"random"`` (uniform over actions) or ``"greedy"`` (greedy
    with respect to the planner state's Q, ties broken uniformly): the rollout policy
    the book's section 8.10 improves on. Costs A m horizon model calls.
    """
    table = _checked_table(num_states, num_actions)
    if rollout_policy not in ROLLOUT_POLICIES:
        raise ValueError(
            f"rollout_policy must be one of {ROLLOUT_POLICIES}, got {rollout_policy!r}"
        )
    check_in_range("gamma", gamma, 0.0, 1.0)
    settings = _Rollouts(
        check_count("rollouts", rollouts, minimum=1),
        check_count("horizon", horizon, minimum=1),
        gamma,
        rollout_policy,
    )

    def plan(q: jax.Array, model_fn: TabularModelFn, obs, key: PRNGKey):
        return _rollout_plan(table, settings, q, model_fn, obs, key)

    return Planner(_zeros(table), plan)


# --- Monte Carlo tree search (section 8.11) ------------------------------------


def _mcts_plan(table: _Table, search_settings: dict, q, model_fn, obs, key):
    """Gumbel MuZero through the tabular model, max_a Q(s, a) as the leaf value."""
    _check_q("tabular_mcts", table, q)

    def leaf_value(states: jax.Array) -> jax.Array:
        return jnp.max(q[states], axis=-1)

    search = mcts(spaces.Discrete(table.num_actions), value_fn=leaf_value, **search_settings)
    action, _, info = search.plan((), tabular_step_fn(model_fn), jnp.asarray(obs, jnp.int32), key)
    searched = info.visit_counts > 0
    values = jnp.where(searched, info.qvalues, q[obs])
    # One call per expansion, plus its rollout (the root's rollout too).
    calls = (search_settings["num_simulations"] + 1) * search_settings["rollout_horizon"]
    calls = jnp.asarray(search_settings["num_simulations"] + calls, jnp.int32)
    return action, q, TabularPlanInfo(values, searched, calls)


@traced("gamma", "gumbel_scale")
def tabular_mcts(
    num_states: int,
    num_actions: int,
    *,
    num_simulations: int = 32,
    gamma: Any = 0.95,
    max_depth: int | None = None,
    rollout_horizon: int = 0,
    gumbel_scale: Any = 1.0,
) -> Planner:
    """Monte Carlo tree search (S&B section 8.11) over a tabular model: Gumbel MuZero
    (:func:`~mbrl_jax.planners.mcts`, ``mctx.gumbel_muzero_policy``) with the model as
    its recurrent function (one model call per simulation; a distribution model is
    drawn from). A new leaf is valued by max_a Q(s, a) of the planner state, or, with
    ``rollout_horizon > 0``, by the book's simulation step: the return of one uniformly
    random rollout of that many steps through the model, bootstrapped by max_a Q at its
    end (each rollout step one more model call).
    The action is mctx's (Sequential Halving at the root); ``action_values`` are the
    root's Q-values r + gamma V(child) of the visited actions and Q(s, a) elsewhere.
    ``gumbel_scale=0`` makes the root's choice deterministic given the values.
    """
    table = _checked_table(num_states, num_actions)
    check_in_range("gamma", gamma, 0.0, 1.0)
    check_nonnegative("gumbel_scale", gumbel_scale)
    search_settings = dict(
        num_simulations=check_count("num_simulations", num_simulations, minimum=1),
        gamma=gamma,
        max_depth=None if max_depth is None else check_count("max_depth", max_depth, minimum=1),
        rollout_horizon=check_count("rollout_horizon", rollout_horizon, minimum=0),
        gumbel_scale=gumbel_scale,
    )

    def plan(q: jax.Array, model_fn: TabularModelFn, obs, key: PRNGKey):
        return _mcts_plan(table, search_settings, q, model_fn, obs, key)

    return Planner(_zeros(table), plan)
