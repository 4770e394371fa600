"""Learned neural dynamics models: a deterministic MLP and a probabilistic ensemble (PETS).

Chua et al. 2018, "Deep reinforcement learning in a handful of trials using
probabilistic dynamics models" (PETS). The network maps a normalized
(observation, action) to the normalized state change and reward

    [s' - s, r] ~ N(mu_theta(s, a), diag(exp(logvar_theta(s, a))))

(a probabilistic member), or to their mean alone (a deterministic one), plus a
termination logit when the task's termination is learned. An ensemble of E
members is one set of parameters with a leading member axis: members are a
``vmap`` over parameters, so E members cost one batched matmul per layer.

The log-variance is softly bounded by learned bounds (PETS, appendix A.1):

    logvar = max_logvar - softplus(max_logvar - raw)
    logvar = min_logvar + softplus(logvar - min_logvar)

with 0.01 (sum max_logvar - sum min_logvar) added to each member's loss so the
bounds tighten. Training (:meth:`NeuralModel.fit`) happens inside jit on the
model's own replay buffer: inputs and targets normalized by statistics of all
data seen, a held-out validation split, each member on its own bootstrap
resample of the training split, minibatch epochs with AdamW (weight decay on
kernels), early stopping on the validation error keeping each member's best
parameters, and a non-finite loss stopping training and reported by the
gradient step at which it happened (:func:`check_training`).

Rollouts propagate particles as in PETS section 5: ``"expectation"`` (every
particle moves by the members' mean prediction), ``"ts1"`` (each particle
re-draws its member at every step), ``"tsinf"`` (each particle keeps one
member for the whole horizon: particle n uses member n mod E).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from mbrl_jax.replay import ReplayBuffer, buffer_add_batch, buffer_init
from mbrl_jax.types import Model, PRNGKey, StepFn, Transition
from mbrl_jax.validation import check_count, check_in_range, check_positive, raise_on_nan

PROPAGATIONS = ("expectation", "ts1", "tsinf")


def check_propagation(propagation: str) -> None:
    """Raise ValueError unless ``propagation`` is one of :data:`PROPAGATIONS`."""
    if propagation not in PROPAGATIONS:
        raise ValueError(f"propagation must be one of {PROPAGATIONS}, got {propagation!r}")


TaskFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]  # (obs, action, next_obs) -> (N,)


class Prediction(NamedTuple):
    """A network's output for a batch, in normalized units."""

    mean: jax.Array  # (..., T) state change and reward
    logvar: jax.Array | None  # (..., T), probabilistic members only
    done_logit: jax.Array | None  # (...,), learned termination only


class MemberNetwork(nn.Module):
    """One ensemble member: an MLP with swish hidden layers (as PETS) and a head
    for the mean, the softly bounded log-variance and the termination logit."""

    hidden: Sequence[int]
    targets: int
    probabilistic: bool
    learn_termination: bool

    @nn.compact
    def __call__(self, x: jax.Array) -> Prediction:
        for width in self.hidden:
            x = nn.silu(nn.Dense(width)(x))
        sizes = [self.targets] * (2 if self.probabilistic else 1) + [int(self.learn_termination)]
        out = nn.Dense(sum(sizes))(x)
        mean = out[..., : self.targets]
        logvar = done_logit = None
        if self.probabilistic:
            raw = out[..., self.targets : 2 * self.targets]
            max_logvar = self.param("max_logvar", nn.initializers.constant(0.5), (self.targets,))
            min_logvar = self.param("min_logvar", nn.initializers.constant(-10.0), (self.targets,))
            logvar = max_logvar - nn.softplus(max_logvar - raw)
            logvar = min_logvar + nn.softplus(logvar - min_logvar)
        if self.learn_termination:
            done_logit = out[..., -1]
        return Prediction(mean, logvar, done_logit)


@dataclass(frozen=True)
class ModelConfig:
    """Shapes and training settings of a :func:`neural_model`. Defaults are PETS's
    network (5 members, three hidden layers of 200, swish) with CPU-sized training."""

    ensemble_size: int = 5
    hidden: tuple[int, ...] = (200, 200, 200)
    probabilistic: bool = True
    learn_termination: bool = False
    capacity: int = 10_000  # transitions kept in the model's replay buffer
    learning_rate: float = 1e-3
    weight_decay: float = 5e-5
    batch_size: int = 64
    max_epochs: int = 50
    patience: int = 5  # epochs without a 1% validation improvement before stopping
    validation_fraction: float = 0.1
    bootstrap: bool = True
    train_steps_per_update: int = 0  # minibatch steps taken by ``update`` (online training)
    logvar_bound_weight: float = 0.01

    def __post_init__(self):
        check_count("ensemble_size", self.ensemble_size, minimum=1)
        hidden = self.hidden
        if (
            not isinstance(hidden, Sequence)
            or not hidden
            or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in hidden)
        ):
            raise ValueError(f"hidden must list positive layer widths, got {hidden!r}")
        object.__setattr__(self, "hidden", tuple(hidden))  # hashable, whatever was passed
        for name in ("probabilistic", "learn_termination", "bootstrap"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        check_count("capacity", self.capacity, minimum=1)
        check_count("batch_size", self.batch_size, minimum=1)
        check_count("max_epochs", self.max_epochs, minimum=1)
        check_count("patience", self.patience, minimum=1)
        check_count("train_steps_per_update", self.train_steps_per_update, minimum=0)
        check_in_range("validation_fraction", self.validation_fraction, 0.0, 0.9)
        check_positive("learning_rate", self.learning_rate)
        check_in_range("weight_decay", self.weight_decay, 0.0, 1.0)
        check_in_range("logvar_bound_weight", self.logvar_bound_weight, 0.0, math.inf)


class RunningStats(NamedTuple):
    """Count, mean and sum of squared deviations of everything seen (Chan et al.'s
    parallel form of Welford's update)."""

    count: jax.Array  # ()
    mean: jax.Array  # (D,)
    m2: jax.Array  # (D,) sum of squared deviations from the mean


class Normalizer(NamedTuple):
    in_mean: jax.Array
    in_std: jax.Array
    out_mean: jax.Array
    out_std: jax.Array


class TrainInfo(NamedTuple):
    """What the last :meth:`NeuralModel.fit` did."""

    epochs: jax.Array  # () int32 epochs run
    steps: jax.Array  # () int32 gradient steps taken
    train_loss: jax.Array  # () mean training loss (summed over members) of the last epoch
    validation_error: jax.Array  # (E,) best validation MSE (normalized) of each member
    # () int32 first gradient step (counted over the model's life, as total_steps)
    # whose loss was not finite; -1 if none. It stays set once set.
    nan_step: jax.Array


class NeuralModelState(NamedTuple):
    params: Any  # member parameters, stacked on a leading axis of size E
    opt_state: Any
    normalizer: Normalizer  # used for prediction and training; set from the stats when training
    input_stats: RunningStats
    target_stats: RunningStats
    data: ReplayBuffer  # real transitions
    info: TrainInfo
    total_steps: jax.Array  # () int32 gradient steps taken over the model's life


def check_training(state_or_info: NeuralModelState | TrainInfo, where: str = "model") -> None:
    """Raise FloatingPointError (outside jit) if training met a NaN or inf loss.

    Accepts a model state or its TrainInfo, with any leading batch axes (seeds).
    """
    info = state_or_info.info if isinstance(state_or_info, NeuralModelState) else state_or_info
    raise_on_nan(info.nan_step, f"{where} training failed: the loss", "gradient step")


def _stats_init(size: int) -> RunningStats:
    return RunningStats(jnp.zeros(()), jnp.zeros((size,)), jnp.zeros((size,)))


def _stats_add(stats: RunningStats, x: jax.Array, weight: jax.Array) -> RunningStats:
    """Merge a weighted batch x (B, D), weights (B,) in {0, 1}, into the stats (Chan et al.):

        n = n_a + n_b,  d = mean_b - mean_a,
        mean = mean_a + d n_b / n,  m2 = m2_a + m2_b + d^2 n_a n_b / n

    For one item this is Welford's update."""
    weight = weight.astype(x.dtype)
    n_b = jnp.sum(weight)
    mean_b = jnp.sum(weight[:, None] * x, 0) / jnp.maximum(n_b, 1.0)
    m2_b = jnp.sum(weight[:, None] * (x - mean_b) ** 2, 0)
    count = stats.count + n_b
    d = mean_b - stats.mean
    mean = stats.mean + d * n_b / jnp.maximum(count, 1.0)
    m2 = stats.m2 + m2_b + d**2 * stats.count * n_b / jnp.maximum(count, 1.0)
    return RunningStats(count, mean, m2)


def _stats_std(stats: RunningStats) -> jax.Array:
    """Population standard deviation; 1 where it is (nearly) zero, so constant
    inputs (an unused action dimension) pass through normalization unchanged."""
    std = jnp.sqrt(stats.m2 / jnp.maximum(stats.count, 1.0))
    return jnp.where(std < 1e-6, 1.0, std)


def gaussian_nll(mean: jax.Array, logvar: jax.Array, target: jax.Array) -> jax.Array:
    """Per-entry Gaussian negative log-likelihood as PETS (and mbrl-lib) train it,
    i.e. twice the NLL without its constant log(2 pi):

        (target - mean)^2 exp(-logvar) + logvar
    """
    return (target - mean) ** 2 * jnp.exp(-logvar) + logvar


def member_loss(
    network: MemberNetwork,
    params: Any,
    x: jax.Array,
    y: jax.Array,
    done: jax.Array,
    weight: jax.Array,
    logvar_bound_weight: float = 0.01,
) -> jax.Array:
    """Loss of one member on a weighted batch x (B, in), y (B, T), done (B,), weight (B,):

        L = sum_b w_b l_b / sum_b w_b  [+ c (sum max_logvar - sum min_logvar)]
        l_b = mean_t gaussian_nll(mu_bt, logvar_bt, y_bt)   (probabilistic)
        l_b = mean_t (mu_bt - y_bt)^2                       (deterministic)

    plus, with learned termination, the sigmoid cross-entropy of the done logit."""
    out = network.apply(params, x)
    if network.probabilistic:
        per_entry = gaussian_nll(out.mean, out.logvar, y)
    else:
        per_entry = (out.mean - y) ** 2
    per_item = jnp.mean(per_entry, axis=-1)
    if network.learn_termination:
        per_item = per_item + optax.sigmoid_binary_cross_entropy(out.done_logit, done)
    loss = jnp.sum(weight * per_item) / jnp.maximum(jnp.sum(weight), 1.0)
    if network.probabilistic:
        bounds = params["params"]
        loss = loss + logvar_bound_weight * (
            jnp.sum(bounds["max_logvar"]) - jnp.sum(bounds["min_logvar"])
        )
    return loss


def ensemble_loss(
    network: MemberNetwork,
    params: Any,
    x: jax.Array,
    y: jax.Array,
    done: jax.Array,
    weight: jax.Array,
    logvar_bound_weight: float = 0.01,
) -> jax.Array:
    """Sum over members of :func:`member_loss`; params and every batch array carry a
    leading member axis E (each member trains on its own bootstrap batch)."""
    losses = jax.vmap(member_loss, in_axes=(None, 0, 0, 0, 0, 0, None))(
        network, params, x, y, done, weight, logvar_bound_weight
    )
    return jnp.sum(losses)


def group_by_member(x: jax.Array, members: int) -> jax.Array:
    """(N, ...) -> (E, N / E, ...) with row i in group i mod E: a reshape and a
    transpose, no gather. N must be a multiple of E."""
    return jnp.swapaxes(jnp.reshape(x, (x.shape[0] // members, members, *x.shape[1:])), 0, 1)


def ungroup(x: jax.Array) -> jax.Array:
    """The inverse of :func:`group_by_member`: (E, M, ...) -> (M E, ...)."""
    return jnp.reshape(jnp.swapaxes(x, 0, 1), (x.shape[0] * x.shape[1], *x.shape[2:]))


class NeuralModel(NamedTuple):
    """A learned model: the ``Model(init, update, sample)`` triple plus ``fit`` (train
    on the buffer to early stopping), ``predict`` and ``step_fn`` (rollouts), and
    ``add_batch`` (store a whole batch of real transitions at once).

    ``update`` stores the real transition (and takes ``train_steps_per_update``
    minibatch steps); ``sample(state, obs, action, key)`` returns a simulated
    Transition from a uniformly drawn member for one (obs, action) or a batch.
    """

    init: Callable[[PRNGKey], NeuralModelState]
    update: Callable[[NeuralModelState, Transition, PRNGKey], NeuralModelState]
    sample: Callable[[NeuralModelState, Any, Any, PRNGKey], Transition]
    fit: Callable[[NeuralModelState, PRNGKey], NeuralModelState]
    predict: Callable[..., tuple[jax.Array, jax.Array, jax.Array]]
    step_fn: Callable[[NeuralModelState, str], StepFn]
    network: MemberNetwork
    config: ModelConfig
    add_batch: Callable[..., NeuralModelState]

    @property
    def model(self) -> Model:
        return Model(self.init, self.update, self.sample)


def neural_model(
    obs_size: int,
    action_space: Any,
    config: ModelConfig = ModelConfig(),
    *,
    reward_fn: TaskFn | None = None,
    termination_fn: TaskFn | None = None,
) -> NeuralModel:
    """A learned dynamics model of vector observations of size ``obs_size``.

    ``action_space`` is a gymnax ``Box`` (continuous actions of its shape) or
    ``Discrete`` (integer actions, one-hot encoded as inputs). The model learns
    the state change, the reward unless ``reward_fn(obs, action, next_obs)`` is
    given, and the termination if ``config.learn_termination`` and no
    ``termination_fn`` is given (else transitions never terminate).
    ``ensemble_size=1, probabilistic=False`` is a plain deterministic MLP.
    """
    obs_size = check_count("obs_size", obs_size, minimum=1)
    if not isinstance(config, ModelConfig):
        raise ValueError(f"config must be a ModelConfig, got {config!r}")
    num_actions = getattr(action_space, "n", None)
    if num_actions is not None:
        num_actions = check_count("action_space.n", int(num_actions), minimum=1)
        action_size, action_shape = num_actions, ()
    elif hasattr(action_space, "shape"):
        action_shape = tuple(action_space.shape)
        action_size = math.prod(action_shape)
        if action_size < 1:
            raise ValueError(f"the action space has no dimensions: shape {action_shape}")
    else:
        raise ValueError(f"action_space must be a gymnax Box or Discrete, got {action_space!r}")
    learn_reward = reward_fn is None
    learn_termination = config.learn_termination and termination_fn is None
    targets = obs_size + int(learn_reward)
    members = config.ensemble_size
    network = MemberNetwork(config.hidden, targets, config.probabilistic, learn_termination)
    in_size = obs_size + action_size
    optimizer = optax.adamw(
        config.learning_rate,
        weight_decay=config.weight_decay,
        mask=lambda p: jax.tree_util.tree_map_with_path(
            lambda path, _: path[-1].key == "kernel", p
        ),
    )

    def check_obs(obs: Any, batched: bool) -> None:
        """ValueError unless obs is (N, obs_size) (batched) or (obs_size,)."""
        shape = jnp.shape(obs)
        if shape[-1:] != (obs_size,) or len(shape) != 1 + int(batched):
            want = "(N, {0})" if batched else "({0},)"
            raise ValueError(
                f"the model was built for observations of shape ({obs_size},) and expects "
                f"{want.format(obs_size)} here, got an observation of shape {shape}"
            )

    def encode(obs: jax.Array, action: jax.Array) -> jax.Array:
        """Raw network input [obs, action] over leading batch axes (actions one-hot
        when discrete, flattened when continuous)."""
        batch = jnp.shape(obs)[:-1]
        action = jnp.asarray(action)
        if num_actions is not None:
            action = jax.nn.one_hot(action, num_actions, dtype=obs.dtype)
        else:
            if action.shape != (*batch, *action_shape):
                raise ValueError(
                    f"actions must have shape {(*batch, *action_shape)} here, got {action.shape}"
                )
            action = jnp.reshape(action, (*batch, action_size))
        return jnp.concatenate([obs, action.astype(obs.dtype)], axis=-1)

    def target_of(transition: Transition) -> jax.Array:
        """Raw regression target [s' - s, r] (the reward only when learned)."""
        delta = transition.next_obs - transition.obs
        if learn_reward:
            return jnp.concatenate([delta, jnp.asarray(transition.reward)[..., None]], axis=-1)
        return delta

    def init(key: PRNGKey) -> NeuralModelState:
        params = jax.vmap(network.init, in_axes=(0, None))(
            jax.random.split(key, members), jnp.zeros((in_size,))
        )
        example = Transition(
            jnp.zeros((obs_size,)),
            jnp.zeros(action_shape, jnp.int32 if num_actions is not None else jnp.float32),
            jnp.zeros(()),
            jnp.zeros((obs_size,)),
            jnp.zeros((), bool),
        )
        normalizer = Normalizer(
            jnp.zeros((in_size,)), jnp.ones((in_size,)), jnp.zeros((targets,)), jnp.ones((targets,))
        )
        info = TrainInfo(
            jnp.zeros((), jnp.int32),
            jnp.zeros((), jnp.int32),
            jnp.zeros(()),
            jnp.zeros((members,)),
            -jnp.ones((), jnp.int32),
        )
        return NeuralModelState(
            params,
            optimizer.init(params),
            normalizer,
            _stats_init(in_size),
            _stats_init(targets),
            buffer_init(example, config.capacity),
            info,
            jnp.zeros((), jnp.int32),
        )

    def normalizer_from_stats(state: NeuralModelState) -> Normalizer:
        return Normalizer(
            state.input_stats.mean,
            _stats_std(state.input_stats),
            state.target_stats.mean,
            _stats_std(state.target_stats),
        )

    def normalized_batch(data: Transition, normalizer: Normalizer, index: jax.Array):
        """Network inputs, targets and termination flags of the buffer rows ``index``."""
        rows = jax.tree.map(lambda d: d[index], data)
        x = (encode(rows.obs, rows.action) - normalizer.in_mean) / normalizer.in_std
        y = (target_of(rows) - normalizer.out_mean) / normalizer.out_std
        return x, y, rows.done.astype(jnp.float32)

    def gradient_step(params, opt_state, batch, weight: jax.Array):
        """One AdamW step on a batch with a leading member axis (E, B, ...) and weights
        (E, B); a non-finite loss leaves parameters and optimizer state unchanged."""
        loss, grads = jax.value_and_grad(ensemble_loss, argnums=1)(
            network, params, *batch, weight, config.logvar_bound_weight
        )
        updates, new_opt_state = optimizer.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        finite = jnp.isfinite(loss)
        params, opt_state = jax.tree.map(
            lambda new, old: jnp.where(finite, new, old),
            (new_params, new_opt_state),
            (params, opt_state),
        )
        return params, opt_state, loss

    def member_errors(params, x: jax.Array, y: jax.Array, weight: jax.Array) -> jax.Array:
        """(E,) weighted MSE of each member's mean prediction on one batch."""
        mean = jax.vmap(network.apply, in_axes=(0, None))(params, x).mean
        per_item = jnp.mean((mean - y) ** 2, axis=-1)  # (E, N)
        return jnp.sum(weight * per_item, -1) / jnp.maximum(jnp.sum(weight), 1.0)

    # Validation scores a static number of rows: the held-out share of a full buffer.
    score_rows = (
        min(config.capacity, math.ceil(config.capacity * config.validation_fraction))
        if config.validation_fraction > 0
        else config.capacity
    )

    def fit(state: NeuralModelState, key: PRNGKey) -> NeuralModelState:
        """Train on every transition in the buffer until no member's validation error
        has improved by 1% for ``patience`` epochs (or ``max_epochs``); each member
        keeps its best parameters (its current ones if none beat them). Inside jit;
        check ``info`` with :func:`check_training`. An empty buffer trains nothing.

        The written slots are shuffled; the first floor(size * validation_fraction)
        are held out (when none are, members are scored on training data) and each
        member draws a bootstrap resample of the rest (``bootstrap``) or uses it all.
        """
        normalizer = normalizer_from_stats(state)
        data = state.data.data
        capacity = config.capacity
        size = state.data.size
        k_split, k_boot, k_epochs = jax.random.split(key, 3)
        slots = jnp.arange(capacity)
        # The written slots in random order, first; the first num_val of them are held out.
        order = jnp.argsort(jnp.where(slots < size, jax.random.uniform(k_split, (capacity,)), 2.0))
        num_val = jnp.floor(size * config.validation_fraction).astype(jnp.int32)
        num_train = size - num_val
        train_slots = jnp.roll(order, -num_val)  # positions < num_train: training slots
        if config.bootstrap:
            picks = jax.random.randint(k_boot, (members, capacity), 0, jnp.maximum(num_train, 1))
            member_slots = train_slots[picks]
        else:
            member_slots = jnp.broadcast_to(train_slots, (members, capacity))
        num_batches = (num_train + config.batch_size - 1) // config.batch_size
        batch_offsets = jnp.arange(config.batch_size)
        held_out = num_val > 0
        score_slots = jnp.where(held_out, order, train_slots)[:score_rows]
        score_weight = (slots[:score_rows] < jnp.where(held_out, num_val, num_train)).astype(
            jnp.float32
        )
        score_x, score_y, _ = normalized_batch(data, normalizer, score_slots)

        def minibatch(j, inner):
            params, opt_state, perm, steps, nan_step, total = inner
            positions = j * config.batch_size + batch_offsets
            weight = jnp.broadcast_to(positions < num_train, (members, config.batch_size))
            index = jnp.take_along_axis(
                member_slots, perm[:, jnp.minimum(positions, capacity - 1)], axis=-1
            )
            batch = normalized_batch(data, normalizer, index)
            params, opt_state, loss = gradient_step(
                params, opt_state, batch, weight.astype(jnp.float32)
            )
            finite = jnp.isfinite(loss)
            nan_step = jnp.where(~finite & (nan_step < 0), state.total_steps + steps, nan_step)
            total = total + jnp.where(finite, loss, 0.0)
            return params, opt_state, perm, steps + 1, nan_step, total

        def epoch(carry):
            params, opt_state, best_params, best_error, since_best, epoch_i, steps, nan_step = (
                carry[:8]
            )
            # Each member visits its training positions in a fresh random order.
            shuffle = jax.random.uniform(jax.random.fold_in(k_epochs, epoch_i), (members, capacity))
            perm = jnp.argsort(jnp.where(slots < num_train, shuffle, 2.0), axis=-1)
            first_step = steps
            params, opt_state, _, steps, nan_step, total = jax.lax.fori_loop(
                0,
                num_batches,
                minibatch,
                (params, opt_state, perm, steps, nan_step, jnp.zeros(())),
            )
            error = member_errors(params, score_x, score_y, score_weight)
            improved = error < best_error * 0.99
            best_params = jax.tree.map(
                lambda new, old: jnp.where(
                    jnp.reshape(improved, (members,) + (1,) * (new.ndim - 1)), new, old
                ),
                params,
                best_params,
            )
            best_error = jnp.where(improved, error, best_error)
            since_best = jnp.where(jnp.any(improved), 0, since_best + 1)
            loss = total / jnp.maximum(steps - first_step, 1)
            failed = nan_step >= 0
            return (
                params, opt_state, best_params, best_error, since_best, epoch_i + 1, steps,
                nan_step, loss, failed,
            )  # fmt: skip

        def keep_training(carry):
            since_best, epoch_i, failed = carry[4], carry[5], carry[9]
            return (
                (size > 0)
                & (epoch_i < config.max_epochs)
                & (since_best < config.patience)
                & ~failed
            )

        zero = jnp.zeros((), jnp.int32)
        first_error = member_errors(state.params, score_x, score_y, score_weight)
        init = (
            state.params, state.opt_state, state.params, first_error, zero, zero, zero, zero - 1,
            jnp.zeros(()), jnp.zeros((), bool),
        )  # fmt: skip
        _, opt_state, best_params, best_error, _, epochs, steps, nan_step, loss, _ = (
            jax.lax.while_loop(keep_training, epoch, init)
        )
        previous = state.info.nan_step
        return state._replace(
            params=best_params,
            opt_state=opt_state,
            normalizer=normalizer,
            info=TrainInfo(
                epochs, steps, loss, best_error, jnp.where(previous >= 0, previous, nan_step)
            ),
            total_steps=state.total_steps + steps,
        )

    def online_training(state: NeuralModelState, key: PRNGKey) -> NeuralModelState:
        """``train_steps_per_update`` minibatch steps on uniform draws from the buffer."""
        state = state._replace(normalizer=normalizer_from_stats(state))

        def online_step(i, carry):
            params, opt_state, nan_step = carry
            index = jax.random.randint(
                jax.random.fold_in(key, i), (members, config.batch_size), 0, state.data.size
            )
            batch = normalized_batch(state.data.data, state.normalizer, index)
            params, opt_state, loss = gradient_step(params, opt_state, batch, jnp.ones(index.shape))
            failed = ~jnp.isfinite(loss) & (nan_step < 0)
            return params, opt_state, jnp.where(failed, state.total_steps + i, nan_step)

        params, opt_state, nan_step = jax.lax.fori_loop(
            0,
            config.train_steps_per_update,
            online_step,
            (state.params, state.opt_state, state.info.nan_step),
        )
        return state._replace(
            params=params,
            opt_state=opt_state,
            info=state.info._replace(nan_step=nan_step),
            total_steps=state.total_steps + config.train_steps_per_update,
        )

    def add_batch(
        state: NeuralModelState, transitions: Transition, valid: Any = None
    ) -> NeuralModelState:
        """Store a batch of real transitions (leading axis B; ``valid`` (B,) masks
        steps out, e.g. after an episode's end) and update the normalization
        statistics, in one vectorized call. Takes no training steps."""
        check_obs(transitions.obs, batched=True)
        batch = transitions.obs.shape[0]
        valid = jnp.ones((batch,), bool) if valid is None else jnp.asarray(valid, bool)
        transitions = Transition(
            jnp.asarray(transitions.obs, jnp.float32),
            jnp.asarray(transitions.action, state.data.data.action.dtype),
            jnp.asarray(transitions.reward, jnp.float32),
            jnp.asarray(transitions.next_obs, jnp.float32),
            jnp.asarray(transitions.done, bool),
        )
        return state._replace(
            data=buffer_add_batch(state.data, transitions, valid),
            input_stats=_stats_add(
                state.input_stats, encode(transitions.obs, transitions.action), valid
            ),
            target_stats=_stats_add(state.target_stats, target_of(transitions), valid),
        )

    def update(state: NeuralModelState, transition: Transition, key: PRNGKey):
        """Store a real transition (and take online minibatch steps if configured)."""
        check_obs(transition.obs, batched=False)
        state = add_batch(state, jax.tree.map(lambda x: jnp.asarray(x)[None], transition))
        if config.train_steps_per_update == 0:
            return state
        return online_training(state, key)

    def outcome(state, obs, action, out: Prediction, key: PRNGKey, noise: bool):
        """(next_obs, reward, done) from normalized predictions for a batch:

        [s' - s, r] = (mu + noise * exp(logvar / 2) eps) * out_std + out_mean,  eps ~ N(0, I)
        """
        normalizer = state.normalizer
        mean = out.mean
        if config.probabilistic and noise:
            mean = mean + jnp.exp(0.5 * out.logvar) * jax.random.normal(key, mean.shape)
        # Denormalized column by column (state change, then reward): written as one
        # denormalization followed by a slice, XLA fused it with the noise draw into
        # one large loop that made a whole CEM call about 10% slower on a 2-core CPU.
        std, offset = normalizer.out_std, normalizer.out_mean
        next_obs = obs + mean[..., :obs_size] * std[:obs_size] + offset[:obs_size]
        if learn_reward:
            reward = mean[..., obs_size] * std[obs_size] + offset[obs_size]
        else:
            reward = reward_fn(obs, action, next_obs)
        if learn_termination:
            done = out.done_logit > 0
        elif termination_fn is not None:
            done = termination_fn(obs, action, next_obs)
        else:
            done = jnp.zeros(next_obs.shape[:-1], bool)
        return next_obs, jnp.asarray(reward, jnp.float32), jnp.asarray(done, bool)

    def predict_all(params, normalizer: Normalizer, x_raw: jax.Array) -> Prediction:
        """Every member on every input: x_raw (N, in) -> Prediction with (E, N, ...).

        Members run one after another (``lax.map``, weights still stacked): on 10,000
        rows, E = 5 and three 200-unit layers, 15 steps took about 1.2 s on a 2-core
        CPU, against 2.2 s for one batched matmul over all members, whose (E, N, 200)
        activations no longer fit in cache."""
        x = (x_raw - normalizer.in_mean) / normalizer.in_std
        return jax.lax.map(lambda member: network.apply(member, x), params)

    def predict_grouped(params, normalizer: Normalizer, x_raw: jax.Array) -> Prediction:
        """Member i mod E on row i: x_raw (N, in), N a multiple of E -> (N, ...).
        A reshape, one batched matmul per layer and a reshape back."""
        x = (x_raw - normalizer.in_mean) / normalizer.in_std
        out = jax.vmap(network.apply)(params, group_by_member(x, members))
        return jax.tree.map(ungroup, out)

    def predict(state: NeuralModelState, obs, action, key: PRNGKey, propagation: str):
        """Batched one-step prediction (obs (N, D), action (N, ...)) ->
        (next_obs (N, D), reward (N,), done (N,)) under a propagation method:

        - "expectation": the members' mean prediction, without noise;
        - "tsinf": row i sampled from member i mod E (a planner's particle keeps
          its member over the horizon as long as its row index stays the same);
        - "ts1": rows assigned to members by a fresh random permutation (each
          member takes an equal share; when N < E or N mod E != 0, every member
          predicts every row and each row takes a uniformly drawn member).
        """
        check_obs(obs, batched=True)
        check_propagation(propagation)
        k_assign, k_noise = jax.random.split(key)
        n = obs.shape[0]
        x = encode(obs, action)
        if propagation == "expectation":
            out = predict_all(state.params, state.normalizer, x)
            out = jax.tree.map(lambda a: jnp.mean(a, axis=0), out)
            return outcome(state, obs, action, out, k_noise, noise=False)
        if propagation == "tsinf" or (propagation == "ts1" and members == 1):
            # With one member TS1 is TSinf: every row meets member 0.
            # Pad to a multiple of E with copies of the first rows (a static slice),
            # so row i still meets member i mod E; then drop the padding.
            padded = -(-n // members) * members
            if padded != n:
                x = jnp.concatenate([x, jnp.tile(x, (-(-padded // n) - 1, 1))[: padded - n]])
            out = predict_grouped(state.params, state.normalizer, x)
            if padded != n:
                out = jax.tree.map(lambda a: a[:n], out)
            return outcome(state, obs, action, out, k_noise, noise=True)
        if n % members:
            # No equal shares: every member predicts every row, each row takes one.
            out = predict_all(state.params, state.normalizer, x)
            pick = jax.random.randint(k_assign, (n,), 0, members)
            out = jax.tree.map(lambda a: a[pick, jnp.arange(n)], out)
            return outcome(state, obs, action, out, k_noise, noise=True)
        # TS1: position i of a random permutation of the rows goes to member i mod E;
        # the inverse permutation puts each prediction back at its row.
        order = jax.random.permutation(k_assign, n)
        flat = predict_grouped(state.params, state.normalizer, x[order])
        inverse = jnp.zeros((n,), jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
        out = jax.tree.map(lambda a: a[inverse], flat)
        return outcome(state, obs, action, out, k_noise, noise=True)

    def step_fn(state: NeuralModelState, propagation: str = "tsinf") -> StepFn:
        """The model as a batched StepFn over observations, for planners.

        With "tsinf" and a planner's candidate-major rows (row c P + p is particle p
        of candidate c), P a multiple of E, particle p of every candidate keeps
        member p mod E over the whole horizon."""
        check_propagation(propagation)

        def step(obs, action, key):
            return predict(state, obs, action, key, propagation)

        return step

    def sample(state: NeuralModelState, obs, action, key: PRNGKey) -> Transition:
        """A simulated transition from one uniformly drawn member per (obs, action)
        (TS1), for one pair or a batch of pairs."""
        single = jnp.ndim(obs) == 1
        batch_obs = jnp.asarray(obs)[None] if single else obs
        batch_action = jnp.asarray(action)[None] if single else jnp.asarray(action)
        next_obs, reward, done = predict(state, batch_obs, batch_action, key, "ts1")
        if single:
            next_obs, reward, done = next_obs[0], reward[0], done[0]
        return Transition(obs, action, reward, next_obs, done)

    return NeuralModel(init, update, sample, fit, predict, step_fn, network, config, add_batch)
