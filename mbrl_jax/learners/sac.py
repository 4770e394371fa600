"""Soft actor-critic with automatic temperature (Haarnoja et al. 2018, "Soft actor-critic
algorithms and applications", sections 4-5).

The same ``Learner(init, act, update)`` triple as DQN, for a continuous (``Box``) action
space. The actor is a tanh-squashed Gaussian, a = tanh(u), u ~ N(mu(s), sigma(s)^2),
scaled to the Box; two critics Q_1, Q_2 have Polyak-averaged targets Qbar_i. One gradient
step on a batch (s, a, r, s', done) updates, in this order,

    critics      L_Q  = sum_i mean 1/2 (Q_i(s, a) - y)^2,
                 y    = r + gamma (1 - done) (min_i Qbar_i(s', a') - alpha log pi(a'|s')),
                        a' ~ pi(.|s')
    actor        L_pi = mean  alpha log pi(a~|s) - min_i Q_i(s, a~),   a~ ~ pi(.|s)
                        (reparameterized, under the new critics)
    temperature  L_alpha = mean  -log(alpha) (log pi(a~|s) + H_target)
    targets      Qbar_i <- tau Q_i + (1 - tau) Qbar_i

with alpha = exp(log alpha) and H_target the target entropy (-dim(A) by default).

A single transition (no leading batch axis) is *real* experience: it is stored in the
learner's replay, counted as an environment step, and ``replay_updates`` gradient steps
follow on minibatches of real replay once ``learning_starts`` transitions are stored. A
batch (B, obs_size) is *simulated* experience (a model's, through :func:`mbrl_jax.dyna`):
with ``model_capacity > 0`` it is stored in a buffer of model transitions and one step is
taken on a minibatch whose first round(real_ratio x batch_size) rows are real replay and
the rest model transitions (MBPO, Janner et al. 2019); with ``model_capacity = 0`` the
step is on the given batch itself, with the same share of its rows replaced by real ones.
So with no planning the learner is plain SAC.

A step whose losses are not all finite changes nothing but ``SACState.nan_update``;
:func:`check_sac_training` raises on it outside jit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from gymnax.environments import spaces as spaces_lib

from mbrl_jax.hyperparameters import traced
from mbrl_jax.learners.dqn import _replay
from mbrl_jax.replay import (
    ReplayBuffer,
    buffer_add,
    buffer_add_batch,
    buffer_init,
    buffer_sample,
)
from mbrl_jax.types import Learner, PRNGKey, Spaces, Transition
from mbrl_jax.validation import (
    check_count,
    check_in_range,
    check_positive,
    check_up_to_one,
    continuous_action_shape,
    raise_on_nan,
)

LOG_STD_BOUNDS = (-5.0, 2.0)


class GaussianActor(nn.Module):
    """An MLP from an observation to the mean and log standard deviation of u (ReLU);
    the log standard deviation is clipped to :data:`LOG_STD_BOUNDS`."""

    hidden: tuple[int, ...]
    action_size: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = obs
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        mean, log_std = jnp.split(nn.Dense(2 * self.action_size)(x), 2, axis=-1)
        return mean, jnp.clip(log_std, *LOG_STD_BOUNDS)


class QCritic(nn.Module):
    """An MLP from (observation, action) to one Q-value (ReLU)."""

    hidden: tuple[int, ...]

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        x = jnp.concatenate([obs, action], axis=-1)
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(1)(x)[..., 0]


def squashed_gaussian_log_prob(mean: jax.Array, log_std: jax.Array, u: jax.Array) -> jax.Array:
    """log pi(a) of a = tanh(u), u ~ N(mean, exp(log_std)^2), summed over the last axis:

        log pi(a) = sum_j [ log N(u_j; mean_j, std_j) - log(1 - tanh(u_j)^2) ]

    with log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), exact and stable for large
    |u| (Haarnoja et al. 2018, appendix C)."""
    std = jnp.exp(log_std)
    gaussian = -0.5 * ((u - mean) / std) ** 2 - log_std - 0.5 * jnp.log(2 * jnp.pi)
    log_det = 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return jnp.sum(gaussian - log_det, axis=-1)


def squashed_gaussian_sample(
    mean: jax.Array, log_std: jax.Array, key: PRNGKey
) -> tuple[jax.Array, jax.Array]:
    """(a, log pi(a)): a reparameterized draw a = tanh(mean + std eps), eps ~ N(0, I), in
    (-1, 1), and its log-density (:func:`squashed_gaussian_log_prob`)."""
    u = mean + jnp.exp(log_std) * jax.random.normal(key, jnp.shape(mean))
    return jnp.tanh(u), squashed_gaussian_log_prob(mean, log_std, u)


def soft_q_target(
    reward: jax.Array,
    done: jax.Array,
    next_q: jax.Array,
    next_log_prob: jax.Array,
    temperature: Any,
    gamma: Any,
) -> jax.Array:
    """The soft Bellman target y = r + gamma (1 - done) (min_i Qbar_i(s', a') - alpha
    log pi(a'|s')); ``next_q`` holds the target critics' values on its first axis."""
    soft_value = jnp.min(next_q, axis=0) - temperature * next_log_prob
    return reward + gamma * jnp.where(done, 0.0, soft_value)


def temperature_loss(log_temperature: jax.Array, log_prob: jax.Array, target_entropy: Any):
    """L(alpha) = mean -log(alpha) (log pi(a|s) + H_target), the log-probabilities held
    fixed: alpha rises while the policy's entropy is below the target."""
    return -jnp.mean(log_temperature * jax.lax.stop_gradient(log_prob + target_entropy))


class SACLosses(NamedTuple):
    critic: jax.Array  # () L_Q of the last gradient step
    actor: jax.Array  # () L_pi
    temperature: jax.Array  # () L_alpha
    entropy: jax.Array  # () -mean log pi(a~|s) of the last step's batch


class SACState(NamedTuple):
    actor: Any  # the actor's flax parameters
    critic: Any  # the twin critics' parameters, stacked on a leading axis of 2
    target_critic: Any  # their Polyak averages
    log_temperature: jax.Array  # () log alpha
    actor_opt: Any
    critic_opt: Any
    temperature_opt: Any
    buffer: ReplayBuffer  # real transitions, as flat rows (see _row)
    model_buffer: ReplayBuffer | None  # simulated transitions (model_capacity > 0)
    env_steps: jax.Array  # () int32 real transitions seen
    updates: jax.Array  # () int32 gradient steps taken, on real and simulated batches
    losses: SACLosses
    nan_update: jax.Array  # () int32 first update whose losses were not finite; -1 if none


class SAC(NamedTuple):
    """The ``Learner(init, act, update)`` triple plus what planners and evaluation read
    from the state: ``policy(state, obs, key)`` (sampled actions for a batch of
    observations (B, obs_size)), ``mean_action(state, obs)`` (the squashed mean, the
    greedy action) and ``value(state, obs)`` (min_i Q_i(s, mean_action(s)), (B,): a value
    to bootstrap a decision-time search with)."""

    init: Callable[[PRNGKey], SACState]
    act: Callable[[SACState, Any, PRNGKey], jax.Array]
    update: Callable[[SACState, Transition, PRNGKey], SACState]
    policy: Callable[[SACState, jax.Array, PRNGKey], jax.Array]
    mean_action: Callable[[SACState, jax.Array], jax.Array]
    value: Callable[[SACState, jax.Array], jax.Array]
    spaces: Spaces | None = None

    @property
    def learner(self) -> Learner:
        return Learner(self.init, self.act, self.update, self.spaces)


class _SACRule(NamedTuple):
    """What a gradient step needs besides the state: fixed by the factory."""

    actor: GaussianActor
    critic: QCritic
    optimizer: optax.GradientTransformation
    low: np.ndarray  # (A,) the Box's bounds
    high: np.ndarray
    gamma: Any
    tau: Any
    target_entropy: Any


class _Replay(NamedTuple):
    """How transitions are replayed: fixed by the factory."""

    obs_size: int
    action_size: int
    capacity: int
    model_capacity: int
    batch_size: int
    learning_starts: int
    updates: int  # gradient steps per real transition
    real_ratio: Any


def _scaled(rule: _SACRule, unit_action: jax.Array) -> jax.Array:
    """An action in (-1, 1) mapped affinely onto the Box [low, high]."""
    return rule.low + 0.5 * (unit_action + 1.0) * (rule.high - rule.low)


def _log_scale(rule: _SACRule) -> jax.Array:
    """log |da/du| of the affine map onto the Box, summed over the action's entries."""
    return jnp.sum(jnp.log(0.5 * (rule.high - rule.low)))


def _sample_action(rule: _SACRule, actor_params, obs, key) -> tuple[jax.Array, jax.Array]:
    """(action in the Box, its log-density) drawn from the actor at ``obs``."""
    mean, log_std = rule.actor.apply(actor_params, obs)
    unit, log_prob = squashed_gaussian_sample(mean, log_std, key)
    return _scaled(rule, unit), log_prob - _log_scale(rule)


def _twin_q(rule: _SACRule, critic_params, obs, action) -> jax.Array:
    """(2, B) the twin critics' values."""
    return jax.vmap(rule.critic.apply, in_axes=(0, None, None))(critic_params, obs, action)


def _critic_loss(rule: _SACRule, critic_params, state: SACState, batch: Transition, key):
    next_action, next_log_prob = _sample_action(rule, state.actor, batch.next_obs, key)
    next_q = _twin_q(rule, state.target_critic, batch.next_obs, next_action)
    temperature = jnp.exp(state.log_temperature)
    target = soft_q_target(batch.reward, batch.done, next_q, next_log_prob, temperature, rule.gamma)
    q = _twin_q(rule, critic_params, batch.obs, batch.action)
    return jnp.sum(jnp.mean(0.5 * (q - jax.lax.stop_gradient(target)) ** 2, axis=1))


def _actor_loss(rule: _SACRule, actor_params, critic_params, log_temperature, obs, key):
    action, log_prob = _sample_action(rule, actor_params, obs, key)
    q = jnp.min(_twin_q(rule, critic_params, obs, action), axis=0)
    return jnp.mean(jnp.exp(log_temperature) * log_prob - q), log_prob


def _gradient_step(
    rule: _SACRule, state: SACState, batch: Transition, apply: jax.Array, key: PRNGKey
) -> SACState:
    """One step of the module docstring's losses where ``apply`` holds; a step whose
    losses are not all finite changes nothing but ``nan_update``."""
    k_critic, k_actor = jax.random.split(key)
    critic_loss, critic_grads = jax.value_and_grad(_critic_loss, argnums=1)(
        rule, state.critic, state, batch, k_critic
    )
    critic_step, critic_opt = rule.optimizer.update(critic_grads, state.critic_opt, state.critic)
    critic = optax.apply_updates(state.critic, critic_step)
    (actor_loss, log_prob), actor_grads = jax.value_and_grad(_actor_loss, argnums=1, has_aux=True)(
        rule, state.actor, critic, state.log_temperature, batch.obs, k_actor
    )
    actor_step, actor_opt = rule.optimizer.update(actor_grads, state.actor_opt, state.actor)
    alpha_loss, alpha_grad = jax.value_and_grad(temperature_loss)(
        state.log_temperature, log_prob, rule.target_entropy
    )
    alpha_step, temperature_opt = rule.optimizer.update(
        alpha_grad, state.temperature_opt, state.log_temperature
    )
    losses = SACLosses(critic_loss, actor_loss, alpha_loss, -jnp.mean(log_prob))
    finite = jnp.all(jnp.isfinite(jnp.stack(losses)))
    take = apply & finite
    learned = (state.actor, state.critic, state.target_critic, state.log_temperature,
               state.actor_opt, state.critic_opt, state.temperature_opt)  # fmt: skip
    stepped = (
        optax.apply_updates(state.actor, actor_step), critic,
        optax.incremental_update(critic, state.target_critic, rule.tau),
        state.log_temperature + alpha_step, actor_opt, critic_opt, temperature_opt,
    )  # fmt: skip
    kept = optax.tree.where(take, stepped, learned)
    first_bad = apply & ~finite & (state.nan_update < 0)
    return state._replace(
        **dict(zip(SACState._fields[:7], kept, strict=True)),
        updates=state.updates + take.astype(jnp.int32),
        losses=optax.tree.where(apply, losses, state.losses),
        nan_update=jnp.where(first_bad, state.updates, state.nan_update),
    )


def _row(transition: Transition) -> jax.Array:
    """A transition (or a batch of them) as float32 replay rows ``[obs, action, reward,
    next_obs, done]``: one flat ring, a write one row update, a minibatch one gather."""
    scalars = [jnp.asarray(transition.reward)[..., None], jnp.asarray(transition.done)[..., None]]
    parts = [transition.obs, transition.action, scalars[0], transition.next_obs, scalars[1]]
    return jnp.concatenate([jnp.asarray(p, jnp.float32) for p in parts], axis=-1)


def _transitions(rows: jax.Array, obs_size: int, action_size: int) -> Transition:
    """Replay rows (B, 2 obs_size + action_size + 2) back as a batch of transitions."""
    action_end = obs_size + action_size
    return Transition(
        rows[:, :obs_size],
        rows[:, obs_size:action_end],
        rows[:, action_end],
        rows[:, action_end + 1 : action_end + 1 + obs_size],
        rows[:, -1] > 0.5,
    )


def _mixed(real_rows: jax.Array, model_rows: jax.Array, real_ratio: Any) -> jax.Array:
    """The first round(real_ratio B) rows from ``real_rows``, the rest from
    ``model_rows`` (both (B, row)); ``real_ratio`` may be traced."""
    size = real_rows.shape[0]
    real = jnp.arange(size) < jnp.round(real_ratio * size)
    return jnp.where(real[:, None], real_rows, model_rows)


def _real_update(
    rule: _SACRule, replay: _Replay, state: SACState, transition: Transition, key: PRNGKey
) -> SACState:
    """Store a real transition, count it, and take ``replay.updates`` gradient steps on
    real minibatches once ``learning_starts`` transitions are stored."""
    buffer = buffer_add(state.buffer, _row(transition))
    state = state._replace(buffer=buffer, env_steps=state.env_steps + 1)
    ready = buffer.size >= max(replay.learning_starts, 1)

    def replay_step(i, state: SACState) -> SACState:
        k_sample, k_step = jax.random.split(jax.random.fold_in(key, i))
        rows = buffer_sample(buffer, k_sample, replay.batch_size)
        batch = _transitions(rows, replay.obs_size, replay.action_size)
        return _gradient_step(rule, state, batch, ready, k_step)

    if replay.updates == 1:
        return replay_step(0, state)
    return jax.lax.fori_loop(0, replay.updates, replay_step, state)


def _simulated_update(
    rule: _SACRule, replay: _Replay, state: SACState, batch: Transition, key: PRNGKey
) -> SACState:
    """Learn from a batch of model transitions: stored in the model buffer and one step
    on a minibatch mixed with real replay at ``real_ratio`` (see the module docstring)."""
    k_real, k_model, k_step = jax.random.split(key, 3)
    rows = _row(batch)
    if state.model_buffer is not None:
        model_buffer = buffer_add_batch(state.model_buffer, rows)
        state = state._replace(model_buffer=model_buffer)
        rows = buffer_sample(model_buffer, k_model, replay.batch_size)
    real_rows = buffer_sample(state.buffer, k_real, rows.shape[0])
    mixed = _mixed(real_rows, rows, replay.real_ratio)
    minibatch = _transitions(mixed, replay.obs_size, replay.action_size)
    return _gradient_step(rule, state, minibatch, jnp.asarray(True), k_step)


def _check_batch(transition: Transition, obs_size: int, action_size: int) -> bool:
    """True for a (B, obs_size) batch, False for one (obs_size,) transition; ValueError
    for observations or actions of any other shape."""
    obs_shape, action_shape = jnp.shape(transition.obs), jnp.shape(transition.action)
    batched = len(obs_shape) == 2
    lead = obs_shape[:1] if batched else ()
    if obs_shape[-1:] != (obs_size,) or len(obs_shape) > 2 or action_shape != (*lead, action_size):
        raise ValueError(
            f"the SAC learner was built for observations of shape ({obs_size},) and actions "
            f"of shape ({action_size},) (or a batch of both), got obs of shape {obs_shape} "
            f"and action of shape {action_shape}"
        )
    return batched


def _sac_rule(
    obs_size: int,
    action_space: Any,
    *,
    hidden: Sequence[int],
    learning_rate: Any,
    gamma: Any,
    tau: Any,
    target_entropy: Any,
) -> _SACRule:
    """The networks, the optimizer and the loss settings, every value checked."""
    shape = continuous_action_shape(action_space, "sac")
    if len(shape) != 1:
        raise ValueError(f"sac needs a Box of vector actions (rank 1), got shape {shape}")
    low = np.broadcast_to(np.asarray(action_space.low, np.float32), shape)
    high = np.broadcast_to(np.asarray(action_space.high, np.float32), shape)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(low < high)):
        raise ValueError(f"sac needs finite action bounds low < high, got [{low}, {high}]")
    hidden = tuple(check_count("hidden width", w, minimum=1) for w in hidden)
    check_positive("learning_rate", learning_rate)
    check_in_range("gamma", gamma, 0.0, 1.0)
    check_up_to_one("tau", tau)
    target_entropy = -float(shape[0]) if target_entropy is None else target_entropy
    return _SACRule(
        GaussianActor(hidden, shape[0]), QCritic(hidden), optax.adam(learning_rate),
        low, high, gamma, tau, target_entropy,
    )  # fmt: skip


def _sac_replay(
    obs_size: int, action_size: int, capacity, model_capacity, batch_size, learning_starts,
    updates, real_ratio,
) -> _Replay:  # fmt: skip
    """The replay settings, checked as DQN's (:func:`~mbrl_jax.learners.dqn._replay`)
    plus the model buffer's."""
    real = _replay(capacity, batch_size, learning_starts, updates)
    check_in_range("real_ratio", real_ratio, 0.0, 1.0)
    return _Replay(
        obs_size, action_size, real.capacity,
        check_count("model_capacity", model_capacity, minimum=0), real.batch_size,
        real.learning_starts, real.updates, real_ratio,
    )  # fmt: skip


def _init_state(rule: _SACRule, replay: _Replay, init_temperature: Any, key: PRNGKey) -> SACState:
    k_actor, k_critic = jax.random.split(key)
    obs = jnp.zeros((replay.obs_size,))
    action = jnp.zeros((replay.action_size,))
    actor = rule.actor.init(k_actor, obs)
    critic = jax.vmap(rule.critic.init, in_axes=(0, None, None))(
        jax.random.split(k_critic), obs, action
    )
    log_temperature = jnp.log(jnp.asarray(init_temperature, jnp.float32))
    row = jnp.zeros((2 * replay.obs_size + replay.action_size + 2,))
    model_buffer = buffer_init(row, replay.model_capacity) if replay.model_capacity else None
    zero, nan = jnp.zeros((), jnp.int32), jnp.full((), jnp.nan)
    return SACState(
        actor, critic, critic, log_temperature,
        rule.optimizer.init(actor), rule.optimizer.init(critic),
        rule.optimizer.init(log_temperature),
        buffer_init(row, replay.capacity), model_buffer, zero, zero,
        SACLosses(nan, nan, nan, nan), zero - 1,
    )  # fmt: skip


def check_sac_training(state: SACState, where: str = "SAC") -> None:
    """Raise FloatingPointError (outside jit) if a SAC loss was NaN or inf; ``state``
    may carry leading batch axes (seeds)."""
    raise_on_nan(state.nan_update, f"{where}: a loss", "gradient update")


@traced("learning_rate", "gamma", "tau", "init_temperature", "target_entropy", "real_ratio")
def sac(
    obs_size: int,
    action_space: Any,
    *,
    hidden: Sequence[int] = (256, 256),
    learning_rate: Any = 3e-4,
    gamma: Any = 0.99,
    tau: Any = 0.005,
    init_temperature: Any = 1.0,
    target_entropy: Any = None,
    batch_size: int = 256,
    capacity: int = 100_000,
    learning_starts: int = 1_000,
    replay_updates: int = 1,
    real_ratio: Any = 0.05,
    model_capacity: int = 0,
) -> SAC:
    """SAC over observation vectors of size ``obs_size`` and a ``Box`` ``action_space``
    of vector actions (see the module docstring for the update).

    The actor and both critics are ReLU MLPs of widths ``hidden``; one Adam
    (``learning_rate``) serves all three losses; the targets follow the critics with
    Polyak rate ``tau``; alpha starts at ``init_temperature`` and is tuned toward
    ``target_entropy`` (None: -dim(A)). ``act`` draws a uniform action from the Box until
    ``learning_starts`` real transitions are stored, then samples the policy. Each real
    transition is followed by ``replay_updates`` steps on real minibatches of
    ``batch_size``; simulated batches mix in real rows at ``real_ratio`` (a model
    buffer of ``model_capacity`` transitions when it is positive, MBPO's).
    """
    obs_size = check_count("obs_size", obs_size, minimum=1)
    rule = _sac_rule(
        obs_size, action_space, hidden=hidden, learning_rate=learning_rate, gamma=gamma,
        tau=tau, target_entropy=target_entropy,
    )  # fmt: skip
    check_positive("init_temperature", init_temperature)
    replay = _sac_replay(
        obs_size, rule.actor.action_size, capacity, model_capacity, batch_size,
        learning_starts, replay_updates, real_ratio,
    )  # fmt: skip

    def init(key: PRNGKey) -> SACState:
        return _init_state(rule, replay, init_temperature, key)

    def act(state: SACState, obs, key: PRNGKey) -> jax.Array:
        k_uniform, k_policy = jax.random.split(key)
        chex.assert_shape(obs, (obs_size,))
        uniform = jax.random.uniform(k_uniform, rule.low.shape, minval=rule.low, maxval=rule.high)
        sampled = policy(state, obs[None], k_policy)[0]
        return jnp.where(state.buffer.size >= replay.learning_starts, sampled, uniform)

    def update(state: SACState, transition: Transition, key: PRNGKey) -> SACState:
        """A real transition (stored, replayed) or a simulated batch (see the module
        docstring)."""
        if _check_batch(transition, obs_size, rule.actor.action_size):
            return _simulated_update(rule, replay, state, transition, key)
        return _real_update(rule, replay, state, transition, key)

    def policy(state: SACState, obs: jax.Array, key: PRNGKey) -> jax.Array:
        return _sample_action(rule, state.actor, obs, key)[0]

    def mean_action(state: SACState, obs: jax.Array) -> jax.Array:
        return _scaled(rule, jnp.tanh(rule.actor.apply(state.actor, obs)[0]))

    def value(state: SACState, obs: jax.Array) -> jax.Array:
        q = _twin_q(rule, state.critic, obs, mean_action(state, obs))
        return jnp.min(q, axis=0)

    observation = spaces_lib.Box(-jnp.inf, jnp.inf, (obs_size,), jnp.float32)
    return SAC(init, act, update, policy, mean_action, value, Spaces(observation, action_space))
