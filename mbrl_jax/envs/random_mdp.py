"""Random MDPs with a chosen branching factor, the tasks of S&B section 8.6 (Figure 8.8).

From each of ``num_states`` states, ``num_actions`` actions (the book: 2) are
possible. Each (s, a) leads, with probability ``terminal_prob`` (the book: 0.1),
to the terminal state, ending the episode, and otherwise to one of ``b`` next
states, all equally likely; the ``b`` states are distinct and drawn uniformly
from all states, a different draw for each (s, a) (a uniformly random b-subset,
by Floyd's algorithm, listed in no particular order). The expected reward of each
transition (each of the b branches and the terminal transition) is drawn from
N(0, 1), once per task. Episodes start in state 0 and are undiscounted.

An action must be an integer in [0, num_actions) (and a state given to
:func:`transition_distribution` one in [0, num_states)): another dtype is a TypeError
at once, a concrete value out of range a ValueError
(:func:`~mbrl_jax.types.check_index`). Inside jit it cannot raise (it does under
:func:`mbrl_jax.train.checked`); the rule then is: the state stays, the reward is NaN
and the episode does not terminate (:func:`transition_distribution`: NaN rewards).

Rewards are deterministic given the outcome: the environment pays exactly the
transition's expected reward. The book only specifies expected rewards, and
every quantity of Figure 8.8 (expected updates on the true model, the value of
the greedy policy) depends on the rewards only through their expectations.

``random_mdp_params(key, ...)`` is a pure function, so ``jax.vmap`` over keys
makes thousands of tasks at once. :class:`RandomMDP` wraps a task as a gymnax
environment; :func:`transition_distribution` gives the true model of one
(s, a) as a :class:`~mbrl_jax.types.TransitionDistribution`, and
:func:`greedy_policy_value` evaluates the greedy policy of a Q table by exact
expected backups, to within 1e-3 (the y axis of Figure 8.8).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from mbrl_jax.types import PRNGKey, TransitionDistribution, check_index
from mbrl_jax.validation import check_count, check_in_range

#: Policy-evaluation sweeps of :func:`greedy_policy_value` by default; see there.
EVALUATION_ITERATIONS = 120


@struct.dataclass
class RandomMDPParams:
    """One random task. Shapes: S states, A actions, b branches."""

    successors: jax.Array  # (S, A, b) int32, distinct next states of each (s, a)
    rewards: jax.Array  # (S, A, b) float32, expected reward of each branch
    terminal_reward: jax.Array  # (S, A) float32, expected reward of the terminal transition
    terminal_prob: jax.Array  # () float32, probability of terminating from any (s, a)
    start: jax.Array  # () int32, start state
    max_steps_in_episode: int = struct.field(pytree_node=False, default=2**31 - 1)

    @property
    def num_states(self) -> int:
        return self.successors.shape[-3]

    @property
    def num_actions(self) -> int:
        return self.successors.shape[-2]

    @property
    def branching(self) -> int:
        return self.successors.shape[-1]


@struct.dataclass
class RandomMDPState(environment.EnvState):
    pos: jax.Array  # () int32 current state
    time: jax.Array  # () int32 steps in the current episode


def _check_task(num_states, num_actions, branching, terminal_prob) -> tuple[int, int, int]:
    num_states = check_count("num_states", num_states, minimum=1)
    num_actions = check_count("num_actions", num_actions, minimum=1)
    branching = check_count("branching", branching, minimum=1)
    if branching > num_states:
        raise ValueError(
            f"branching must be an integer in [1, num_states={num_states}] (the next states "
            f"of a pair are distinct), got {branching!r}"
        )
    check_in_range("terminal_prob", terminal_prob, 0.0, 1.0)
    return num_states, num_actions, branching


def _distinct_choices(key: PRNGKey, shape: tuple[int, ...], n: int, k: int) -> jax.Array:
    """For every index of ``shape``, ``k`` distinct integers drawn uniformly from
    [0, n) (a uniformly random k-subset), by Floyd's algorithm: O(k^2) work per
    subset instead of the O(n) of a permutation, so 10^4 states stay cheap.

    Floyd: for j = n-k, ..., n-1 draw t uniform in [0, j]; take t unless already
    taken, else take j. Every k-subset is equally likely.
    """
    # draws[i] uniform in [0, n - k + i], all drawn at once
    bounds = (n - k + 1 + jnp.arange(k, dtype=jnp.int32)).reshape((k,) + (1,) * len(shape))
    draws = jax.random.randint(key, (k, *shape), 0, bounds, dtype=jnp.int32)
    chosen = jnp.full((*shape, k), -1, jnp.int32)

    def body(i, chosen):
        t = draws[i]
        taken = jnp.any(chosen == t[..., None], axis=-1)
        return chosen.at[..., i].set(jnp.where(taken, n - k + i, t))

    return jax.lax.fori_loop(0, k, body, chosen)


def random_mdp_params(
    key: PRNGKey,
    num_states: int,
    num_actions: int = 2,
    branching: int = 1,
    terminal_prob=0.1,
) -> RandomMDPParams:
    """A random task of S&B section 8.6 (pure: same key, same task; vmap over keys
    for many tasks). ``num_states``, ``num_actions`` and ``branching`` (b, with
    1 <= b <= num_states) are static; ``terminal_prob`` in [0, 1] may be traced.
    """
    num_states, num_actions, branching = _check_task(
        num_states, num_actions, branching, terminal_prob
    )
    k_succ, k_rew = jax.random.split(key)
    shape = (num_states, num_actions)
    # one normal draw for all rewards: the b branches and, last, the terminal transition
    rewards = jax.random.normal(k_rew, (*shape, branching + 1), jnp.float32)
    return RandomMDPParams(
        successors=_distinct_choices(k_succ, shape, num_states, branching),
        rewards=rewards[..., :branching],
        terminal_reward=rewards[..., branching],
        terminal_prob=jnp.asarray(terminal_prob, jnp.float32),
        start=jnp.zeros((), jnp.int32),
    )


def transition_distribution(params: RandomMDPParams, obs, action) -> TransitionDistribution:
    """The true model of (obs, action): K = b + 1 outcomes, the b branches with
    probability (1 - terminal_prob) / b each (done False) and the terminal outcome
    (last slot) with probability terminal_prob (done True, ``next_obs`` = ``obs``,
    a placeholder: a terminal outcome is never bootstrapped from). ``obs`` is a state
    index, ``action`` in [0, num_actions); for others see the module docstring (inside
    jit: NaN rewards, every other field as for the indices clipped into range)."""
    b = params.successors.shape[-1]
    p = params.terminal_prob
    valid = check_index("transition_distribution", "obs", obs, params.num_states) & (
        check_index("transition_distribution", "action", action, params.num_actions)
    )
    obs = jnp.clip(jnp.asarray(obs, jnp.int32), 0, params.num_states - 1)
    a = jnp.clip(action, 0, params.num_actions - 1)
    next_obs = jnp.append(params.successors[obs, a], obs)
    reward = jnp.append(params.rewards[obs, a], params.terminal_reward[obs, a])
    reward = jnp.where(valid, reward, jnp.nan)
    done = jnp.arange(b + 1) == b
    prob = jnp.where(done, p, (1.0 - p) / b).astype(jnp.float32)
    return TransitionDistribution(obs, action, reward, next_obs, done, prob)


def greedy_policy(q: jax.Array) -> jax.Array:
    """argmax_a Q(s, a) for every state, ties to the lowest action index."""
    return jnp.argmax(q, axis=-1).astype(jnp.int32)


def _policy_backup(params: RandomMDPParams, policy: jax.Array):
    """(succ, r_pi, cont) of the backup v(s) <- r_pi(s) + cont * sum_j v(succ[s, j])."""
    p = params.terminal_prob
    r_sa = (1.0 - p) * params.rewards.mean(-1) + p * params.terminal_reward  # (S, A)
    num_states, num_actions = r_sa.shape
    pair = jnp.arange(num_states) * num_actions + policy  # one flat gather per array
    succ = params.successors.reshape(num_states * num_actions, -1)[pair]  # (S, b)
    r_pi = r_sa.reshape(-1)[pair]
    return succ, r_pi, (1.0 - p) / succ.shape[-1]


def _sweep(succ: jax.Array, r_pi: jax.Array, cont, v: jax.Array) -> jax.Array:
    """One sweep of expected backups: v(s) <- r_pi(s) + cont * sum_j v(succ[s, j])."""
    return r_pi + cont * v[succ].sum(-1)


class _Doubling(NamedTuple):
    """The carry of policy evaluation by doubling: v_m, f^m and (1 - p)^m."""

    value: jax.Array  # (S,)
    succ: jax.Array  # (S,) int32
    decay: jax.Array  # ()


class _Evaluation(NamedTuple):
    """The carry of policy evaluation to a tolerance."""

    value: jax.Array  # (S,) v_n
    bound: jax.Array  # () the a-posteriori error bound after the last block
    sweeps: jax.Array  # () int32 sweeps made


def policy_value(
    params: RandomMDPParams,
    policy: jax.Array,
    num_iterations: int = EVALUATION_ITERATIONS,
    initial_value: jax.Array | None = None,
) -> jax.Array:
    """v_pi for a deterministic ``policy`` (S,) by iterative policy evaluation
    (S&B section 4.1, eq. 4.5, undiscounted): ``num_iterations`` sweeps of exact
    expected backups of every state from ``initial_value`` (default 0),

        v(s) <- r_pi(s) + (1 - p) / b * sum_j v(succ(s, pi(s), j)),

    with r_pi(s) = (1 - p) * mean_j r(s, pi(s), j) + p * r_term(s, pi(s)). A sweep
    is an O(S b) gather; there is no dense (S, S) matrix.

    For b = 1 from v = 0 the policy's successor map is a function f, and n sweeps
    give v_n(s) = sum_{t<n} (1 - p)^t r_pi(f^t(s)); this is computed by pointer
    doubling (v_2m = v_m + (1 - p)^m v_m o f^m, f^2m = f^m o f^m) in
    ceil(log2 n) steps, i.e. 2^ceil(log2 n) >= n sweeps, at O(S log n) cost.
    """
    num_iterations = check_count("num_iterations", num_iterations, minimum=0)
    succ, r_pi, cont = _policy_backup(params, policy)
    if succ.shape[-1] == 1 and initial_value is None and num_iterations > 0:

        def double(_, d: _Doubling) -> _Doubling:
            return _Doubling(d.value + d.decay * d.value[d.succ], d.succ[d.succ], d.decay * d.decay)

        # a loop, not unrolled: fused chains of gathers would be recomputed per element
        doublings = math.ceil(math.log2(num_iterations))
        return jax.lax.fori_loop(0, doublings, double, _Doubling(r_pi, succ[:, 0], cont)).value

    def sweep(_, v):
        return _sweep(succ, r_pi, cont, v)

    v0 = jnp.zeros_like(r_pi) if initial_value is None else initial_value
    return jax.lax.fori_loop(0, num_iterations, sweep, v0)


def policy_value_to_tolerance(
    params: RandomMDPParams,
    policy: jax.Array,
    initial_value: jax.Array,
    tol: float = 1e-3,
    check_every: int = 8,
    max_iterations: int = 100_000,
) -> tuple[jax.Array, jax.Array]:
    """``(v, sweeps)``: iterative policy evaluation (see :func:`policy_value`) from
    ``initial_value`` (e.g. the value of a previous, similar policy), stopped as
    soon as the a-posteriori bound (1 - p) / p * ||v_n - v_{n-1}||_inf, which
    bounds ||v_n - v_pi||_inf for a contraction of modulus 1 - p, is at most
    ``tol`` (checked every ``check_every`` sweeps), or after ``max_iterations``.
    """
    check_count("check_every", check_every, minimum=1)
    check_count("max_iterations", max_iterations, minimum=1)
    succ, r_pi, cont = _policy_backup(params, policy)
    p = params.terminal_prob
    factor = (1.0 - p) / jnp.maximum(p, 1e-30)

    def sweep(_, v):
        return _sweep(succ, r_pi, cont, v)

    def block(e: _Evaluation) -> _Evaluation:
        v = jax.lax.fori_loop(0, check_every - 1, sweep, e.value)
        new = sweep(0, v)
        return _Evaluation(new, factor * jnp.max(jnp.abs(new - v)), e.sweeps + check_every)

    def not_done(e: _Evaluation) -> jax.Array:
        return (e.bound > tol) & (e.sweeps < max_iterations)

    init = _Evaluation(initial_value, jnp.asarray(jnp.inf, r_pi.dtype), jnp.zeros((), jnp.int32))
    final = jax.lax.while_loop(not_done, block, init)
    return final.value, final.sweeps


def greedy_policy_value(
    params: RandomMDPParams, q: jax.Array, num_iterations: int = EVALUATION_ITERATIONS
) -> jax.Array:
    """The value of the start state under the greedy policy of ``q`` (argmax, ties
    to the lowest action): v_pi~(s0), the y axis of S&B Figure 8.8, by
    :func:`policy_value` from v = 0.

    Each sweep is a contraction of modulus 1 - p in the max norm (every transition
    continues with probability 1 - p), so after n sweeps from 0 the error is at
    most (1 - p)^n * max_s |r_pi(s)| / p <= (1 - p)^n * max|r| / p. For the book's
    p = 0.1 and the default n = 120 that is 3.2e-5 * max|r|, below 1e-3 unless a
    reward exceeds 31 in absolute value (for N(0, 1) rewards: never in practice;
    max|r| < 6 over 4e4 draws except with probability < 1e-4, giving an error
    < 2e-4). Smaller p needs more sweeps (see :func:`evaluation_iterations`); with
    p = 0 the undiscounted value need not exist.
    """
    policy = greedy_policy(q)
    return policy_value(params, policy, num_iterations)[params.start]


def evaluation_iterations(
    terminal_prob: float, tol: float = 1e-3, reward_bound: float = 6.0
) -> int:
    """Sweeps n from v = 0 after which (1 - p)^n * reward_bound / p <= tol, the
    a-priori error bound of :func:`greedy_policy_value` (p = 0.1, tol 1e-3: 105)."""
    check_in_range("terminal_prob", terminal_prob, 1e-9, 1.0)
    check_in_range("tol", tol, 1e-30, math.inf)
    if terminal_prob == 1.0:
        return 1
    bound = math.log(tol * terminal_prob / reward_bound) / math.log(1.0 - terminal_prob)
    return max(1, math.ceil(bound))


class RandomMDP(environment.Environment[RandomMDPState, RandomMDPParams]):
    """A random MDP of S&B section 8.6 as a gymnax environment.

    ``step`` draws the outcome: with probability ``terminal_prob`` the episode
    terminates (reward ``terminal_reward[s, a]``, ``info["final_observation"]``
    is the state terminated from, and the next observation is the start state,
    gymnax auto-reset); otherwise one of the b branches uniformly (reward
    ``rewards[s, a, j]``). Rewards are the transitions' expected rewards (see the
    module docstring). ``default_params`` is the task of ``jax.random.key(seed)``
    (made once, at construction); pass other params (e.g. one of a vmapped batch
    of :func:`random_mdp_params`) to ``reset``/``step``.
    """

    def __init__(
        self,
        num_states: int,
        num_actions: int = 2,
        branching: int = 1,
        terminal_prob: float = 0.1,
        seed: int = 0,
    ):
        self._num_states, self._num_actions, self.branching = _check_task(
            num_states, num_actions, branching, terminal_prob
        )
        self.terminal_prob = float(terminal_prob)
        self.seed = check_count("seed", seed, minimum=0)
        with jax.ensure_compile_time_eval():  # concrete arrays even if built under jit
            self._default_params = random_mdp_params(
                jax.random.key(self.seed),
                self._num_states,
                self._num_actions,
                self.branching,
                self.terminal_prob,
            )

    @property
    def default_params(self) -> RandomMDPParams:
        return self._default_params

    @property
    def name(self) -> str:
        return "RandomMDP"

    @property
    def num_actions(self) -> int:
        return self._num_actions

    @property
    def num_states(self) -> int:
        return self._num_states

    def action_space(self, params: RandomMDPParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self._num_actions)

    def observation_space(self, params: RandomMDPParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self._num_states)

    def step(self, key, state: RandomMDPState, action, params: RandomMDPParams | None = None):
        """gymnax's step (jitted, with auto-reset). ``action`` is an integer in
        [0, num_actions); a concrete one out of range is a ValueError here."""
        check_index("RandomMDP.step", "action", action, self._num_actions)
        return super().step(key, state, action, params)

    def step_env(self, key, state: RandomMDPState, action, params: RandomMDPParams):
        valid = check_index("RandomMDP.step", "action", action, params.num_actions)
        action = jnp.clip(action, 0, params.num_actions - 1)
        u = jax.random.uniform(key, (2,))
        b = params.successors.shape[-1]
        branch = jnp.minimum((u[1] * b).astype(jnp.int32), b - 1)
        terminated = (u[0] < params.terminal_prob) & valid
        s = state.pos
        reward = jnp.where(
            terminated, params.terminal_reward[s, action], params.rewards[s, action, branch]
        )
        next_pos = jnp.where(terminated, s, params.successors[s, action, branch])
        next_pos = jnp.where(valid, next_pos, s).astype(jnp.int32)
        new_state = RandomMDPState(pos=next_pos, time=state.time + 1)
        reward = jnp.where(valid, reward.astype(jnp.float32), jnp.nan)
        return next_pos, new_state, reward, terminated, {}

    def reset_env(self, key, params: RandomMDPParams):
        del key
        start = params.start.astype(jnp.int32)
        return start, RandomMDPState(pos=start, time=jnp.zeros((), jnp.int32))

    def is_terminated(self, state: RandomMDPState, params: RandomMDPParams) -> jax.Array:
        return jnp.zeros((), bool)  # the terminal state is left at once (auto-reset)

    def get_obs(self, state: RandomMDPState, params=None, key=None) -> jax.Array:
        return state.pos
