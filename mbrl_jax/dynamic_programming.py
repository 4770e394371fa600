"""Dynamic programming with a distribution model: value iteration (S&B section 4.4) and
real-time dynamic programming (RTDP, section 8.7), for a finite MDP of state indices.

A finite MDP is given as a *table*: a :class:`~mbrl_jax.types.TransitionDistribution`
whose fields carry leading (S, A) axes, every outcome k of every (s, a) with its
probability (``Racetrack.table`` is one). All values are state values V (S,), and every
update is the expected update of S&B eq. 4.10 (undiscounted with ``gamma = 1``, as in
Example 8.6):

    V(s) <- max_a sum_k p_k [r_k + gamma (1 - done_k) V(s'_k)].

- :func:`value_iteration`: sweeps of that update over all given states, synchronous or
  in place (Gauss-Seidel), until the largest change in a sweep is below ``theta``.
- :func:`rtdp`: on-policy trajectory-sampling value iteration, the update made only at
  the states that greedy episodes visit, through any distribution model (the true one,
  :func:`table_model`, or one learned from the same experience,
  ``models.count_distribution_model``).
- :func:`policy_evaluation` and :func:`greedy_value`: the exact value of the greedy
  policy of V (what decides when RTDP has converged, and the curves of Example 8.6).
- :func:`action_values` (Q of V), :func:`restrict` (a table on a closed set of states,
  e.g. the reachable ones) and :func:`table_model` (a table as a ``Model``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mbrl_jax.learners import epsilon_greedy, expected_q_target
from mbrl_jax.models import draw_transition, fixed_model
from mbrl_jax.types import Model, PRNGKey, Transition, TransitionDistribution
from mbrl_jax.validation import (
    check_count,
    check_in_range,
    check_nonnegative,
    discrete_actions,
    is_discrete,
)

__all__ = [
    "RTDPResult",
    "ValueIteration",
    "action_values",
    "greedy_value",
    "policy_evaluation",
    "restrict",
    "rtdp",
    "table_model",
    "value_iteration",
]


def _table(table: TransitionDistribution) -> TransitionDistribution:
    """The table as JAX arrays, its ranks checked: (S, A) obs and action, (S, A, K) rest."""
    table = TransitionDistribution(*(jnp.asarray(x) for x in table))
    chex.assert_rank(table.prob, 3)
    chex.assert_equal_shape((table.reward, table.next_obs, table.done, table.prob))
    return table


def action_values(table: TransitionDistribution, values: jax.Array, gamma: Any = 1.0) -> jax.Array:
    """Q(s, a) = sum_k p_k [r_k + gamma (1 - done_k) V(s'_k)] for every (s, a): (S, A).

    The library's expected-update target (``learners.expected_q_target``) with V as a
    one-action Q table, so max_a' Q(s', a') is V(s')."""
    chex.assert_rank(values, 1)
    return expected_q_target(values[:, None], table, gamma)


# --- value iteration -------------------------------------------------------------------


class ValueIteration(NamedTuple):
    """What :func:`value_iteration` returns."""

    values: jax.Array  # (S,) V after the last sweep
    sweeps: jax.Array  # () int32 sweeps made
    updates: jax.Array  # () int32 expected updates made: states swept x sweeps
    delta: jax.Array  # () the largest change of the last sweep
    history: jax.Array | None  # (max_sweeps, S): row i is V after sweep i + 1 (rows >= sweeps: 0)


class _Sweeping(NamedTuple):
    """The carry of value iteration."""

    values: jax.Array  # (S,)
    sweeps: jax.Array  # () int32
    delta: jax.Array  # ()
    history: jax.Array  # (max_sweeps, S) or (0, S)


class _InPlace(NamedTuple):
    """The carry of one in-place sweep."""

    values: jax.Array  # (S,)
    delta: jax.Array  # () the largest change so far


def _synchronous_sweep(table, mask, gamma, values: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Every state of ``mask`` updated from the values before the sweep (Jacobi)."""
    new = jnp.where(mask, jnp.max(action_values(table, values, gamma), -1), values)
    return new, jnp.max(jnp.where(mask, jnp.abs(new - values), 0.0))


def _in_place_sweep(table, order, gamma, values: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The states of ``order`` updated one at a time, in that order, each from the
    latest values (Gauss-Seidel)."""

    def one(i, c: _InPlace) -> _InPlace:
        s = order[i]
        row = jax.tree.map(lambda x: x[s], table)
        new = jnp.max(expected_q_target(c.values[:, None], row, gamma))
        return _InPlace(c.values.at[s].set(new), jnp.maximum(c.delta, jnp.abs(new - c.values[s])))

    end = jax.lax.fori_loop(0, order.shape[0], one, _InPlace(values, jnp.zeros((), values.dtype)))
    return end.values, end.delta


def value_iteration(
    table: TransitionDistribution,
    *,
    states: np.ndarray | jax.Array | None = None,
    order: np.ndarray | jax.Array | None = None,
    theta: float = 1e-4,
    gamma: Any = 1.0,
    max_sweeps: int = 1000,
    history: bool = False,
) -> ValueIteration:
    """Value iteration (S&B section 4.4) from V = 0, sweeps of the expected update until
    the largest change of a sweep is below ``theta`` or after ``max_sweeps``:

    - synchronous sweeps (the default): each update of a sweep uses the values of the
      sweep before, over the states in the (S,) bool mask ``states`` (default all;
      others keep V = 0);
    - with ``order`` (an int array of state indices), in-place (Gauss-Seidel) sweeps: the
      states of ``order`` one at a time in that order, each update using the latest
      values (the book's Example 8.6 DP; ``states`` must then be None).

    Counts ``updates`` = states swept x sweeps. With ``history=True`` it keeps V after
    every sweep (a (max_sweeps, S) array), so the greedy policy can be evaluated after
    each sweep. Jitted (one ``lax.while_loop``); ``max_sweeps``, ``history`` and whether
    ``order`` is given are static.
    """
    check_nonnegative("theta", theta)
    check_in_range("gamma", gamma, 0.0, 1.0)
    max_sweeps = check_count("max_sweeps", max_sweeps, minimum=1)
    table = _table(table)
    num_states = table.prob.shape[0]
    if order is not None:
        if states is not None:
            raise ValueError("value_iteration: give states (synchronous) or order, not both")
        swept = jnp.asarray(order, jnp.int32)
        chex.assert_rank(swept, 1)
    else:
        swept = jnp.ones(num_states, bool) if states is None else jnp.asarray(states, bool)
        chex.assert_shape(swept, (num_states,))
    result = _value_iteration(table, swept, theta, gamma, order is not None, max_sweeps, history)
    return result if history else result._replace(history=None)


@functools.partial(jax.jit, static_argnums=(4, 5, 6))
def _value_iteration(table, swept, theta, gamma, in_place: bool, max_sweeps: int, keep_history):
    """The loop of :func:`value_iteration`; ``swept`` is the order (in place) or the mask."""
    if in_place:
        sweep = functools.partial(_in_place_sweep, table, swept, gamma)
        num_swept = swept.shape[0]
    else:
        sweep = functools.partial(_synchronous_sweep, table, swept, gamma)
        num_swept = jnp.sum(swept)

    def sweeping(c: _Sweeping) -> jax.Array:
        return (c.delta >= theta) & (c.sweeps < max_sweeps)

    def step(c: _Sweeping) -> _Sweeping:
        new, delta = sweep(c.values)
        history = c.history.at[c.sweeps].set(new) if keep_history else c.history
        return _Sweeping(new, c.sweeps + 1, delta, history)

    num_states = table.prob.shape[0]
    start = _Sweeping(
        jnp.zeros(num_states, jnp.float32),
        jnp.zeros((), jnp.int32),
        jnp.asarray(jnp.inf, jnp.float32),
        jnp.zeros((max_sweeps if keep_history else 0, num_states), jnp.float32),
    )
    end = jax.lax.while_loop(sweeping, step, start)
    updates = (num_swept * end.sweeps).astype(jnp.int32)
    return ValueIteration(end.values, end.sweeps, updates, end.delta, end.history)


# --- policy evaluation -----------------------------------------------------------------


def policy_evaluation(
    table: TransitionDistribution, policy: jax.Array, *, sweeps: int = 100, gamma: Any = 1.0
) -> jax.Array:
    """v_pi (S,) of a deterministic ``policy`` (S,) by ``sweeps`` synchronous sweeps of
    iterative policy evaluation (S&B eq. 4.5) from v = 0:

        v(s) <- sum_k p_k [r_k + gamma (1 - done_k) v(s'_k)],  k the outcomes of (s, pi(s)).

    Undiscounted, n sweeps from 0 give the expected sum of the first n rewards exactly:
    with reward -1 per step (the racetrack) -v(s) = E[min(T, n)], T the episode length
    from s; equal to E[T] when the policy ends its episodes within n steps but for a
    negligible probability (a policy that never ends them reads n)."""
    sweeps = check_count("sweeps", sweeps, minimum=0)
    table = _table(table)
    policy = jnp.asarray(policy, jnp.int32)
    chex.assert_shape(policy, table.prob.shape[:1])
    return _policy_evaluation(table, policy, gamma, sweeps)


@functools.partial(jax.jit, static_argnums=3)
def _policy_evaluation(table, policy, gamma, sweeps: int) -> jax.Array:
    rows = jnp.arange(policy.shape[0])
    chosen = jax.tree.map(lambda x: x[rows, policy].T, table)  # (K, S): the outcomes of pi
    keep = jnp.where(chosen.prob > 0, chosen.prob, 0.0)
    reward = jnp.sum(keep * chosen.reward, 0)
    cont = jnp.where(chosen.done, 0.0, gamma * keep)

    def sweep(_, v: jax.Array) -> jax.Array:
        # one gather of S per outcome slot: about twice as fast on CPU as one (S, K) gather
        total = reward
        for k in range(cont.shape[0]):
            total = total + cont[k] * v[chosen.next_obs[k]]
        return total

    return jax.lax.fori_loop(0, sweeps, sweep, jnp.zeros_like(reward))


def greedy_value(
    table: TransitionDistribution,
    values: jax.Array,
    starts: jax.Array,
    *,
    sweeps: int = 100,
    gamma: Any = 1.0,
) -> jax.Array:
    """The mean over the start states ``starts`` (N,) of v_pi, pi the greedy policy of
    ``values`` (argmax_a of :func:`action_values`, ties to the lowest action), by
    :func:`policy_evaluation`. On the racetrack -greedy_value is the greedy policy's
    mean episode length from a start cell drawn uniformly (truncated at ``sweeps``)."""
    policy = jnp.argmax(action_values(_table(table), values, gamma), -1).astype(jnp.int32)
    return jnp.mean(policy_evaluation(table, policy, sweeps=sweeps, gamma=gamma)[starts])


def restrict(
    table: TransitionDistribution, states: np.ndarray
) -> tuple[TransitionDistribution, np.ndarray]:
    """``(table on the states, their indices)``: the rows of the states in the (S,) bool
    mask ``states`` (e.g. those reachable from the start states), with ``next_obs``
    renumbered 0..n-1 in index order; numpy, outside jit. Raises ValueError if an outcome
    of positive probability leaves the set (it must be closed). Dynamic programming on
    the reachable states is the same as on all of them, and cheaper."""
    table = TransitionDistribution(*(np.asarray(x) for x in table))
    states = np.asarray(states, bool)
    if states.shape != table.prob.shape[:1]:
        raise ValueError(f"states must be a bool mask of shape {table.prob.shape[:1]}")
    index = np.flatnonzero(states)
    renumber = np.full(len(states), -1, np.int64)
    renumber[index] = np.arange(len(index))
    rows = TransitionDistribution(*(x[index] for x in table))
    live = (rows.prob > 0) & ~rows.done
    if np.any(renumber[rows.next_obs[live]] < 0):
        raise ValueError("the states are not closed: an outcome of one leads outside them")
    next_obs = np.where(live, renumber[rows.next_obs], 0).astype(np.int32)
    obs = np.broadcast_to(np.arange(len(index), dtype=np.int32)[:, None], rows.obs.shape)
    return rows._replace(obs=obs, next_obs=next_obs), index


def table_model(table: TransitionDistribution, *, expected: bool = True) -> Model:
    """The given (true) model of a tabulated MDP: ``sample(state, obs, action, key)``
    returns the row (obs, action) of ``table``, a TransitionDistribution (for expected
    updates), or with ``expected=False`` one Transition drawn from it. Its state is
    empty and real transitions leave it unchanged (``models.fixed_model``)."""
    table = _table(table)

    def sample(state, obs, action, key: PRNGKey):
        del state
        row = jax.tree.map(lambda x: x[obs, action], table)
        distribution = TransitionDistribution(obs, action, *row[2:])
        return distribution if expected else draw_transition(distribution, key)

    return fixed_model(sample)


# --- real-time dynamic programming -----------------------------------------------------


class RTDPResult(NamedTuple):
    """One RTDP run (see :func:`rtdp`). "At convergence" is the first evaluation of the
    streak that confirmed it; for a run that did not converge, the end of the run."""

    converged: jax.Array  # () bool
    episodes: jax.Array  # () int32 episodes finished at convergence
    updates: jax.Array  # () int32 expected updates (= real steps) to convergence
    update_counts: jax.Array  # (S,) int32 updates of each state to convergence
    values: jax.Array  # (S,) V at the end of the run
    history_episodes: jax.Array  # (C + 1,) int32 episodes finished at evaluation i (-1: none)
    history_metric: jax.Array  # (C + 1,) float32 evaluation i, after i * check_every updates
    model_state: Any  # the model's state at the end (a count model: check its overflow)


class _Drive(NamedTuple):
    """The carry of RTDP's real steps."""

    values: jax.Array  # (S,) V
    counts: jax.Array  # (S,) int32 updates of each state
    model_state: Any
    obs: jax.Array  # () int32 current state
    env_state: Any
    episodes: jax.Array  # () int32 episodes finished
    updates: jax.Array  # () int32 updates made (one per real step)
    key: jax.Array


class _Mark(NamedTuple):
    """Where a run was when a streak of evaluations at the target began."""

    episodes: jax.Array
    updates: jax.Array
    counts: jax.Array


class _Check(NamedTuple):
    """The carry of RTDP's evaluations, one every ``check_every`` updates."""

    drive: _Drive
    check: jax.Array  # () int32 index of the last evaluation
    streak: jax.Array  # () int32 evaluations in a row at the target
    mark: _Mark
    history_episodes: jax.Array
    history_metric: jax.Array


def _rtdp_step(
    env, env_params, model: Model, num_actions: int, gamma, epsilon, d: _Drive
) -> _Drive:
    """One real step: the expected update of V at the current state, then the greedy
    action (ties uniformly at random), the environment's step and the model's update."""
    key, k_model, k_act, k_step, k_update = jax.random.split(d.key, 5)
    outcomes = jax.vmap(model.sample, in_axes=(None, None, 0, None))(
        d.model_state, d.obs, jnp.arange(num_actions), k_model
    )
    q = expected_q_target(d.values[:, None], outcomes, gamma)  # (A,)
    values = d.values.at[d.obs].set(jnp.max(q))
    action = epsilon_greedy(q, epsilon, k_act)
    next_obs, env_state, reward, terminated, truncated, info = env.step(
        k_step, d.env_state, action, env_params
    )
    transition = Transition(d.obs, action, reward, info["final_observation"], terminated)
    model_state = model.update(d.model_state, transition, k_update)
    episodes = d.episodes + (terminated | truncated).astype(jnp.int32)
    counts = d.counts.at[d.obs].add(1)
    return _Drive(values, counts, model_state, next_obs, env_state, episodes, d.updates + 1, key)


def _rtdp_check(c: _Check, metric: jax.Array, target, tolerance) -> _Check:
    """Record the evaluation ``metric`` of the values after ``c.drive`` and extend or
    break the streak at the target."""
    check = c.check + 1
    met = jnp.abs(metric - target) <= tolerance
    here = _Mark(c.drive.episodes, c.drive.updates, c.drive.counts)
    return _Check(
        c.drive,
        check,
        jnp.where(met, c.streak + 1, 0),
        optax.tree.where(met & (c.streak == 0), here, c.mark),
        c.history_episodes.at[check].set(c.drive.episodes),
        c.history_metric.at[check].set(metric),
    )


def _tabular_sizes(env, env_params) -> tuple[int, int]:
    """(number of states, number of actions) of an environment of integer states."""
    num_actions = discrete_actions(env.action_space(env_params), "rtdp")
    observations = env.observation_space(env_params)
    if not is_discrete(observations):
        raise ValueError(
            f"rtdp needs integer states (a Discrete observation space), got {observations!r}"
        )
    return int(observations.n), num_actions


def _rtdp_start(env, env_params, model: Model, num_states: int, num_checks: int, key) -> _Check:
    """A run before its first step and first evaluation: V = 0, nothing counted."""
    k_reset, k_model, key = jax.random.split(key, 3)
    obs, env_state = env.reset(k_reset, env_params)
    zero = jnp.zeros((), jnp.int32)
    values, counts = jnp.zeros(num_states, jnp.float32), jnp.zeros(num_states, jnp.int32)
    drive = _Drive(values, counts, model.init(k_model), obs, env_state, zero, zero, key)
    return _Check(
        drive,
        jnp.full((), -1, jnp.int32),
        zero,
        _Mark(zero, zero, counts),
        jnp.full(num_checks + 1, -1, jnp.int32),
        jnp.full(num_checks + 1, jnp.nan, jnp.float32),
    )


def _rtdp_result(c: _Check, patience: int) -> RTDPResult:
    """What a finished run reports: at convergence if it converged, else at its end."""
    converged = c.streak >= patience
    end = _Mark(c.drive.episodes, c.drive.updates, c.drive.counts)
    mark = optax.tree.where(converged, c.mark, end)
    return RTDPResult(
        converged,
        mark.episodes,
        mark.updates,
        mark.counts,
        c.drive.values,
        c.history_episodes,
        c.history_metric,
        c.drive.model_state,
    )


def rtdp(
    env,
    env_params,
    model: Model,
    evaluate: Callable[[jax.Array], jax.Array],
    *,
    target: Any,
    tolerance: float = 1e-2,
    check_every: int = 1000,
    patience: int = 3,
    max_updates: int = 1_000_000,
    gamma: Any = 1.0,
    epsilon: Any = 0.0,
) -> Callable[[PRNGKey], RTDPResult]:
    """Real-time dynamic programming (S&B section 8.7): ``run(key) -> RTDPResult``, pure,
    so ``jax.jit(jax.vmap(run))(keys)`` runs many seeds at once.

    Episodes of the gymnax ``env`` (integer states, discrete actions, auto-reset to its
    random start states) act greedily on V (ties broken uniformly at random); at every
    state visited, before acting, V(s) <- max_a sum_k p_k [r_k + gamma (1 - done_k)
    V(s'_k)] with the outcomes from ``model.sample(model_state, s, a, key)`` (a
    distribution model: the true one, e.g. :func:`table_model`, or
    ``models.count_distribution_model``, which ``model.update`` teaches from the same
    real steps). V starts at 0; one update per real step, counted per state. With
    ``epsilon`` > 0 the action is random with that probability (the book's RTDP: 0).
    With a learned model, purely greedy acting may settle for good on an action whose
    first outcomes were unlucky (a count model believes them); epsilon keeps trying all
    actions (Barto, Bradtke and Singh 1995's adaptive RTDP explores likewise).

    Convergence: before the first step and after every ``check_every`` updates,
    ``evaluate(V)`` (e.g. the greedy policy's mean episode length from the start states
    by exact policy evaluation, see :func:`greedy_value`) is compared with ``target``
    (e.g. the value-iteration optimum). The run has converged when it is within
    ``tolerance`` of it at ``patience`` evaluations in a row; it then stops, and its
    episodes, updates and per-state counts are those at the first evaluation of that
    streak. A run stops unconverged after ``max_updates`` (rounded up to whole
    ``check_every``). Evaluations fall every ``check_every`` updates, not at episode
    ends, so that the steps between them are one ``fori_loop`` of fixed length: under
    ``vmap`` only the loop over evaluations has a per-run stopping condition.

    Why not ``dyna(...)``: RTDP is Dyna with ``direct_rl=False``, ``expected_q_learning``
    (alpha 1, epsilon 0) and a search control proposing every action at the current state
    (the Q form equals this V form: V(s) = max_a Q(s, a) at every updated state). It is
    written out here because it counts one update per visited state as the book does
    (not one per action), updates the first state of each episode before acting from it
    (Dyna plans after a real step, from the state it arrived in), and evaluates and
    stops inside the run, with per-state counts at convergence. It reuses the library's
    expected target (``learners.expected_q_target``) and greedy tie-breaking
    (``learners.epsilon_greedy`` with epsilon 0).
    """
    check_every = check_count("check_every", check_every, minimum=1)
    patience = check_count("patience", patience, minimum=1)
    max_updates = check_count("max_updates", max_updates, minimum=1)
    check_nonnegative("tolerance", tolerance)
    check_in_range("gamma", gamma, 0.0, 1.0)
    check_in_range("epsilon", epsilon, 0.0, 1.0)
    num_states, num_actions = _tabular_sizes(env, env_params)
    num_checks = -(-max_updates // check_every)
    step = functools.partial(_rtdp_step, env, env_params, model, num_actions, gamma, epsilon)

    def drive(c: _Check) -> _Check:
        d = jax.lax.fori_loop(0, check_every, lambda _, d: step(d), c.drive)
        return _rtdp_check(c._replace(drive=d), evaluate(d.values), target, tolerance)

    def going(c: _Check) -> jax.Array:
        return (c.streak < patience) & (c.check < num_checks)

    def run(key: PRNGKey) -> RTDPResult:
        start = _rtdp_start(env, env_params, model, num_states, num_checks, key)
        first = _rtdp_check(start, evaluate(start.drive.values), target, tolerance)
        return _rtdp_result(jax.lax.while_loop(going, drive, first), patience)

    return run
