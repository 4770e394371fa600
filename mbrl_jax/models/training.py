"""Training a neural model on its replay buffer, inside jit.

:func:`_fit` (``NeuralModel.fit``) trains to early stopping: the written slots are
shuffled; the first floor(size * validation_fraction) are held out (when none are,
members are scored on training data) and each member draws a bootstrap resample of
the rest (or uses it all). Every epoch each member visits its training rows in a
fresh random order in minibatches of AdamW (weight decay on kernels); training stops
when no member's validation error has improved by 1% for ``patience`` epochs (or
after ``max_epochs``), and each member keeps its best parameters. A non-finite loss
skips its step, stops training and is reported by the gradient step at which it
happened (:class:`TrainInfo`, checked outside jit by ``check_training``).

:func:`_online_training` takes a fixed number of minibatch steps on uniform draws
from the buffer (``NeuralModel.update`` with ``train_steps_per_update > 0``).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from mbrl_jax.models.network import MemberNetwork, _member_errors, ensemble_loss
from mbrl_jax.models.normalization import Normalizer, _Encoding, _normalized_batch
from mbrl_jax.replay import ReplayBuffer, uniform_index
from mbrl_jax.types import PRNGKey, Transition
from mbrl_jax.validation import check_bool, check_count, check_in_range, check_positive


class TrainInfo(NamedTuple):
    """What the last ``NeuralModel.fit`` did."""

    epochs: jax.Array  # () int32 epochs run
    steps: jax.Array  # () int32 gradient steps taken
    train_loss: jax.Array  # () mean training loss (summed over members) of the last epoch
    validation_error: jax.Array  # (E,) best validation MSE (normalized) of each member
    # () int32 first gradient step (counted over the model's life, as total_steps)
    # whose loss was not finite; -1 if none. It stays set once set.
    nan_step: jax.Array


def _initial_info(members: int) -> TrainInfo:
    zero = jnp.zeros((), jnp.int32)
    return TrainInfo(zero, zero, jnp.zeros(()), jnp.zeros((members,)), -jnp.ones((), jnp.int32))


class _Trainer(NamedTuple):
    """What training needs, fixed when the model is built (``logvar_bound_weight`` and
    the optimizer's step size and weight decay may be traced; the rest is static)."""

    network: MemberNetwork
    optimizer: optax.GradientTransformation
    encoding: _Encoding
    members: int
    capacity: int
    batch_size: int
    max_epochs: int
    patience: int
    validation_fraction: float
    bootstrap: bool
    logvar_bound_weight: Any
    train_steps_per_update: int

    @property
    def score_rows(self) -> int:
        """Validation scores a static number of rows: the held-out share of a full buffer."""
        if self.validation_fraction > 0:
            return min(self.capacity, math.ceil(self.capacity * self.validation_fraction))
        return self.capacity


def _check_flags(**flags: Any) -> None:
    for name, value in flags.items():
        check_bool(name, value)


def _trainer(
    network: MemberNetwork,
    encoding: _Encoding,
    *,
    members: int,
    capacity: int,
    learning_rate: Any,
    weight_decay: Any,
    batch_size: int,
    max_epochs: int,
    patience: int,
    validation_fraction: float,
    bootstrap: bool,
    train_steps_per_update: int,
    logvar_bound_weight: Any,
) -> _Trainer:
    """The trainer of ``network``, every setting checked (clear errors naming the value;
    traced values are not checked)."""
    _check_flags(bootstrap=bootstrap)
    check_in_range("validation_fraction", validation_fraction, 0.0, 0.9)
    check_positive("learning_rate", learning_rate)
    check_in_range("weight_decay", weight_decay, 0.0, 1.0)
    check_in_range("logvar_bound_weight", logvar_bound_weight, 0.0, math.inf)
    return _Trainer(
        network,
        _optimizer(learning_rate, weight_decay),
        encoding,
        members=check_count("ensemble_size", members, minimum=1),
        capacity=check_count("capacity", capacity, minimum=1),
        batch_size=check_count("batch_size", batch_size, minimum=1),
        max_epochs=check_count("max_epochs", max_epochs, minimum=1),
        patience=check_count("patience", patience, minimum=1),
        validation_fraction=validation_fraction,
        bootstrap=bootstrap,
        logvar_bound_weight=logvar_bound_weight,
        train_steps_per_update=check_count("train_steps_per_update", train_steps_per_update),
    )


def _optimizer(learning_rate: Any, weight_decay: Any) -> optax.GradientTransformation:
    """AdamW with weight decay on the kernels only (not biases or log-variance bounds)."""
    return optax.adamw(
        learning_rate,
        weight_decay=weight_decay,
        mask=lambda p: jax.tree_util.tree_map_with_path(
            lambda path, _: path[-1].key == "kernel", p
        ),
    )


def _gradient_step(trainer: _Trainer, params, opt_state, batch, weight: jax.Array):
    """One AdamW step on a batch with a leading member axis (E, B, ...) and weights
    (E, B); a non-finite loss leaves parameters and optimizer state unchanged.

    Not ``optax.apply_if_finite``: that one tests the gradients, not the loss, gives
    up after ``max_consecutive_errors`` skipped steps and adds its own state to the
    optimizer's; here the skipped step is the one whose loss is not finite, which is
    also the step reported in ``TrainInfo.nan_step``."""
    loss, grads = jax.value_and_grad(ensemble_loss, argnums=1)(
        trainer.network, params, *batch, weight, trainer.logvar_bound_weight
    )
    updates, new_opt_state = trainer.optimizer.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    params, opt_state = optax.tree.where(
        jnp.isfinite(loss), (new_params, new_opt_state), (params, opt_state)
    )
    return params, opt_state, loss


class _FitInputs(NamedTuple):
    """What every epoch of one fit reads: the data, its split and the validation batch."""

    data: Transition  # the buffer's arrays, leading axis capacity
    normalizer: Normalizer
    size: jax.Array  # () rows written
    num_train: jax.Array  # () training rows (the rest is held out)
    member_slots: jax.Array  # (E, capacity) the training slots of each member
    score_x: jax.Array  # (score_rows, in) validation inputs
    score_y: jax.Array  # (score_rows, T) validation targets
    score_weight: jax.Array  # (score_rows,) 1 on the rows that count
    epoch_key: PRNGKey
    first_step: jax.Array  # () total_steps before this fit


def _split(
    trainer: _Trainer, buffer: ReplayBuffer, normalizer: Normalizer, total_steps, key: PRNGKey
) -> _FitInputs:
    """Shuffle the written slots, hold out the first floor(size * validation_fraction)
    and give each member its (bootstrap) training slots and the validation batch."""
    capacity, members, size = trainer.capacity, trainer.members, buffer.size
    k_split, k_boot, k_epochs = jax.random.split(key, 3)
    slots = jnp.arange(capacity)
    # The written slots in random order, first; the first num_val of them are held out.
    order = jnp.argsort(jnp.where(slots < size, jax.random.uniform(k_split, (capacity,)), 2.0))
    num_val = jnp.floor(size * trainer.validation_fraction).astype(jnp.int32)
    num_train = size - num_val
    train_slots = jnp.roll(order, -num_val)  # positions < num_train: training slots
    if trainer.bootstrap:
        picks = jax.random.randint(k_boot, (members, capacity), 0, jnp.maximum(num_train, 1))
        member_slots = train_slots[picks]
    else:
        member_slots = jnp.broadcast_to(train_slots, (members, capacity))
    held_out = num_val > 0
    rows = trainer.score_rows
    score_slots = jnp.where(held_out, order, train_slots)[:rows]
    score_weight = (slots[:rows] < jnp.where(held_out, num_val, num_train)).astype(jnp.float32)
    score_x, score_y, _ = _normalized_batch(trainer.encoding, buffer.data, normalizer, score_slots)
    return _FitInputs(
        buffer.data, normalizer, size, num_train, member_slots, score_x, score_y, score_weight,
        k_epochs, total_steps,
    )  # fmt: skip


class _MinibatchCarry(NamedTuple):
    params: Any
    opt_state: Any
    steps: jax.Array  # () gradient steps of this fit so far
    nan_step: jax.Array  # () first non-finite step (over the model's life), -1 if none
    loss_sum: jax.Array  # () sum of this epoch's finite losses


def _minibatch(
    trainer: _Trainer, fit: _FitInputs, perm: jax.Array, j, carry: _MinibatchCarry
) -> _MinibatchCarry:
    """Gradient step on minibatch ``j`` of the epoch: positions j B .. j B + B - 1 of
    each member's permutation ``perm`` (E, capacity), masked past its training rows."""
    batch_size = trainer.batch_size
    positions = j * batch_size + jnp.arange(batch_size)
    weight = jnp.broadcast_to(positions < fit.num_train, (trainer.members, batch_size))
    index = jnp.take_along_axis(
        fit.member_slots, perm[:, jnp.minimum(positions, trainer.capacity - 1)], axis=-1
    )
    batch = _normalized_batch(trainer.encoding, fit.data, fit.normalizer, index)
    params, opt_state, loss = _gradient_step(
        trainer, carry.params, carry.opt_state, batch, weight.astype(jnp.float32)
    )
    finite = jnp.isfinite(loss)
    first_bad = ~finite & (carry.nan_step < 0)
    return _MinibatchCarry(
        params,
        opt_state,
        carry.steps + 1,
        jnp.where(first_bad, fit.first_step + carry.steps, carry.nan_step),
        carry.loss_sum + jnp.where(finite, loss, 0.0),
    )


class _EpochCarry(NamedTuple):
    params: Any
    opt_state: Any
    best_params: Any  # each member's parameters of its best validation error
    best_error: jax.Array  # (E,)
    since_best: jax.Array  # () epochs since any member improved by 1%
    epoch: jax.Array  # () epochs run
    steps: jax.Array  # () gradient steps of this fit
    nan_step: jax.Array  # () first non-finite step (over the model's life), -1 if none
    loss: jax.Array  # () mean training loss of the last epoch
    failed: jax.Array  # () bool, a loss was not finite


def _epoch(trainer: _Trainer, fit: _FitInputs, carry: _EpochCarry) -> _EpochCarry:
    """One epoch: every member visits its training positions in a fresh random order,
    then each member keeps its parameters if they beat its best validation error by 1%."""
    shuffle = jax.random.uniform(
        jax.random.fold_in(fit.epoch_key, carry.epoch), (trainer.members, trainer.capacity)
    )
    perm = jnp.argsort(jnp.where(jnp.arange(trainer.capacity) < fit.num_train, shuffle, 2.0), -1)
    num_batches = (fit.num_train + trainer.batch_size - 1) // trainer.batch_size
    start = _MinibatchCarry(
        carry.params, carry.opt_state, carry.steps, carry.nan_step, jnp.zeros(())
    )
    done = jax.lax.fori_loop(
        0, num_batches, functools.partial(_minibatch, trainer, fit, perm), start
    )
    error = _member_errors(trainer.network, done.params, fit.score_x, fit.score_y, fit.score_weight)
    improved = error < carry.best_error * 0.99
    # Per member: vmapped over the leading member axis of the parameters.
    best_params = jax.vmap(optax.tree.where)(improved, done.params, carry.best_params)
    return _EpochCarry(
        done.params,
        done.opt_state,
        best_params,
        jnp.where(improved, error, carry.best_error),
        jnp.where(jnp.any(improved), 0, carry.since_best + 1),
        carry.epoch + 1,
        done.steps,
        done.nan_step,
        done.loss_sum / jnp.maximum(done.steps - carry.steps, 1),
        done.nan_step >= 0,
    )


def _keep_training(trainer: _Trainer, fit: _FitInputs, carry: _EpochCarry) -> jax.Array:
    return (
        (fit.size > 0)
        & (carry.epoch < trainer.max_epochs)
        & (carry.since_best < trainer.patience)
        & ~carry.failed
    )


def _fit(
    trainer: _Trainer,
    params,
    opt_state,
    buffer: ReplayBuffer,
    normalizer: Normalizer,
    total_steps: jax.Array,
    nan_step: jax.Array,
    key: PRNGKey,
) -> tuple[Any, Any, TrainInfo]:
    """Train ``params`` on every transition in ``buffer`` to early stopping: (each
    member's best parameters, the optimizer state, what the fit did). ``nan_step``, the
    model's first non-finite step so far, stays if set. An empty buffer trains nothing."""
    fit = _split(trainer, buffer, normalizer, total_steps, key)
    first_error = _member_errors(
        trainer.network, params, fit.score_x, fit.score_y, fit.score_weight
    )
    zero = jnp.zeros((), jnp.int32)
    start = _EpochCarry(
        params, opt_state, params, first_error, zero, zero, zero, zero - 1, jnp.zeros(()),
        jnp.zeros((), bool),
    )  # fmt: skip
    end = jax.lax.while_loop(
        functools.partial(_keep_training, trainer, fit),
        functools.partial(_epoch, trainer, fit),
        start,
    )
    info = TrainInfo(
        end.epoch,
        end.steps,
        end.loss,
        end.best_error,
        jnp.where(nan_step >= 0, nan_step, end.nan_step),
    )
    return end.best_params, end.opt_state, info


class _OnlineCarry(NamedTuple):
    params: Any
    opt_state: Any
    nan_step: jax.Array


def _online_step(
    trainer: _Trainer, buffer: ReplayBuffer, normalizer: Normalizer, total_steps, key, i, carry
) -> _OnlineCarry:
    shape = (trainer.members, trainer.batch_size)
    index = uniform_index(jax.random.fold_in(key, i), shape, jnp.maximum(buffer.size, 1))
    batch = _normalized_batch(trainer.encoding, buffer.data, normalizer, index)
    params, opt_state, loss = _gradient_step(
        trainer, carry.params, carry.opt_state, batch, jnp.ones(index.shape)
    )
    failed = ~jnp.isfinite(loss) & (carry.nan_step < 0)
    return _OnlineCarry(params, opt_state, jnp.where(failed, total_steps + i, carry.nan_step))


def _online_training(
    trainer: _Trainer,
    params,
    opt_state,
    buffer: ReplayBuffer,
    normalizer: Normalizer,
    total_steps: jax.Array,
    nan_step: jax.Array,
    key: PRNGKey,
) -> _OnlineCarry:
    """``train_steps_per_update`` minibatch steps, each on uniform draws from the buffer
    (a separate batch per member); the first non-finite step is recorded in ``nan_step``."""
    step = functools.partial(_online_step, trainer, buffer, normalizer, total_steps, key)
    start = _OnlineCarry(params, opt_state, nan_step)
    return jax.lax.fori_loop(0, trainer.train_steps_per_update, step, start)
