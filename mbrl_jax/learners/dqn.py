"""A DQN-style neural Q learner (Mnih et al. 2015; double Q: van Hasselt et al. 2016).

The same ``Learner(init, act, update)`` triple as tabular Q-learning; its ``update``
takes a *batch* of transitions (real or simulated) and takes one gradient step on the
TD loss

    L(theta) = mean_i  l( y_i - Q_theta(s_i, a_i) ),    l = Huber or 1/2 x^2
    y_i      = r_i + gamma (1 - done_i) Q_target(s'_i, a*_i)
    a*_i     = argmax_a Q_target(s'_i, a)     (DQN)
               argmax_a Q_theta(s'_i, a)      (double DQN)

or with ``advantage_alpha`` = alpha > 0 advantage learning's target
(:func:`~mbrl_jax.learners.advantage_learning_target`; Bellemare et al. 2016)

    y_i - alpha (max_b Q_target(s_i, b) - Q_target(s_i, a_i)),

where Q_target is a copy of the parameters refreshed every ``target_period`` updates
as target <- tau theta + (1 - tau) target (tau = 1: the periodic copy of DQN;
target_period = 1 with a small tau: Polyak averaging).

The greedy policy (:attr:`DQN.greedy_q_values`) may read a Polyak average of the
parameters instead of the parameters themselves (Polyak & Juditsky 1992; for DQN,
Nikishin et al. 2018): after each real step

    average <- average_tau theta + (1 - average_tau) average,

so with a small ``average_tau`` it averages over about 1 / average_tau real steps. The
default 1 keeps no average: the greedy policy is the online network's. Acting
(epsilon-greedy) and learning always use the online parameters.

A single transition (no leading batch axis) is *real* experience, as dyna's direct-RL
step gives it: it is stored in the learner's replay buffer, counted as an environment
step (which drives the epsilon schedule), and ``replay_updates`` gradient steps are
taken on minibatches drawn from the buffer once it holds ``learning_starts``
transitions. So with no planning the learner is plain DQN with experience replay.

A step whose loss is not finite leaves the parameters unchanged and is recorded in
``DQNState.nan_update``; :func:`check_q_training` raises on it outside jit.

**What it accepts.** Observations are float vectors of shape (obs_size,) (or a
(B, obs_size) batch), actions integers in [0, num_actions). A non-integer action is a
TypeError at once, a concrete one out of range a ValueError
(:func:`~mbrl_jax.types.check_index`). Inside jit an action out of range cannot raise
(it does under :func:`mbrl_jax.train.checked`); the rule then is: its Q(s, a) is NaN,
so the step's loss is NaN, the step is skipped and :func:`check_q_training` reports it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from gymnax.environments import spaces as spaces_lib
from jax.flatten_util import ravel_pytree

from mbrl_jax.hyperparameters import traced
from mbrl_jax.learners.exploration import epsilon_greedy
from mbrl_jax.learners.targets import (
    advantage_learning_target,
    double_q_learning_target,
    q_learning_target,
)
from mbrl_jax.replay import ReplayBuffer, buffer_add, buffer_init, buffer_sample
from mbrl_jax.types import Learner, PRNGKey, Spaces, Transition, check_index
from mbrl_jax.validation import (
    check_below_one,
    check_bool,
    check_count,
    check_in_range,
    check_nonnegative,
    check_positive,
    check_up_to_one,
    raise_on_nan,
)

LOSSES = ("huber", "squared")


class QNetwork(nn.Module):
    """An MLP from an observation vector to one Q-value per action (ReLU); with
    ``layer_norm`` each hidden layer is Dense, LayerNorm, ReLU (as in PQN, Gallici et al.
    2024, where it keeps off-policy TD from diverging)."""

    hidden: tuple[int, ...]
    num_actions: int
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = obs
        for width in self.hidden:
            x = nn.Dense(width)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = nn.relu(x)
        return nn.Dense(self.num_actions)(x)


class DQNState(NamedTuple):
    params: jax.Array  # (P,) the Q-network's parameters as one flat vector
    target_params: jax.Array  # (P,) the target network's, flat the same way
    opt_state: Any  # the optimizer's state over the flat vector
    buffer: ReplayBuffer  # real transitions
    env_steps: jax.Array  # () int32 real transitions seen; drives the epsilon schedule
    updates: jax.Array  # () int32 gradient steps taken, on real and simulated batches
    loss: jax.Array  # () loss of the last gradient step
    nan_update: jax.Array  # () int32 first update whose loss was not finite; -1 if none
    average_params: jax.Array  # (P,) the Polyak average the greedy policy reads


class DQN(NamedTuple):
    """The ``Learner(init, act, update)`` triple plus ``q_values(state, obs)``
    (Q(obs, .) under the current parameters), ``greedy_q_values(state, obs)`` (Q(obs, .)
    under what the greedy policy reads: the Polyak average of the parameters, or the
    parameters themselves at ``average_tau`` = 1) and ``network_params(flat)``: a flat
    parameter vector (``state.params``, ``state.target_params`` or
    ``state.average_params``) as the Q-network's flax parameter tree."""

    init: Callable[[PRNGKey], DQNState]
    act: Callable[[DQNState, Any, PRNGKey], jax.Array]
    update: Callable[[DQNState, Transition, PRNGKey], DQNState]
    q_values: Callable[[DQNState, jax.Array], jax.Array]
    network_params: Callable[[jax.Array], Any]
    greedy_q_values: Callable[[DQNState, jax.Array], jax.Array]
    spaces: Spaces | None = None

    @property
    def learner(self) -> Learner:
        return Learner(self.init, self.act, self.update, self.spaces)


class _TDRule(NamedTuple):
    """What one gradient step needs besides the state: fixed by the factory."""

    network: QNetwork
    unravel: Callable[[jax.Array], Any]  # the flat parameter vector as the network's tree
    optimizer: optax.GradientTransformation
    gamma: Any
    double: bool
    loss: str
    target_period: int
    target_tau: Any
    advantage_alpha: Any


def td_loss(
    network: QNetwork,
    params: Any,
    target_params: Any,
    batch: Transition,
    gamma: Any,
    double: bool,
    loss: str,
    advantage_alpha: Any = 0.0,
) -> jax.Array:
    """The mean TD loss of a batch (the module docstring's L); the target is held fixed.
    ``batch.action`` holds integers in [0, num_actions): Q(s, a) of any other is NaN.
    A concrete ``advantage_alpha`` of 0 is plain (double) DQN, computed without the
    target network's pass over ``batch.obs`` that advantage learning needs."""
    chex.assert_rank(batch.obs, 2)
    q = network.apply(params, batch.obs)
    valid = check_index("td_loss", "action", batch.action, network.num_actions)
    action = jnp.clip(batch.action, 0, network.num_actions - 1).astype(jnp.int32)
    q_taken = jnp.take_along_axis(q, action[..., None], axis=-1)[..., 0]
    q_taken = jnp.where(valid, q_taken, jnp.nan)
    q_next_target = network.apply(target_params, batch.next_obs)
    if double:
        q_next_online = network.apply(params, batch.next_obs)
        target = double_q_learning_target(
            batch.reward, batch.done, q_next_target, q_next_online, gamma
        )
    else:
        target = q_learning_target(batch.reward, batch.done, q_next_target, gamma)
    if not _is_concrete(advantage_alpha, 0):
        q_target = network.apply(target_params, batch.obs)
        target = advantage_learning_target(target, q_target, action, advantage_alpha)
    error = jax.lax.stop_gradient(target) - q_taken
    per_item = optax.huber_loss(error) if loss == "huber" else 0.5 * error**2
    return jnp.mean(per_item)


def _is_concrete(value: Any, number: float) -> bool:
    """Whether ``value`` is the concrete ``number`` (a traced value never is)."""
    return isinstance(value, (int, float)) and value == number


def _gradient_step(rule: _TDRule, state: DQNState, batch: Transition, apply: jax.Array) -> DQNState:
    """One optimizer step on ``batch`` where ``apply`` (a bool) holds, and the target
    refresh it is due for; a non-finite loss changes nothing but ``nan_update``. The
    parameters, the target and Adam's moments are flat vectors (:class:`DQNState`), so
    the skip and the refresh are one select each rather than one per layer.

    The skip is ours rather than ``optax.apply_if_finite``: that wrapper judges the
    gradients, gives up after ``max_consecutive_errors`` and keeps no step index, while
    here the update count and the target refresh must skip with the step and the first
    bad update must be reported (:func:`check_q_training`)."""
    target_params = rule.unravel(state.target_params)

    def loss_of(flat: jax.Array) -> jax.Array:
        network_params = rule.unravel(flat)
        return td_loss(
            rule.network, network_params, target_params, batch, rule.gamma, rule.double,
            rule.loss, rule.advantage_alpha,
        )  # fmt: skip

    value, grads = jax.value_and_grad(loss_of)(state.params)
    step, opt_state = rule.optimizer.update(grads, state.opt_state, state.params)
    finite = jnp.isfinite(value)
    take = apply & finite
    params = jnp.where(take, state.params + step, state.params)
    updates = state.updates + take.astype(jnp.int32)
    refresh = take & (updates % rule.target_period == 0)
    target = optax.incremental_update(params, state.target_params, rule.target_tau)
    first_bad = apply & ~finite & (state.nan_update < 0)
    return state._replace(
        params=params,
        target_params=jnp.where(refresh, target, state.target_params),
        opt_state=optax.tree.where(take, opt_state, state.opt_state),
        updates=updates,
        loss=jnp.where(apply, value, state.loss),
        nan_update=jnp.where(first_bad, state.updates, state.nan_update),
    )


def _row(transition: Transition, num_actions: int) -> jax.Array:
    """A real transition as one float32 replay row ``[obs, action, reward, next_obs,
    done]`` (its action checked first): one flat ring, so a write is one row update
    and a minibatch one gather (the action, an index below 2**24, is exact)."""
    check_index("dqn update", "action", transition.action, num_actions)
    scalars = jnp.stack([transition.action, transition.reward, transition.done]).astype(jnp.float32)
    obs, next_obs = (
        jnp.ravel(o).astype(jnp.float32) for o in (transition.obs, transition.next_obs)
    )
    return jnp.concatenate([obs, scalars[:2], next_obs, scalars[2:]])


def _transitions(rows: jax.Array, obs_size: int) -> Transition:
    """Replay rows (B, 2 obs_size + 3) back as a batch of transitions."""
    return Transition(
        rows[:, :obs_size],
        rows[:, obs_size].astype(jnp.int32),
        rows[:, obs_size + 1],
        rows[:, obs_size + 2 : 2 * obs_size + 2],
        rows[:, -1] > 0.5,
    )


def _check_obs(obs: Any, obs_size: int) -> bool:
    """True for a (B, obs_size) batch, False for one (obs_size,) observation; ValueError
    for anything else."""
    shape = jnp.shape(obs)
    if shape == (obs_size,) or (len(shape) == 2 and shape[1] == obs_size):
        return len(shape) == 2
    raise ValueError(
        f"the learner was built for observations of shape ({obs_size},) and takes one "
        f"(obs_size,) transition or a (B, {obs_size}) batch, got obs of shape {shape}"
    )


def _td_rule(
    obs_size: int,
    num_actions: int,
    *,
    hidden: Sequence[int],
    learning_rate: Any,
    gamma: Any,
    loss: str,
    double: bool,
    target_period: int,
    target_tau: Any,
    max_grad_norm: float,
    learning_rate_end: Any,
    decay_steps: int,
    layer_norm: bool,
    advantage_alpha: Any,
) -> _TDRule:
    """The network, optimizer and TD settings, every value checked."""
    num_actions = check_count("num_actions", num_actions, minimum=1)
    hidden = tuple(check_count("hidden width", w, minimum=1) for w in hidden)
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    check_bool("double", double)
    check_bool("layer_norm", layer_norm)
    check_positive("learning_rate", learning_rate)
    check_in_range("gamma", gamma, 0.0, 1.0)
    check_up_to_one("target_tau", target_tau)
    check_below_one("advantage_alpha", advantage_alpha)
    target_period = check_count("target_period", target_period, minimum=1)
    check_positive("max_grad_norm", max_grad_norm)
    check_nonnegative("learning_rate_end", learning_rate_end)
    decay_steps = check_count("decay_steps", decay_steps, minimum=0)
    step_size = learning_rate
    if decay_steps:
        step_size = optax.linear_schedule(learning_rate, learning_rate_end, decay_steps)
    optimizer = optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(step_size))
    network = QNetwork(hidden, num_actions, layer_norm)
    shapes = jax.eval_shape(network.init, jax.random.key(0), jnp.zeros((obs_size,)))
    _, unravel = ravel_pytree(jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes))
    return _TDRule(
        network, unravel, optimizer, gamma, double, loss, target_period, target_tau,
        advantage_alpha,
    )  # fmt: skip


class _Replay(NamedTuple):
    """How real transitions are replayed: fixed by the factory."""

    capacity: int
    batch_size: int
    learning_starts: int  # real transitions stored before the first gradient step
    updates: int  # gradient steps per real transition


def _replay(capacity: int, batch_size: int, learning_starts: int, updates: int) -> _Replay:
    batch_size = check_count("batch_size", batch_size, minimum=1)
    capacity = check_count("capacity", capacity, minimum=1)
    if capacity < batch_size:
        raise ValueError(
            f"the replay capacity must hold at least one batch: capacity={capacity} < "
            f"batch_size={batch_size}"
        )
    return _Replay(
        capacity,
        batch_size,
        check_count("learning_starts", learning_starts, minimum=0),
        check_count("replay_updates", updates, minimum=1),
    )


def _epsilon_schedule(start: Any, end: Any, steps: int) -> optax.Schedule:
    """Epsilon falling linearly from ``start`` to ``end`` over ``steps`` real steps."""
    check_in_range("epsilon_start", start, 0.0, 1.0)
    check_in_range("epsilon_end", end, 0.0, 1.0)
    steps = check_count("epsilon_steps", steps, minimum=0)
    return optax.linear_schedule(start, end, max(steps, 1))


def _init_state(rule: _TDRule, replay: _Replay, obs_size: int, key: PRNGKey) -> DQNState:
    params, _ = ravel_pytree(rule.network.init(key, jnp.zeros((obs_size,))))
    zero = jnp.zeros((), jnp.int32)
    buffer = buffer_init(jnp.zeros((2 * obs_size + 3,)), replay.capacity)
    opt_state = rule.optimizer.init(params)
    return DQNState(params, params, opt_state, buffer, zero, zero, jnp.zeros(()), zero - 1, params)


def _averaged(state: DQNState, average_tau: Any) -> DQNState:
    """``state`` with its Polyak average moved toward the parameters (the module
    docstring); a concrete ``average_tau`` of 1 is a copy."""
    if _is_concrete(average_tau, 1):
        return state._replace(average_params=state.params)
    average = optax.incremental_update(state.params, state.average_params, average_tau)
    return state._replace(average_params=average)


def _real_update(
    rule: _TDRule, replay: _Replay, state: DQNState, transition: Transition, key: PRNGKey
) -> DQNState:
    """Store a real transition, count it, and take ``replay.updates`` gradient steps on
    fresh replay minibatches once ``learning_starts`` transitions are stored."""
    buffer = buffer_add(state.buffer, _row(transition, rule.network.num_actions))
    state = state._replace(buffer=buffer, env_steps=state.env_steps + 1)
    ready = buffer.size >= max(replay.learning_starts, 1)
    obs_size = jnp.shape(transition.obs)[-1]

    def sample(key: PRNGKey) -> Transition:
        return _transitions(buffer_sample(buffer, key, replay.batch_size), obs_size)

    if replay.updates == 1:
        return _gradient_step(rule, state, sample(key), ready)

    def replay_step(i, state: DQNState) -> DQNState:
        return _gradient_step(rule, state, sample(jax.random.fold_in(key, i)), ready)

    return jax.lax.fori_loop(0, replay.updates, replay_step, state)


def check_q_training(state: DQNState, where: str = "Q-learning") -> None:
    """Raise FloatingPointError (outside jit) if a Q loss was NaN or inf; ``state``
    may carry leading batch axes (seeds)."""
    raise_on_nan(state.nan_update, f"{where}: the TD loss", "gradient update")


@traced(
    "learning_rate", "learning_rate_end", "gamma", "target_tau", "epsilon_start", "epsilon_end",
    "advantage_alpha", "average_tau",
)  # fmt: skip
def dqn(
    obs_size: int,
    num_actions: int,
    *,
    hidden: Sequence[int] = (64, 64),
    layer_norm: bool = False,
    learning_rate: Any = 1e-3,
    learning_rate_end: Any = 0.0,
    decay_steps: int = 0,
    gamma: Any = 0.99,
    loss: str = "huber",
    double: bool = True,
    advantage_alpha: Any = 0.0,
    target_period: int = 100,
    target_tau: Any = 1.0,
    epsilon_start: Any = 1.0,
    epsilon_end: Any = 0.05,
    epsilon_steps: int = 5_000,
    capacity: int = 50_000,
    batch_size: int = 64,
    learning_starts: int = 500,
    max_grad_norm: float = 10.0,
    replay_updates: int = 1,
    average_tau: Any = 1.0,
) -> DQN:
    """DQN over observation vectors of size ``obs_size`` and ``num_actions`` discrete
    actions (see the module docstring for the update).

    Acting is epsilon-greedy (:func:`~mbrl_jax.learners.epsilon_greedy`) with epsilon
    falling linearly from ``epsilon_start`` to ``epsilon_end`` over the first
    ``epsilon_steps`` real transitions. Adam with gradients clipped to global norm
    ``max_grad_norm``, at ``learning_rate`` throughout, or with ``decay_steps`` > 0
    falling linearly to ``learning_rate_end`` over the first ``decay_steps`` gradient
    steps and held there. ``advantage_alpha`` > 0 learns by advantage learning instead of
    Q-learning (the module docstring; it costs one more target-network pass per step).
    ``average_tau`` < 1 makes the greedy policy (``greedy_q_values``) read a Polyak
    average of the parameters, updated once per real step (the module docstring).
    Each real transition is followed by ``replay_updates`` gradient
    steps on fresh replay minibatches of ``batch_size`` (the replay ratio: with 1 + n it
    matches the update budget of n planning steps with real data instead of a model).
    The learner's ``spaces`` are a ``Box`` of shape (obs_size,) and
    ``Discrete(num_actions)``.
    """
    obs_size = check_count("obs_size", obs_size, minimum=1)
    rule = _td_rule(
        obs_size,
        num_actions, hidden=hidden, learning_rate=learning_rate, gamma=gamma, loss=loss,
        double=double, target_period=target_period, target_tau=target_tau,
        max_grad_norm=max_grad_norm, learning_rate_end=learning_rate_end,
        decay_steps=decay_steps, layer_norm=layer_norm, advantage_alpha=advantage_alpha,
    )  # fmt: skip
    replay = _replay(capacity, batch_size, learning_starts, replay_updates)
    check_up_to_one("average_tau", average_tau)
    epsilon_of = _epsilon_schedule(epsilon_start, epsilon_end, epsilon_steps)

    def init(key: PRNGKey) -> DQNState:
        return _init_state(rule, replay, obs_size, key)

    def act(state: DQNState, obs, key: PRNGKey) -> jax.Array:
        return epsilon_greedy(q_values(state, obs), epsilon_of(state.env_steps), key)

    def update(state: DQNState, transition: Transition, key: PRNGKey) -> DQNState:
        """A gradient step on a batch of transitions; a single transition is real
        experience: stored, counted, and learned from through replay minibatches."""
        if _check_obs(transition.obs, obs_size):
            return _gradient_step(rule, state, transition, jnp.asarray(True))
        return _averaged(_real_update(rule, replay, state, transition, key), average_tau)

    def q_values(state: DQNState, obs: jax.Array) -> jax.Array:
        return rule.network.apply(rule.unravel(state.params), obs)

    def greedy_q_values(state: DQNState, obs: jax.Array) -> jax.Array:
        if _is_concrete(average_tau, 1):
            return q_values(state, obs)
        return rule.network.apply(rule.unravel(state.average_params), obs)

    observation = spaces_lib.Box(-jnp.inf, jnp.inf, (obs_size,), jnp.float32)
    actions = spaces_lib.Discrete(rule.network.num_actions)
    return DQN(
        init, act, update, q_values, rule.unravel, greedy_q_values, Spaces(observation, actions)
    )
