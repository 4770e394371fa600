"""Training runs are functions: ``make_train(env, agent, config) -> train(key)``.

The whole run is one flat loop over time steps (episodes are counted, not
nested), so ``jax.jit(jax.vmap(train))(keys)`` runs many seeds in one call.
Runs measured in episodes use a ``lax.while_loop`` that stops when every run of
the batch has finished; a run that has finished idles, masked, until the others
end. Runs measured in time steps use a ``lax.scan``; they can also be cut into
chunks (:func:`make_train_chunks`), so that a long run is a Python loop over
jitted chunks with checkpoints in between (:mod:`mbrl_jax.checkpoint`).

Before anything runs, both compare the agent's ``spaces`` (when it has them: every
agent of :mod:`mbrl_jax.agents` and every ``dyna`` agent over a library learner) with
the environment's observation and action spaces, and raise a ValueError naming both
when they differ. Inside a run, actions and observations are then in range by
construction. Values that are only seen inside jit (an index out of range given to an
environment, a tabular part or a neural model by hand) cannot raise there; each part
documents its rule for them (a NaN reward or update, never a silent move to another
index), and :func:`checked` runs a function with those checks turned into errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.experimental import checkify

from mbrl_jax.types import Agent, PRNGKey, Spaces, Transition, select_action
from mbrl_jax.validation import check_count


@dataclass(frozen=True)
class TrainConfig:
    """How long a run is: exactly ``num_steps`` time steps, or ``num_episodes``
    episodes (at most ``max_steps`` time steps, after which unfinished episodes
    are reported as missing: length -1).

    A run measured in time steps logs its metrics after every ``log_every``-th
    step (``num_steps // log_every`` values), so that long runs keep little memory.
    """

    num_steps: int | None = None
    num_episodes: int | None = None
    max_steps: int = 1_000_000
    log_every: int = 1

    def __post_init__(self):
        if (self.num_steps is None) == (self.num_episodes is None):
            raise ValueError(
                "TrainConfig needs exactly one of num_steps or num_episodes, got "
                f"num_steps={self.num_steps!r}, num_episodes={self.num_episodes!r}"
            )
        if self.num_steps is not None:
            check_count("num_steps", self.num_steps, minimum=1)
        if self.num_episodes is not None:
            check_count("num_episodes", self.num_episodes, minimum=1)
        check_count("max_steps", self.max_steps, minimum=1)
        check_count("log_every", self.log_every, minimum=1)
        if self.num_episodes is not None and self.log_every != 1:
            raise ValueError(
                "log_every applies to runs measured in time steps (num_steps), got "
                f"log_every={self.log_every!r} with num_episodes={self.num_episodes!r}"
            )
        if self.num_steps is not None:
            _check_multiple("num_steps", self.num_steps, self.log_every)


def _check_multiple(name: str, value: int, log_every: int) -> None:
    """Raise ValueError unless ``value`` is a multiple of ``log_every``."""
    if value % log_every:
        raise ValueError(
            f"{name} must be a multiple of log_every={log_every}, got {name}={value!r}"
        )


class EpisodeMetrics(NamedTuple):
    episode_length: jax.Array  # (num_episodes,) int32, time steps per episode; -1 if unfinished
    episode_return: jax.Array  # (num_episodes,) float32, undiscounted return; nan if unfinished
    total_steps: jax.Array  # () int32, time steps this run took


class StepMetrics(NamedTuple):
    """Logged after every ``log_every``-th time step t (t = log_every, 2 log_every, ...)."""

    cumulative_reward: jax.Array  # (num_steps // log_every,) float32, reward summed up to step t
    episodes: jax.Array  # (num_steps // log_every,) int32, episodes finished up to step t


class TrainCarry(NamedTuple):
    """The whole state of a run between two time steps: what a chunked run carries
    from one chunk to the next, and what a checkpoint saves."""

    agent_state: Any
    env_state: Any
    obs: Any
    key: PRNGKey
    cumulative_reward: jax.Array  # () float32, reward summed over all steps so far
    episodes: jax.Array  # () int32, episodes finished so far


class TrainChunks(NamedTuple):
    """A run measured in time steps, in pieces: ``start(key) -> carry`` and
    ``run_chunk(carry, num_steps) -> (carry, metrics)``, which runs ``num_steps`` (a
    static Python int, a multiple of ``log_every``) more time steps."""

    start: Callable[[PRNGKey], TrainCarry]
    run_chunk: Callable[[TrainCarry, int], tuple[TrainCarry, StepMetrics]]


def checked(fn: Callable) -> Callable:
    """``fn`` jitted with the in-jit input checks of the library's parts turned into
    errors: ``checked(train)(key)`` raises (a ``checkify.JaxRuntimeError`` naming the
    part, the value and the range allowed) where an index out of range reached an
    environment, a tabular part or a neural model, instead of that part's NaN rule.

    Built on ``jax.experimental.checkify`` (``errors=checkify.user_checks``); the
    checks cost nothing when a function is not run through ``checked``.
    """
    run = jax.jit(checkify.checkify(fn, errors=checkify.user_checks))

    def checked_fn(*args, **kwargs):
        error, out = run(*args, **kwargs)
        error.throw()
        return out

    return checked_fn


def _describe(space: Any) -> str:
    """A gymnax space in words: ``Discrete(54)`` or ``Box(shape=(4,))``."""
    if getattr(space, "n", None) is not None:
        return f"Discrete({int(space.n)})"
    return f"Box(shape={tuple(space.shape)})"


def _same_space(agents: Any, envs: Any) -> bool:
    """Whether two gymnax spaces agree: both Discrete of the same n, or both Box of the
    same shape (bounds are not compared). A scalar Box of shape () is a vector of 1."""
    discrete = [getattr(space, "n", None) is not None for space in (agents, envs)]
    if discrete[0] or discrete[1]:
        return discrete[0] == discrete[1] and int(agents.n) == int(envs.n)
    shapes = [tuple(space.shape) or (1,) for space in (agents, envs)]
    return shapes[0] == shapes[1]


def _check_spaces(env, env_params, agent: Agent, who: str) -> None:
    """ValueError unless the agent's spaces (when known) match the environment's."""
    if agent.spaces is None:
        return
    env_spaces = Spaces(env.observation_space(env_params), env.action_space(env_params))
    name = getattr(env, "name", type(env).__name__)
    for kind, mine, theirs in zip(("observation", "action"), agent.spaces, env_spaces, strict=True):
        if not _same_space(mine, theirs):
            raise ValueError(
                f"{who}: the agent was built for the {kind} space {_describe(mine)} but the "
                f"environment {name} has {_describe(theirs)}; build the agent for this "
                f"environment's spaces (num_states/obs_size and num_actions/action_space)"
            )


def _checked_params(env, env_params, agent: Agent, who: str):
    """``env_params`` (the environment's defaults when None), once the agent's spaces
    are checked against the environment's (:func:`_check_spaces`)."""
    if env_params is None:
        env_params = env.default_params
    _check_spaces(env, env_params, agent, who)
    return env_params


def _make_start(env, env_params, agent: Agent) -> Callable[[PRNGKey], TrainCarry]:
    """``start(key) -> carry``: a fresh agent, a reset environment, nothing counted yet."""

    def start(key: PRNGKey) -> TrainCarry:
        k_agent, k_env, k_loop = jax.random.split(key, 3)
        obs, env_state = env.reset(k_env, env_params)
        zero_f, zero_i = jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)
        return TrainCarry(agent.init(k_agent), env_state, obs, k_loop, zero_f, zero_i)

    return start


def _make_env_step(env, env_params, agent: Agent):
    """One real time step: act, step the environment, update the agent, count."""

    def env_step(carry: TrainCarry):
        key, k_act, k_env, k_update = jax.random.split(carry.key, 4)
        action, agent_state = select_action(agent, carry.agent_state, carry.obs, k_act)
        obs, env_state, reward, terminated, truncated, info = env.step(
            k_env, carry.env_state, action, env_params
        )
        transition = Transition(
            carry.obs, action, reward, info["final_observation"], jnp.asarray(terminated)
        )
        agent_state = agent.update(agent_state, transition, k_update)
        episode_over = jnp.logical_or(terminated, truncated)
        carry = TrainCarry(
            agent_state,
            env_state,
            obs,
            key,
            carry.cumulative_reward + reward,
            carry.episodes + episode_over.astype(jnp.int32),
        )
        return carry, reward, episode_over

    return env_step


def _make_run_chunk(env_step, log_every: int):
    """``run_chunk(carry, num_steps) -> (carry, StepMetrics)``: a scan over
    ``num_steps // log_every`` logged steps, each a scan over ``log_every`` time steps."""

    def advance(carry: TrainCarry, _):
        return env_step(carry)[0], None

    def logged(carry: TrainCarry, _):
        carry, _ = jax.lax.scan(advance, carry, None, length=log_every)
        return carry, StepMetrics(carry.cumulative_reward, carry.episodes)

    def run_chunk(carry: TrainCarry, num_steps: int) -> tuple[TrainCarry, StepMetrics]:
        check_count("num_steps", num_steps, minimum=1)
        _check_multiple("num_steps", num_steps, log_every)
        return jax.lax.scan(logged, carry, None, length=num_steps // log_every)

    return run_chunk


def make_train_chunks(env, agent: Agent, config: TrainConfig, env_params=None) -> TrainChunks:
    """``(start, run_chunk)`` of a run measured in time steps (``config.num_steps``).

    ``start(key)`` then ``run_chunk(carry, config.num_steps)`` is the run of
    :func:`make_train`; cutting the same steps into several chunks gives the same
    final carry and (concatenated) metrics, bit for bit. Both are pure and
    jittable (``num_steps`` static); :func:`mbrl_jax.checkpoint.run_with_checkpoints`
    loops over chunks and saves the carry in between.
    """
    if config.num_steps is None:
        raise ValueError(
            "make_train_chunks needs a run measured in time steps "
            f"(TrainConfig(num_steps=...)), got num_episodes={config.num_episodes!r}"
        )
    env_params = _checked_params(env, env_params, agent, "make_train_chunks")
    env_step = _make_env_step(env, env_params, agent)
    return TrainChunks(
        _make_start(env, env_params, agent), _make_run_chunk(env_step, config.log_every)
    )


def make_train(env, agent: Agent, config: TrainConfig, env_params=None):
    """``train(key) -> (agent_state, metrics)`` for ``agent`` on a gymnax ``env``.

    Metrics are :class:`EpisodeMetrics` (steps and return per episode) when the
    run is measured in episodes, :class:`StepMetrics` (cumulative reward per time
    step, or per ``log_every`` steps) when it is measured in time steps.

    ``env`` is a gymnax environment (``reset``, ``step``, ``observation_space``,
    ``action_space``); an agent with ``spaces`` must match its spaces (a ValueError
    naming both otherwise, before anything is traced).
    """
    env_params = _checked_params(env, env_params, agent, "make_train")
    if config.num_steps is not None:
        start, run_chunk = make_train_chunks(env, agent, config, env_params)

        def train_steps(key: PRNGKey):
            carry, metrics = run_chunk(start(key), config.num_steps)
            return carry.agent_state, metrics

        return train_steps

    loop = make_train_loop(env, agent, config, env_params)

    def train_episodes(key: PRNGKey):
        return loop.result(jax.lax.while_loop(loop.running, loop.step, loop.start(key)))

    return train_episodes


class TrainLoop(NamedTuple):
    """A run measured in episodes, as the parts of its loop: ``start(key) -> loop``,
    ``step(loop) -> loop`` (one time step), ``running(loop) -> bool`` and
    ``result(loop)``, by default ``(agent_state, EpisodeMetrics)``. The run of
    :func:`make_train` is ``result(while_loop(running, step, start(key)))``;
    :func:`run_in_lanes` runs many keys through fewer lanes. Replace ``result`` (a
    NamedTuple's ``_replace``) to keep less of each run."""

    start: Callable[[PRNGKey], Any]
    step: Callable[[Any], Any]
    running: Callable[[Any], jax.Array]
    result: Callable[[Any], Any]


def make_train_loop(env, agent: Agent, config: TrainConfig, env_params=None) -> TrainLoop:
    """The :class:`TrainLoop` of :func:`make_train`'s run measured in episodes
    (``config.num_episodes``); the spaces are checked as there."""
    if config.num_episodes is None:
        raise ValueError(
            "make_train_loop needs a run measured in episodes "
            f"(TrainConfig(num_episodes=...)), got num_steps={config.num_steps!r}"
        )
    env_params = _checked_params(env, env_params, agent, "make_train_loop")
    start = _make_start(env, env_params, agent)
    env_step = _make_env_step(env, env_params, agent)
    num_episodes, max_steps = config.num_episodes, config.max_steps

    def begin(key: PRNGKey) -> _EpisodeLoop:
        return _episode_loop_init(start(key), num_episodes)

    def running(loop: _EpisodeLoop) -> jax.Array:
        return (loop.carry.episodes < num_episodes) & (loop.t < max_steps)

    def step(loop: _EpisodeLoop) -> _EpisodeLoop:
        return _episode_step(env_step, loop)

    def result(loop: _EpisodeLoop):
        return loop.carry.agent_state, EpisodeMetrics(loop.lengths, loop.returns, loop.t)

    return TrainLoop(begin, step, running, result)


class _Lanes(NamedTuple):
    """The carry of :func:`run_in_lanes`."""

    loops: Any  # every lane's run, leading axis lanes
    run: jax.Array  # (lanes,) int32, the run a lane holds; num_runs once it is idle
    next_run: jax.Array  # () int32, the first run not yet started
    results: Any  # every run's result, leading axis num_runs, written as it finishes


def _select(mask: jax.Array, new: Any, old: Any) -> Any:
    """Per lane (the leading axis), ``new`` where ``mask`` else ``old``."""
    return jax.vmap(lambda m, a, b: jax.tree.map(lambda x, y: jnp.where(m, x, y), a, b))(
        mask, new, old
    )


def run_in_lanes(loop: TrainLoop, keys: jax.Array, lanes: int) -> Any:
    """``loop``'s runs for ``keys`` (one run per key) through ``lanes`` vmapped lanes:
    each lane runs one run to its end, then starts the next run not yet started.
    Returns every run's ``loop.result`` (leading axis: the keys), equal bit for bit
    to ``jax.vmap(train)(keys)`` of :func:`make_train` for two lanes or more (one lane,
    like a vmapped call of one run, compiles to other roundings in the last ulp).

    Runs measured in episodes take different numbers of steps, and a vmapped
    ``while_loop`` steps every run until the longest has finished: for Dyna-Q on the
    Dyna maze the longest of 1,000 runs takes several times the mean, so most of such
    a call is masked steps. In lanes a call takes about ``total steps / lanes`` steps
    (plus the last runs' tail), and as many lanes as fit in the cache serve any
    number of runs.
    """
    num_runs = keys.shape[0]
    lanes = min(check_count("lanes", lanes, minimum=1), num_runs)
    start, step, running = (jax.vmap(f) for f in (loop.start, loop.step, loop.running))
    shapes = jax.eval_shape(loop.result, jax.eval_shape(loop.start, keys[0]))
    results = jax.tree.map(lambda s: jnp.zeros((num_runs, *s.shape), s.dtype), shapes)
    first = jnp.arange(lanes, dtype=jnp.int32)
    init = _Lanes(start(keys[:lanes]), first, jnp.asarray(lanes, jnp.int32), results)

    def refill(carry: _Lanes, finished: jax.Array) -> _Lanes:
        """Store the finished lanes' results and start the next runs in those lanes."""
        rows = jnp.where(finished, carry.run, num_runs)  # num_runs: dropped
        done = jax.vmap(loop.result)(carry.loops)
        results = jax.tree.map(
            lambda buffer, value: buffer.at[rows].set(value, mode="drop"), carry.results, done
        )
        queued = carry.next_run + jnp.cumsum(finished, dtype=jnp.int32) - 1
        run = jnp.where(finished, jnp.minimum(queued, num_runs), carry.run)
        fresh = start(keys[jnp.minimum(run, num_runs - 1)])
        next_run = carry.next_run + finished.sum(dtype=jnp.int32)
        return _Lanes(_select(finished, fresh, carry.loops), run, next_run, results)

    def body(carry: _Lanes) -> _Lanes:
        holding = carry.run < num_runs
        loops = _select(holding & running(carry.loops), step(carry.loops), carry.loops)
        carry = carry._replace(loops=loops)
        finished = holding & ~running(loops)
        return jax.lax.cond(finished.any(), refill, lambda carry, _: carry, carry, finished)

    def busy(carry: _Lanes) -> jax.Array:
        return (carry.run < num_runs).any()

    return jax.lax.while_loop(busy, body, init).results


class _EpisodeLoop(NamedTuple):
    """The carry of a run measured in episodes."""

    carry: TrainCarry
    t: jax.Array  # () int32 time steps taken
    length: jax.Array  # () int32 steps of the current episode so far
    ret: jax.Array  # () float32 return of the current episode so far
    lengths: jax.Array  # (num_episodes,) int32, -1 until the episode has finished
    returns: jax.Array  # (num_episodes,) float32, nan until the episode has finished


def _episode_loop_init(carry: TrainCarry, num_episodes: int) -> _EpisodeLoop:
    zero_i, zero_f = jnp.zeros((), jnp.int32), jnp.zeros((), jnp.float32)
    return _EpisodeLoop(
        carry,
        zero_i,
        zero_i,
        zero_f,
        jnp.full((num_episodes,), -1, jnp.int32),
        jnp.full((num_episodes,), jnp.nan, jnp.float32),
    )


def _episode_step(env_step, loop: _EpisodeLoop) -> _EpisodeLoop:
    """One time step; a finished episode's length and return are written to its slot."""
    episode = loop.carry.episodes
    carry, reward, episode_over = env_step(loop.carry)
    length, ret = loop.length + 1, loop.ret + reward
    # A masked select over the small metrics arrays: cheaper than a scatter under vmap.
    write = episode_over & (jnp.arange(loop.lengths.shape[0]) == episode)
    return _EpisodeLoop(
        carry,
        loop.t + 1,
        jnp.where(episode_over, 0, length),
        jnp.where(episode_over, 0.0, ret),
        jnp.where(write, length, loop.lengths),
        jnp.where(write, ret, loop.returns),
    )
