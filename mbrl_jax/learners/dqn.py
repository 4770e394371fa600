"""A DQN-style neural Q learner (Mnih et al. 2015; double Q: van Hasselt et al. 2016).

The same ``Learner(init, act, update)`` triple as tabular Q-learning; its
``update`` takes a *batch* of transitions (real or simulated) and takes one
gradient step on the TD loss

    L(theta) = mean_i  l( y_i - Q_theta(s_i, a_i) ),    l = Huber or 1/2 x^2
    y_i      = r_i + gamma (1 - done_i) Q_target(s'_i, a*_i)
    a*_i     = argmax_a Q_target(s'_i, a)     (DQN)
               argmax_a Q_theta(s'_i, a)      (double DQN)

where Q_target is a copy of the parameters refreshed every ``target_period``
updates as target <- tau theta + (1 - tau) target (tau = 1: the periodic copy of
DQN; target_period = 1 with a small tau: Polyak averaging).

A single transition (no leading batch axis) is *real* experience, as dyna's
direct-RL step gives it: it is stored in the learner's replay buffer, counted as
an environment step (which drives the epsilon schedule), and the gradient step is
taken on a minibatch drawn from the buffer once it holds ``learning_starts``
transitions. So with no planning the learner is plain DQN with experience replay.

A step whose loss is not finite leaves the parameters unchanged and is recorded
in ``DQNState.nan_update``; :func:`check_q_training` raises on it outside jit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from mbrl_jax.replay import ReplayBuffer, buffer_add, buffer_init, buffer_sample
from mbrl_jax.types import Learner, PRNGKey, Transition
from mbrl_jax.validation import check_count, check_in_range, check_positive, raise_on_nan

LOSSES = ("huber", "squared")


class QNetwork(nn.Module):
    """An MLP from an observation vector to one Q-value per action (ReLU)."""

    hidden: tuple[int, ...]
    num_actions: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = obs
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.num_actions)(x)


class DQNState(NamedTuple):
    params: Any
    target_params: Any
    opt_state: Any
    buffer: ReplayBuffer  # real transitions
    env_steps: jax.Array  # () int32 real transitions seen; drives the epsilon schedule
    updates: jax.Array  # () int32 gradient steps taken, on real and simulated batches
    loss: jax.Array  # () loss of the last gradient step
    nan_update: jax.Array  # () int32 first update whose loss was not finite; -1 if none


def _select(when: jax.Array, new, old):
    """``new`` where ``when`` holds, else ``old``, leaf by leaf."""
    return jax.tree.map(lambda n, o: jnp.where(when, n, o), new, old)


class DQN(NamedTuple):
    """The ``Learner(init, act, update)`` triple plus ``q_values(state, obs)``
    (Q(obs, .) under the current parameters, e.g. for greedy evaluation)."""

    init: Callable[[PRNGKey], DQNState]
    act: Callable[[DQNState, Any, PRNGKey], jax.Array]
    update: Callable[[DQNState, Transition, PRNGKey], DQNState]
    q_values: Callable[[DQNState, jax.Array], jax.Array]

    @property
    def learner(self) -> Learner:
        return Learner(self.init, self.act, self.update)


def td_target(
    q_next_target: jax.Array,
    q_next_online: jax.Array,
    reward: jax.Array,
    done: jax.Array,
    gamma,
    double: bool,
) -> jax.Array:
    """y = r + gamma (1 - done) Q_target(s', a*), with a* the target network's greedy
    action (DQN) or the online network's (double DQN). Q arrays are (B, A)."""
    chooser = q_next_online if double else q_next_target
    best = jnp.argmax(chooser, axis=-1)
    bootstrap = jnp.take_along_axis(q_next_target, best[..., None], axis=-1)[..., 0]
    return reward + gamma * jnp.where(done, 0.0, bootstrap)


def td_loss(
    network: QNetwork,
    params,
    target_params,
    batch: Transition,
    gamma,
    double: bool,
    loss: str,
) -> jax.Array:
    """The mean TD loss of a batch (the module docstring's L); the target is held fixed."""
    q = network.apply(params, batch.obs)
    q_taken = jnp.take_along_axis(q, batch.action[..., None].astype(jnp.int32), axis=-1)[..., 0]
    q_next_target = network.apply(target_params, batch.next_obs)
    q_next_online = network.apply(params, batch.next_obs) if double else q_next_target
    target = jax.lax.stop_gradient(
        td_target(q_next_target, q_next_online, batch.reward, batch.done, gamma, double)
    )
    error = target - q_taken
    per_item = optax.huber_loss(error) if loss == "huber" else 0.5 * error**2
    return jnp.mean(per_item)


def check_q_training(state: DQNState, where: str = "Q-learning") -> None:
    """Raise FloatingPointError (outside jit) if a Q loss was NaN or inf; ``state``
    may carry leading batch axes (seeds)."""
    raise_on_nan(state.nan_update, f"{where}: the TD loss", "gradient update")


def dqn(
    obs_size: int,
    num_actions: int,
    *,
    hidden: Sequence[int] = (64, 64),
    learning_rate=1e-3,
    gamma=0.99,
    loss: str = "huber",
    double: bool = True,
    target_period: int = 100,
    target_tau=1.0,
    epsilon_start=1.0,
    epsilon_end=0.05,
    epsilon_steps: int = 5_000,
    capacity: int = 50_000,
    batch_size: int = 64,
    learning_starts: int = 500,
    max_grad_norm: float = 10.0,
    replay_updates: int = 1,
) -> DQN:
    """DQN over observation vectors of size ``obs_size`` and ``num_actions`` discrete
    actions (see the module docstring for the update).

    Acting is epsilon-greedy with epsilon falling linearly from ``epsilon_start`` to
    ``epsilon_end`` over the first ``epsilon_steps`` real transitions. Adam with
    gradients clipped to global norm ``max_grad_norm``. Each real transition is
    followed by ``replay_updates`` gradient steps on fresh replay minibatches (the
    replay ratio: with 1 + n it matches the update budget of n planning steps with
    real data instead of a model). ``learning_rate``,
    ``gamma``, ``target_tau`` and the epsilons may be traced (swept by vmap).
    """
    obs_size = check_count("obs_size", obs_size, minimum=1)
    num_actions = check_count("num_actions", num_actions, minimum=1)
    hidden = tuple(check_count("hidden width", w, minimum=1) for w in hidden)
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if not isinstance(double, bool):
        raise ValueError(f"double must be a bool, got {double!r}")
    check_positive("learning_rate", learning_rate)
    check_in_range("gamma", gamma, 0.0, 1.0)
    check_in_range("target_tau", target_tau, 0.0, 1.0)
    check_in_range("epsilon_start", epsilon_start, 0.0, 1.0)
    check_in_range("epsilon_end", epsilon_end, 0.0, 1.0)
    target_period = check_count("target_period", target_period, minimum=1)
    epsilon_steps = check_count("epsilon_steps", epsilon_steps, minimum=0)
    batch_size = check_count("batch_size", batch_size, minimum=1)
    capacity = check_count("capacity", capacity, minimum=1)
    if capacity < batch_size:
        raise ValueError(
            f"the replay capacity must hold at least one batch: capacity={capacity} < "
            f"batch_size={batch_size}"
        )
    learning_starts = check_count("learning_starts", learning_starts, minimum=0)
    replay_updates = check_count("replay_updates", replay_updates, minimum=1)
    check_positive("max_grad_norm", max_grad_norm)

    network = QNetwork(hidden, num_actions)
    optimizer = optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(learning_rate))
    epsilon_of = optax.linear_schedule(epsilon_start, epsilon_end, max(epsilon_steps, 1))
    example = Transition(
        jnp.zeros((obs_size,)),
        jnp.zeros((), jnp.int32),
        jnp.zeros(()),
        jnp.zeros((obs_size,)),
        jnp.zeros((), bool),
    )

    def init(key: PRNGKey) -> DQNState:
        params = network.init(key, jnp.zeros((obs_size,)))
        zero = jnp.zeros((), jnp.int32)
        return DQNState(
            params,
            params,
            optimizer.init(params),
            buffer_init(example, capacity),
            zero,
            zero,
            jnp.zeros(()),
            zero - 1,
        )

    def act(state: DQNState, obs, key: PRNGKey) -> jax.Array:
        k_explore, k_action = jax.random.split(key)
        greedy = jnp.argmax(network.apply(state.params, obs), axis=-1)
        random_action = jax.random.randint(k_action, greedy.shape, 0, num_actions)
        explore = jax.random.uniform(k_explore, greedy.shape) < epsilon_of(state.env_steps)
        return jnp.where(explore, random_action, greedy).astype(jnp.int32)

    def gradient_step(state: DQNState, batch: Transition, apply: jax.Array) -> DQNState:
        """One Adam step on ``batch`` where ``apply`` (a bool) holds; a non-finite loss
        changes nothing but ``nan_update``."""
        value, grads = jax.value_and_grad(td_loss, argnums=1)(
            network, state.params, state.target_params, batch, gamma, double, loss
        )
        step, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, step)
        finite = jnp.isfinite(value)
        take = apply & finite
        updates = state.updates + take.astype(jnp.int32)
        refresh = take & (updates % target_period == 0)
        target = optax.incremental_update(params, state.target_params, target_tau)
        nan_update = jnp.where(
            apply & ~finite & (state.nan_update < 0), state.updates, state.nan_update
        )
        return state._replace(
            params=_select(take, params, state.params),
            target_params=_select(refresh, target, state.target_params),
            opt_state=_select(take, opt_state, state.opt_state),
            updates=updates,
            loss=jnp.where(apply, value, state.loss),
            nan_update=nan_update,
        )

    def update(state: DQNState, transition: Transition, key: PRNGKey) -> DQNState:
        """A gradient step on a batch of transitions; a single transition is real
        experience: stored, counted, and learned from through a replay minibatch."""
        batched = jnp.ndim(transition.obs) == 2
        if not batched and jnp.shape(transition.obs) != (obs_size,):
            raise ValueError(
                f"the learner was built for observations of shape ({obs_size},) and takes one "
                f"(obs_size,) transition or a (B, {obs_size}) batch, got obs of shape "
                f"{jnp.shape(transition.obs)}"
            )
        if batched:
            return gradient_step(state, transition, jnp.asarray(True))
        stored = Transition(
            jnp.asarray(transition.obs, jnp.float32),
            jnp.asarray(transition.action, jnp.int32),
            jnp.asarray(transition.reward, jnp.float32),
            jnp.asarray(transition.next_obs, jnp.float32),
            jnp.asarray(transition.done, bool),
        )
        buffer = buffer_add(state.buffer, stored)
        state = state._replace(buffer=buffer, env_steps=state.env_steps + 1)
        ready = buffer.size >= max(learning_starts, 1)
        if replay_updates == 1:
            return gradient_step(state, buffer_sample(buffer, key, batch_size), ready)

        def replay_step(i, state):
            sample = buffer_sample(buffer, jax.random.fold_in(key, i), batch_size)
            return gradient_step(state, sample, ready)

        return jax.lax.fori_loop(0, replay_updates, replay_step, state)

    def q_values(state: DQNState, obs: jax.Array) -> jax.Array:
        return network.apply(state.params, obs)

    return DQN(init, act, update, q_values)
