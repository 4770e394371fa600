"""Propagating particles through a neural ensemble (PETS, section 5).

One batched prediction of (next_obs, reward, done) from (obs (N, D), action (N, ...))
under a propagation method:

- ``"expectation"``: every row moves by the members' mean prediction, without noise;
- ``"tsinf"``: row i is sampled from member i mod E, so a planner's particle keeps
  its member for the whole horizon as long as its row index stays the same;
- ``"ts1"``: rows are assigned to members by a fresh random permutation at every
  step (each member takes an equal share; when N < E or N mod E != 0, every member
  predicts every row and each row takes a uniformly drawn member).

Row i meets member i mod E by a reshape and a transpose (:func:`_group_by_member`, no
gather); the members then run one after another over their rows (``lax.map`` over
the stacked members' weights).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from mbrl_jax.models.network import MemberNetwork, Prediction
from mbrl_jax.models.normalization import Normalizer, _encode_inputs, _Encoding
from mbrl_jax.types import PRNGKey

PROPAGATIONS = ("expectation", "ts1", "tsinf")

#: A known part of the task: (obs (N, D), action (N, ...), next_obs (N, D)) -> (N,)
TaskFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]

Outcome = tuple[jax.Array, jax.Array, jax.Array]  # next_obs (N, D), reward (N,), done (N,)


def check_propagation(propagation: str) -> None:
    """Raise ValueError unless ``propagation`` is one of :data:`PROPAGATIONS`."""
    if propagation not in PROPAGATIONS:
        raise ValueError(f"propagation must be one of {PROPAGATIONS}, got {propagation!r}")


def _group_by_member(x: jax.Array, members: int) -> jax.Array:
    """(N, ...) -> (E, N / E, ...) with row i in group i mod E: a reshape and a
    transpose, no gather. N must be a multiple of E."""
    return jnp.swapaxes(jnp.reshape(x, (x.shape[0] // members, members, *x.shape[1:])), 0, 1)


def _ungroup(x: jax.Array) -> jax.Array:
    """The inverse of :func:`_group_by_member`: (E, M, ...) -> (M E, ...)."""
    return jnp.reshape(jnp.swapaxes(x, 0, 1), (x.shape[0] * x.shape[1], *x.shape[2:]))


class _Predictor(NamedTuple):
    """What prediction needs, fixed when the model is built."""

    network: MemberNetwork
    members: int
    encoding: _Encoding
    reward_fn: TaskFn | None  # the known reward, or None when it is learned
    termination_fn: TaskFn | None  # the known termination, or None (learned or never)


def _predict_all(network: MemberNetwork, params, normalizer: Normalizer, x_raw) -> Prediction:
    """Every member on every input: x_raw (N, in) -> Prediction with (E, N, ...).

    Members run one after another (``lax.map``, weights still stacked): on 10,000
    rows, E = 5 and three 200-unit layers, 15 steps took about 1.2 s on a 2-core
    CPU, against 2.2 s for one batched matmul over all members, whose (E, N, 200)
    activations no longer fit in cache."""
    x = (x_raw - normalizer.in_mean) / normalizer.in_std
    return jax.lax.map(lambda member: network.apply(member, x), params)


def _predict_grouped(p: _Predictor, params, normalizer: Normalizer, x_raw) -> Prediction:
    """Member i mod E on row i: x_raw (N, in), N a multiple of E -> (N, ...).
    A reshape, the members one after another (``lax.map``) on their N / E rows each,
    and a reshape back. One batched matmul per layer over all members (``vmap``) did
    the same work with (E, N / E, 200) activations, 8 MB a layer for the PETS call's
    10,000 rows, that the cache of a shared 2-core CPU does not hold; one member's
    1.6 MB does better (benchmarks/RESULTS.md, 2026-12-01, issue 17)."""
    x = (x_raw - normalizer.in_mean) / normalizer.in_std
    grouped = (params, _group_by_member(x, p.members))
    out = jax.lax.map(lambda member: p.network.apply(*member), grouped)
    return jax.tree.map(_ungroup, out)


def _outcome(
    p: _Predictor, normalizer: Normalizer, obs, action, out: Prediction, key, noise: bool
) -> Outcome:
    """(next_obs, reward, done) from normalized predictions for a batch:

    [s' - s, r] = (mu + noise * exp(logvar / 2) eps) * out_std + out_mean,  eps ~ N(0, I)
    """
    mean, obs_size = out.mean, p.encoding.obs_size
    if p.network.probabilistic and noise:
        mean = mean + jnp.exp(0.5 * out.logvar) * jax.random.normal(key, mean.shape)
    # Denormalized column by column (state change, then reward): written as one
    # denormalization followed by a slice, XLA fused it with the noise draw into
    # one large loop that made a whole CEM call about 10% slower on a 2-core CPU.
    std, offset = normalizer.out_std, normalizer.out_mean
    next_obs = obs + mean[..., :obs_size] * std[:obs_size] + offset[:obs_size]
    if p.reward_fn is None:
        reward = mean[..., obs_size] * std[obs_size] + offset[obs_size]
    else:
        reward = p.reward_fn(obs, action, next_obs)
    if p.network.learn_termination:
        done = out.done_logit > 0
    elif p.termination_fn is not None:
        done = p.termination_fn(obs, action, next_obs)
    else:
        done = jnp.zeros(next_obs.shape[:-1], bool)
    return next_obs, jnp.asarray(reward, jnp.float32), jnp.asarray(done, bool)


def _expectation(p: _Predictor, params, normalizer, obs, action, key: PRNGKey) -> Outcome:
    x = _encode_inputs(p.encoding, obs, action)
    out = jax.tree.map(
        lambda a: jnp.mean(a, axis=0), _predict_all(p.network, params, normalizer, x)
    )
    return _outcome(p, normalizer, obs, action, out, jax.random.split(key)[1], noise=False)


def _tsinf(p: _Predictor, params, normalizer, obs, action, key: PRNGKey) -> Outcome:
    """Row i from member i mod E. Padded to a multiple of E with copies of the first
    rows (a static slice), so row i still meets member i mod E; then unpadded."""
    x, n = _encode_inputs(p.encoding, obs, action), obs.shape[0]
    padded = -(-n // p.members) * p.members
    if padded != n:
        x = jnp.concatenate([x, jnp.tile(x, (-(-padded // n) - 1, 1))[: padded - n]])
    out = _predict_grouped(p, params, normalizer, x)
    if padded != n:
        out = jax.tree.map(lambda a: a[:n], out)
    return _outcome(p, normalizer, obs, action, out, jax.random.split(key)[1], noise=True)


def _ts1(p: _Predictor, params, normalizer, obs, action, key: PRNGKey) -> Outcome:
    """Rows to members by a fresh random permutation: position i of the permutation
    goes to member i mod E and the inverse permutation puts each prediction back at its
    row; without equal shares every member predicts every row and each row takes one."""
    if p.members == 1:  # TS1 is TSinf: every row meets member 0.
        return _tsinf(p, params, normalizer, obs, action, key)
    k_assign, k_noise = jax.random.split(key)
    x, n = _encode_inputs(p.encoding, obs, action), obs.shape[0]
    if n % p.members:
        out = _predict_all(p.network, params, normalizer, x)
        pick = jax.random.randint(k_assign, (n,), 0, p.members)
        out = jax.tree.map(lambda a: a[pick, jnp.arange(n)], out)
        return _outcome(p, normalizer, obs, action, out, k_noise, noise=True)
    order = jax.random.permutation(k_assign, n)
    flat = _predict_grouped(p, params, normalizer, x[order])
    inverse = jnp.zeros((n,), jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
    out = jax.tree.map(lambda a: a[inverse], flat)
    return _outcome(p, normalizer, obs, action, out, k_noise, noise=True)


def _disagreement(p: _Predictor, params, normalizer: Normalizer, obs, action) -> jax.Array:
    """The members' spread on a batch, (N,): the standard deviation over members of the
    normalized mean state change, averaged over the state dimensions
    (:mod:`~mbrl_jax.models.disagreement`). Every member predicts every row. The
    variance is taken of the deviations from member 0 (shift-invariant), so members
    that agree give exactly 0, where ``jnp.std`` leaves the rounding of their mean."""
    x = _encode_inputs(p.encoding, obs, action)
    mean = _predict_all(p.network, params, normalizer, x).mean[..., : p.encoding.obs_size]
    deviation = mean - mean[:1]
    variance = jnp.mean(deviation**2, axis=0) - jnp.mean(deviation, axis=0) ** 2
    return jnp.mean(jnp.sqrt(jnp.maximum(variance, 0.0)), axis=-1)


_METHODS = {"expectation": _expectation, "ts1": _ts1, "tsinf": _tsinf}


def _predict(
    p: _Predictor, params: Any, normalizer: Normalizer, obs, action, key: PRNGKey, propagation: str
) -> Outcome:
    """Batched one-step prediction under ``propagation`` (see the module docstring)."""
    check_propagation(propagation)
    return _METHODS[propagation](p, params, normalizer, obs, action, key)
