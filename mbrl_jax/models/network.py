"""The network of a neural model and its losses.

One ensemble member is an MLP with swish hidden layers (PETS) mapping a normalized
(observation, action) to the normalized state change and reward

    [s' - s, r] ~ N(mu_theta(s, a), diag(exp(logvar_theta(s, a))))

(a probabilistic member) or to their mean alone (a deterministic one), plus a
termination logit when the termination is learned. The log-variance is softly
bounded by learned bounds (PETS, appendix A.1):

    logvar = max_logvar - softplus(max_logvar - raw)
    logvar = min_logvar + softplus(logvar - min_logvar)

and ``logvar_bound_weight`` (sum max_logvar - sum min_logvar) is added to each
member's loss so the bounds tighten. An ensemble is one set of parameters with a
leading member axis E: members are a ``vmap`` over parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax


def _swish(x: jax.Array) -> jax.Array:
    """swish(x) = x sigmoid(x), written x (1/2 + tanh(x / 2) / 2): the same function
    (sigmoid(x) = (1 + tanh(x / 2)) / 2, equal to float32 rounding), but XLA's CPU tanh
    is a rational approximation, cheaper than the exp and divide of ``nn.silu``. With
    the members run one at a time (:mod:`~mbrl_jax.models.propagation`) the PETS
    planning call took 0.69x the time of the code before (1.33 s against 1.92 s,
    medians of four alternating runs on a quiet 2-core CPU, benchmarks/RESULTS.md,
    2026-12-01, issue 17)."""
    return x * (0.5 + 0.5 * jnp.tanh(0.5 * x))


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
            x = _swish(nn.Dense(width)(x))
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


def _member_errors(
    network: MemberNetwork, params: Any, x: jax.Array, y: jax.Array, weight: jax.Array
) -> jax.Array:
    """(E,) weighted MSE of each member's mean prediction on one batch x (N, in),
    y (N, T), weight (N,) (the validation score of early stopping)."""
    mean = jax.vmap(network.apply, in_axes=(0, None))(params, x).mean
    per_item = jnp.mean((mean - y) ** 2, axis=-1)  # (E, N)
    return jnp.sum(weight * per_item, -1) / jnp.maximum(jnp.sum(weight), 1.0)
