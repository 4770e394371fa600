"""What a neural model's network sees: raw inputs and targets, and their normalization.

The raw input of (s, a) is [s, a] (a discrete action one-hot, a continuous one
flattened); the raw target of a transition is [s' - s, r] (the reward only when
it is learned). Both are normalized by the mean and standard deviation of all data
seen, kept as running statistics (:class:`RunningStats`) updated with every batch.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mbrl_jax.types import Transition, check_index


class RunningStats(NamedTuple):
    """Count, mean and sum of squared deviations of everything seen (Chan et al.'s
    parallel form of Welford's update)."""

    count: jax.Array  # ()
    mean: jax.Array  # (D,)
    m2: jax.Array  # (D,) sum of squared deviations from the mean


class Normalizer(NamedTuple):
    """Mean and standard deviation of the raw inputs (in) and targets (out)."""

    in_mean: jax.Array
    in_std: jax.Array
    out_mean: jax.Array
    out_std: jax.Array


class _Encoding(NamedTuple):
    """How a model's raw (obs, action) become network inputs and a transition its
    targets (static: Python values only)."""

    obs_size: int
    num_actions: int | None  # Discrete actions (one-hot), None for a Box
    action_shape: tuple[int, ...]  # () for Discrete actions
    learn_reward: bool

    @property
    def action_size(self) -> int:
        return self.num_actions if self.num_actions is not None else math.prod(self.action_shape)

    @property
    def in_size(self) -> int:
        return self.obs_size + self.action_size

    @property
    def targets(self) -> int:
        return self.obs_size + int(self.learn_reward)


def _check_obs(encoding: _Encoding, obs: Any, batched: bool) -> None:
    """ValueError unless obs is (N, obs_size) (batched) or (obs_size,)."""
    shape, size = jnp.shape(obs), encoding.obs_size
    if shape[-1:] != (size,) or len(shape) != 1 + int(batched):
        want = "(N, {0})" if batched else "({0},)"
        raise ValueError(
            f"the model was built for observations of shape ({size},) and expects "
            f"{want.format(size)} here, got an observation of shape {shape}"
        )


def _encode_inputs(encoding: _Encoding, obs: jax.Array, action: jax.Array) -> jax.Array:
    """Raw network input [obs, action] over leading batch axes (actions one-hot
    when discrete, flattened when continuous).

    A discrete action must be an integer in [0, num_actions): another dtype is a
    TypeError, a concrete one out of range a ValueError
    (:func:`~mbrl_jax.types.check_index`); inside jit (where it cannot raise, except
    under :func:`mbrl_jax.train.checked`) its encoding is all NaN, never an all-zero
    one-hot: predictions from it are NaN and training on it reports a NaN loss."""
    batch = jnp.shape(obs)[:-1]
    action = jnp.asarray(action)
    if encoding.num_actions is not None:
        valid = check_index("neural_model", "action", action, encoding.num_actions)
        action = jax.nn.one_hot(action, encoding.num_actions, dtype=obs.dtype)
        action = jnp.where(valid[..., None], action, jnp.nan)
    else:
        if action.shape != (*batch, *encoding.action_shape):
            raise ValueError(
                f"actions must have shape {(*batch, *encoding.action_shape)} here, "
                f"got {action.shape}"
            )
        action = jnp.reshape(action, (*batch, encoding.action_size))
    return jnp.concatenate([obs, action.astype(obs.dtype)], axis=-1)


def _encode_targets(encoding: _Encoding, transition: Transition) -> jax.Array:
    """Raw regression target [s' - s, r] (the reward only when learned)."""
    delta = transition.next_obs - transition.obs
    if encoding.learn_reward:
        return jnp.concatenate([delta, jnp.asarray(transition.reward)[..., None]], axis=-1)
    return delta


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


def _identity_normalizer(encoding: _Encoding) -> Normalizer:
    """Zero means and unit standard deviations: what a model predicts with before training."""
    ins, outs = encoding.in_size, encoding.targets
    return Normalizer(jnp.zeros((ins,)), jnp.ones((ins,)), jnp.zeros((outs,)), jnp.ones((outs,)))


def _normalizer_from_stats(input_stats: RunningStats, target_stats: RunningStats) -> Normalizer:
    return Normalizer(
        input_stats.mean, _stats_std(input_stats), target_stats.mean, _stats_std(target_stats)
    )


def _normalized_batch(
    encoding: _Encoding, data: Transition, normalizer: Normalizer, index: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Network inputs, targets and termination flags of the buffer rows ``index``."""
    rows = jax.tree.map(lambda d: d[index], data)
    x = (_encode_inputs(encoding, rows.obs, rows.action) - normalizer.in_mean) / normalizer.in_std
    y = (_encode_targets(encoding, rows) - normalizer.out_mean) / normalizer.out_std
    return x, y, rows.done.astype(jnp.float32)
