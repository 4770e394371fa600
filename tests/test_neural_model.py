"""Learned neural dynamics models: loss, learning a known system, particle propagation,
input checks, NaN reporting and reproducibility."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from gymnax.environments import spaces

from mbrl_jax.models import (
    PROPAGATIONS,
    NeuralModelState,
    TrainInfo,
    check_training,
    ensemble_loss,
    gaussian_nll,
    member_loss,
    neural_model,
)
from mbrl_jax.models.normalization import (
    _encode_inputs,
    _encode_targets,
    _Encoding,
    _normalizer_from_stats,
    _stats_add,
    _stats_init,
    _stats_std,
)
from mbrl_jax.models.propagation import _group_by_member, _ungroup
from mbrl_jax.models.training import _epoch, _EpochCarry, _optimizer, _split, _Trainer
from mbrl_jax.types import Transition

OBS, ACT = 3, 2
A = np.array([[0.9, 0.2, 0.0], [-0.1, 0.8, 0.1], [0.0, 0.3, 0.7]], np.float32)
B = np.array([[0.5, 0.0], [0.0, 0.4], [0.2, -0.3]], np.float32)
C = np.array([1.0, -0.5, 0.2], np.float32)  # reward = C s + D a
D = np.array([0.3, -0.1], np.float32)
BOX = spaces.Box(-1.0, 1.0, (ACT,))


def linear_transitions(n: int, seed: int) -> Transition:
    """Noise-free data of s' = A s + B a, r = C s + D a."""
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, OBS)).astype(np.float32)
    a = rng.uniform(-1, 1, (n, ACT)).astype(np.float32)
    return Transition(s, a, s @ C + a @ D, s @ A.T + a @ B.T, np.zeros(n, bool))


def small_model(**overrides):
    """A model of the linear system with small training settings, ``overrides`` applied."""
    settings = dict(
        hidden=(32, 32), capacity=400, learning_rate=3e-3, batch_size=32, max_epochs=200,
        patience=20,
    )  # fmt: skip
    return neural_model(OBS, BOX, **{**settings, **overrides})


class Fitted:
    """A model, its jitted functions and a state fitted to the linear system."""

    def __init__(self, **settings):
        self.model = small_model(**settings)
        self.add_batch = jax.jit(self.model.add_batch)
        self.fit = jax.jit(self.model.fit)
        self.predict = jax.jit(self.model.predict, static_argnums=4)
        self.empty = jax.jit(self.model.init)(jax.random.key(0))
        self.filled = self.add_batch(self.empty, linear_transitions(400, seed=0))
        self.state = self.fit(self.filled, jax.random.key(1))


@pytest.fixture(scope="module")
def deterministic():
    return Fitted(ensemble_size=1, probabilistic=False)


@pytest.fixture(scope="module")
def ensemble():
    return Fitted(ensemble_size=3, probabilistic=True)


# ---------------------------------------------------------------- loss


E = 3


@pytest.fixture(scope="module")
def tiny():
    """A small probabilistic ensemble (obs 2, action 1, E members, one hidden layer
    of 8) and a freshly initialized state."""
    model = neural_model(2, spaces.Box(-1.0, 1.0, (1,)), ensemble_size=E, hidden=(8,))
    return model, jax.jit(model.init)(jax.random.key(3))


def test_ensemble_nll_matches_hand_computation(tiny):
    model, state = tiny
    params = jax.tree.map(lambda p: p, state.params)  # a fresh dict to edit
    # Bounds away from their initial values, so the soft bounding and penalty matter.
    params["params"]["max_logvar"] = jnp.array([[0.3, -0.2, 0.1], [0.5, 0.4, -0.1], [1, 0, 0]])
    params["params"]["min_logvar"] = jnp.array([[-2, -1, -3], [-0.5, -4, -1.5], [-1, -1, -1]])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(E, 4, 3)).astype(np.float32) * 3  # (E, B, in): obs 2 + action 1
    y = rng.normal(size=(E, 4, 3)).astype(np.float32)  # (E, B, T): delta 2 + reward 1
    done = np.zeros((E, 4), np.float32)
    weight = np.array([[1, 1, 1, 1], [1, 0, 1, 1], [0, 0, 1, 0]], np.float32)  # masked items

    def softplus(v):
        return np.logaddexp(0.0, v)

    def by_hand(e: int) -> float:
        """The member's forward pass, soft log-variance bounds and loss in float64 numpy."""
        p = jax.tree.map(lambda a: np.asarray(a[e], np.float64), params)["params"]
        h = x[e] @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]
        h = h / (1 + np.exp(-h))  # swish
        out = h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"]
        mean, raw = out[:, :3], out[:, 3:]
        lo, hi = p["min_logvar"], p["max_logvar"]
        logvar = hi - softplus(hi - raw)
        logvar = lo + softplus(logvar - lo)
        per_item = np.mean((y[e] - mean) ** 2 * np.exp(-logvar) + logvar, axis=-1)
        nll = np.sum(weight[e] * per_item) / np.sum(weight[e])
        return nll + 0.01 * (hi.sum() - lo.sum())

    member_0 = jax.tree.map(lambda p: p[0], params)
    got = jax.jit(member_loss, static_argnums=0)(
        model.network, member_0, x[0], y[0], done[0], weight[0]
    )
    np.testing.assert_allclose(got, by_hand(0), rtol=1e-5)
    total = jax.jit(ensemble_loss, static_argnums=0)(model.network, params, x, y, done, weight)
    np.testing.assert_allclose(total, sum(by_hand(e) for e in range(E)), rtol=1e-5)
    # gaussian_nll itself, entry by entry.
    np.testing.assert_allclose(
        gaussian_nll(jnp.array([1.0]), jnp.array([np.log(4.0)]), jnp.array([3.0])),
        [4.0 / 4.0 + np.log(4.0)],
        rtol=1e-6,
    )


# ---------------------------------------------------------------- learning a known system


def assert_recovers_linear_system(fitted: Fitted, propagation: str, tol: float) -> None:
    test = linear_transitions(100, seed=1)  # held-out inputs
    next_obs, reward, done = fitted.predict(
        fitted.state, test.obs, test.action, jax.random.key(2), propagation
    )
    check_training(fitted.state)
    err = np.abs(np.asarray(next_obs) - test.next_obs)
    assert err.mean() < tol / 4 and err.max() < tol, (err.mean(), err.max())
    reward_err = np.abs(np.asarray(reward) - test.reward)
    assert reward_err.mean() < tol / 4 and reward_err.max() < 2 * tol
    assert not np.any(done)


def test_deterministic_mlp_recovers_linear_system(deterministic):
    assert deterministic.state.info.steps > 0
    assert_recovers_linear_system(deterministic, "expectation", tol=0.1)
    assert_recovers_linear_system(deterministic, "tsinf", tol=0.1)


def test_probabilistic_ensemble_recovers_linear_system(ensemble):
    info = ensemble.state.info
    assert info.validation_error.shape == (3,) and np.all(info.validation_error < 1e-2)
    assert_recovers_linear_system(ensemble, "expectation", tol=0.1)
    # A sampled member with its (small, learned) noise is close too.
    assert_recovers_linear_system(ensemble, "tsinf", tol=0.2)


def test_normalization_statistics_match_numpy(deterministic):
    data = linear_transitions(400, seed=0)
    stats = deterministic.filled.input_stats
    inputs = np.concatenate([data.obs, data.action], axis=1)
    np.testing.assert_allclose(stats.mean, inputs.mean(0), atol=1e-5)
    np.testing.assert_allclose(np.sqrt(stats.m2 / stats.count), inputs.std(0), rtol=1e-4)
    targets = np.concatenate([data.next_obs - data.obs, data.reward[:, None]], axis=1)
    np.testing.assert_allclose(deterministic.filled.target_stats.mean, targets.mean(0), atol=1e-5)
    assert int(deterministic.filled.data.size) == 400


def test_update_one_by_one_equals_add_batch(deterministic):
    model = deterministic.model
    data = linear_transitions(30, seed=5)
    valid = np.arange(30) % 4 != 0

    @jax.jit
    def one_by_one(state):
        def body(state, inputs):
            transition, ok = inputs
            stored = model.update(state, transition, jax.random.key(0))
            return optax.tree.where(ok, stored, state), None

        return jax.lax.scan(body, state, (data, valid))[0]

    a = one_by_one(deterministic.empty)
    b = deterministic.add_batch(deterministic.empty, data, valid)
    np.testing.assert_array_equal(a.data.data.obs, b.data.data.obs)
    assert int(a.data.size) == int(b.data.size) == valid.sum()
    for sa, sb in zip(
        jax.tree.leaves((a.input_stats, a.target_stats)),
        jax.tree.leaves((b.input_stats, b.target_stats)),
        strict=True,
    ):
        np.testing.assert_allclose(sa, sb, rtol=1e-4, atol=1e-5)


def test_fit_with_the_same_key_is_bit_identical(ensemble):
    first = ensemble.fit(ensemble.filled, jax.random.key(1))
    for leaf_a, leaf_b in zip(
        jax.tree.leaves(first.params), jax.tree.leaves(ensemble.state.params), strict=True
    ):
        np.testing.assert_array_equal(leaf_a, leaf_b)
    other = ensemble.fit(ensemble.filled, jax.random.key(7))
    kernel = other.params["params"]["Dense_0"]["kernel"]
    assert not np.array_equal(kernel, first.params["params"]["Dense_0"]["kernel"])


def test_fit_on_an_empty_buffer_trains_nothing(deterministic):
    state = deterministic.fit(deterministic.empty, jax.random.key(1))
    assert int(state.info.epochs) == 0 and int(state.info.steps) == 0
    for new, old in zip(
        jax.tree.leaves(state.params), jax.tree.leaves(deterministic.empty.params), strict=True
    ):
        np.testing.assert_array_equal(new, old)


# ---------------------------------------------------------------- propagation


@pytest.fixture(scope="module")
def constant_ensemble(tiny):
    """Member e predicts the state change [e, e] and reward e for any input, with a
    log-variance at its (very low) minimum, so its noise is negligible."""
    model, state = tiny
    params = jax.tree.map(lambda p: p, state.params)  # a fresh dict to edit
    head = params["params"]["Dense_1"]
    head["kernel"] = jnp.zeros_like(head["kernel"])
    targets = 3  # obs 2 + reward
    means = jnp.broadcast_to(jnp.arange(E, dtype=jnp.float32)[:, None], (E, targets))
    head["bias"] = jnp.concatenate([means, jnp.full((E, targets), -100.0)], axis=1)
    params["params"]["min_logvar"] = jnp.full((E, targets), -40.0)
    state = state._replace(params=params)

    @functools.partial(jax.jit, static_argnames="propagation")
    def rollout(state, obs, key, propagation):
        """States after each of 6 steps, (6, N, 2), and rewards (6, N)."""
        step = model.step_fn(state, propagation)

        def body(obs, k):
            next_obs, reward, _ = step(obs, jnp.zeros((obs.shape[0], 1)), k)
            return next_obs, (next_obs, reward)

        return jax.lax.scan(body, obs, jax.random.split(key, 6))[1]

    def run(propagation: str, n: int, seed: int = 0):
        states, rewards = rollout(state, jnp.zeros((n, 2)), jax.random.key(seed), propagation)
        return np.asarray(states), np.asarray(rewards)

    return run


@pytest.mark.parametrize("n", [12, 10, 2])  # a multiple of E, a padded batch, fewer than E
def test_tsinf_keeps_one_member_per_particle(constant_ensemble, n):
    states, rewards = constant_ensemble("tsinf", n)
    member = np.arange(n) % E
    steps = np.arange(1, 7)[:, None]
    np.testing.assert_allclose(states[..., 0], steps * member, atol=1e-4)
    np.testing.assert_allclose(states[..., 1], steps * member, atol=1e-4)
    np.testing.assert_allclose(rewards, np.broadcast_to(member, rewards.shape), atol=1e-5)


@pytest.mark.parametrize("n", [30, 10])  # equal shares by permutation, or independent draws
def test_ts1_redraws_members_every_step(constant_ensemble, n):
    states, rewards = constant_ensemble("ts1", n, seed=1)
    deltas = np.diff(np.concatenate([np.zeros((1, n)), states[..., 0]]), axis=0)
    members = np.rint(deltas)
    np.testing.assert_allclose(deltas, members, atol=1e-4)
    np.testing.assert_allclose(rewards, members, atol=1e-4)
    assert set(np.unique(members)) <= set(range(E))
    if n % E == 0:  # each step a random permutation gives every member n / E rows
        for row in members:
            assert np.all(np.bincount(row.astype(int), minlength=E) == n // E)
    # The member sequence changes over the horizon for most particles.
    changes = np.any(members != members[:1], axis=0)
    assert changes.mean() > 0.5
    # ... and not the same way on another key.
    other, _ = constant_ensemble("ts1", n, seed=2)
    assert not np.allclose(other, states)


def test_expectation_moves_by_the_members_mean(constant_ensemble):
    states, rewards = constant_ensemble("expectation", 4)
    mean = (E - 1) / 2
    np.testing.assert_allclose(states[..., 0], np.arange(1, 7)[:, None] * mean * np.ones(4))
    np.testing.assert_allclose(rewards, mean)


@pytest.mark.parametrize("n", [12, 10])
def test_tsinf_step_has_no_gather_scatter_or_host_transfer(tiny, n):
    """The planner's hot path: row i meets member i mod E by a reshape, not a gather
    or a scatter (also when padded to a multiple of E), and a jitted rollout runs
    without any host transfer."""
    model, state = tiny

    @jax.jit
    def rollout(state, obs, actions, key):
        step = model.step_fn(state, "tsinf")

        def body(obs, inputs):
            next_obs, reward, _ = step(obs, *inputs)
            return next_obs, reward

        return jax.lax.scan(body, obs, (actions, jax.random.split(key, 4)))

    args = (state, jnp.zeros((n, 2)), jnp.zeros((4, n, 1)), jax.random.key(1))
    compiled = rollout.lower(*args).compile()
    hlo = compiled.as_text()
    for op in ("gather(", "scatter(", "callback", "outfeed(", "send("):
        assert op not in hlo, op
    with jax.transfer_guard("disallow"):
        jax.block_until_ready(compiled(*args))


def test_fit_vmapped_over_seeds(deterministic):
    """The PETS loop trains one model per seed in one call: add_batch and fit under
    vmap, each seed on its own data and key."""
    model = deterministic.model
    data = [linear_transitions(400, seed) for seed in (0, 2)]
    batch = jax.tree.map(lambda *xs: jnp.stack(xs), *data)

    @jax.jit
    @jax.vmap
    def train(key, transitions):
        return model.fit(model.add_batch(deterministic.empty, transitions), key)

    states = train(jax.random.split(jax.random.key(0), 2), batch)
    check_training(states)
    assert states.info.epochs.shape == (2,) and np.all(states.info.steps > 0)
    assert np.all(states.info.validation_error < 1e-2)
    kernels = states.params["params"]["Dense_0"]["kernel"]
    assert kernels.shape[:2] == (2, 1) and not np.array_equal(kernels[0], kernels[1])


# ---------------------------------------------------------------- discrete actions, sampling


def test_discrete_actions_sample_and_online_training():
    model = neural_model(
        2, spaces.Discrete(3), ensemble_size=2, hidden=(8,), capacity=20, train_steps_per_update=2
    )
    state = jax.jit(model.init)(jax.random.key(0))
    transition = Transition(jnp.ones(2), jnp.asarray(2), jnp.asarray(1.0), jnp.zeros(2), False)
    state = jax.jit(model.update)(state, transition, jax.random.key(1))
    assert int(state.total_steps) == 2 and int(state.data.size) == 1
    np.testing.assert_allclose(state.input_stats.mean, [1.0, 1.0, 0.0, 0.0, 1.0])
    sample = jax.jit(model.sample)
    single = sample(state, jnp.ones(2), 1, jax.random.key(2))
    assert single.next_obs.shape == (2,) and single.reward.shape == () and single.done.shape == ()
    batch = sample(state, jnp.ones((5, 2)), jnp.arange(5) % 3, jax.random.key(3))
    assert batch.next_obs.shape == (5, 2) and batch.reward.dtype == jnp.float32
    check_training(state)


# ---------------------------------------------------------------- errors


def test_non_finite_loss_is_reported_with_its_gradient_step(deterministic):
    bad = linear_transitions(50, seed=3)
    bad.obs[7, 1] = np.nan
    state = deterministic.add_batch(deterministic.state, bad)
    state = deterministic.fit(state, jax.random.key(4))
    first_bad_step = int(deterministic.state.total_steps)  # the first step of this fit
    assert int(state.info.nan_step) == first_bad_step
    with pytest.raises(FloatingPointError, match=f"gradient step {first_bad_step} "):
        check_training(state, "dynamics model")
    with pytest.raises(FloatingPointError, match=r"run\(s\) \[1\]"):
        both = jax.tree.map(lambda a, b: jnp.stack([a, b]), deterministic.state.info, state.info)
        check_training(both)
    # Non-finite steps were skipped: the parameters stay finite.
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(state.params))
    check_training(deterministic.state)  # the clean fit passes
    assert isinstance(state, NeuralModelState) and isinstance(state.info, TrainInfo)


def test_huge_learning_rate_is_reported():
    model = small_model(ensemble_size=1, learning_rate=1e30, max_epochs=5)
    state = jax.jit(model.init)(jax.random.key(0))
    state = jax.jit(model.add_batch)(state, linear_transitions(100, seed=0))
    state = jax.jit(model.fit)(state, jax.random.key(1))
    with pytest.raises(FloatingPointError, match=r"NaN or inf at gradient step \d+"):
        check_training(state)


def test_observation_and_action_shapes_are_checked(deterministic):
    model, state = deterministic.model, deterministic.state
    key = jax.random.key(0)
    with pytest.raises(ValueError, match=r"observations of shape \(3,\).*got .* shape \(5, 4\)"):
        model.predict(state, jnp.zeros((5, 4)), jnp.zeros((5, ACT)), key, "tsinf")
    with pytest.raises(ValueError, match=r"expects \(N, 3\)"):
        model.step_fn(state)(jnp.zeros(3), jnp.zeros(ACT), key)
    with pytest.raises(ValueError, match=r"actions must have shape \(5, 2\)"):
        model.predict(state, jnp.zeros((5, 3)), jnp.zeros((5, 3)), key, "tsinf")
    with pytest.raises(ValueError, match=r"expects \(3,\)"):
        batch = linear_transitions(2, seed=0)
        model.update(state, batch, key)
    with pytest.raises(ValueError, match="propagation must be one of"):
        model.step_fn(state, "ts-infinity")
    assert PROPAGATIONS == ("expectation", "ts1", "tsinf")


@pytest.mark.parametrize(
    "field, value",
    [
        ("ensemble_size", 0),
        ("hidden", ()),
        ("hidden", (32, 0)),
        ("capacity", 0),
        ("batch_size", 0),
        ("max_epochs", 0),
        ("patience", 0),
        ("learning_rate", 0.0),
        ("learning_rate", float("nan")),
        ("validation_fraction", 0.95),
        ("weight_decay", -1.0),
        ("logvar_bound_weight", -0.01),
        ("probabilistic", 1),
    ],
)
def test_bad_hyperparameters_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        neural_model(OBS, BOX, **{field: value})


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="obs_size"):
        neural_model(0, BOX)
    with pytest.raises(ValueError, match="action_space"):
        neural_model(3, object())
    assert neural_model(OBS, BOX, hidden=[4, 4]).network.hidden == (4, 4)


# ---------------------------------------------------------------- the pieces, one by one


def test_running_stats_of_masked_batches_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4)).astype(np.float32) * [1.0, 10.0, 0.1, 0.0] + [0, 5, -3, 2]
    valid = rng.uniform(size=50) < 0.7
    stats = _stats_init(4)
    for rows in (slice(0, 17), slice(17, 18), slice(18, 50)):  # uneven batches, one of one
        stats = _stats_add(stats, jnp.asarray(x[rows]), jnp.asarray(valid[rows]))
    seen = x[valid]
    assert float(stats.count) == valid.sum()
    np.testing.assert_allclose(stats.mean, seen.mean(0), rtol=1e-5, atol=1e-5)
    std = np.asarray(_stats_std(stats))
    np.testing.assert_allclose(std[:3], seen.std(0)[:3], rtol=1e-4)
    assert std[3] == 1.0  # a constant column passes through normalization unchanged


def test_inputs_and_targets_encoding():
    discrete = _Encoding(obs_size=2, num_actions=3, action_shape=(), learn_reward=True)
    obs = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    x = _encode_inputs(discrete, obs, jnp.array([2, 0]))
    np.testing.assert_array_equal(x, [[1, 2, 0, 0, 1], [3, 4, 1, 0, 0]])
    box = _Encoding(obs_size=2, num_actions=None, action_shape=(2, 1), learn_reward=False)
    assert box.in_size == 4 and box.targets == 2
    np.testing.assert_array_equal(_encode_inputs(box, obs[:1], jnp.ones((1, 2, 1))), [[1, 2, 1, 1]])
    transition = Transition(obs, None, jnp.array([5.0, 6.0]), obs + 1.0, None)
    np.testing.assert_array_equal(_encode_targets(discrete, transition), [[1, 1, 5], [1, 1, 6]])
    np.testing.assert_array_equal(_encode_targets(box, transition), [[1, 1], [1, 1]])


def test_group_by_member_sends_row_i_to_member_i_mod_e():
    x = jnp.arange(12.0).reshape(6, 2)
    grouped = _group_by_member(x, 3)
    assert grouped.shape == (3, 2, 2)
    for member in range(3):
        np.testing.assert_array_equal(grouped[member], x[member::3])
    np.testing.assert_array_equal(_ungroup(grouped), x)


@pytest.fixture(scope="module")
def epoch_setup():
    """A 2-member ensemble's trainer, the state filled with 100 transitions and the
    fit inputs split from it."""
    model = neural_model(OBS, BOX, ensemble_size=2, hidden=(8,), capacity=128, batch_size=16)
    trainer = _Trainer(
        model.network, _optimizer(1e-3, 5e-5), _Encoding(OBS, None, (ACT,), True), 2, 128, 16,
        50, 5, 0.1, True, 0.01, 0,
    )  # fmt: skip
    state = jax.jit(model.init)(jax.random.key(0))
    state = jax.jit(model.add_batch)(state, linear_transitions(100, seed=0))

    @jax.jit
    def split(state, key):
        normalizer = _normalizer_from_stats(state.input_stats, state.target_stats)
        return _split(trainer, state.data, normalizer, jnp.int32(7), key)

    return trainer, state, split(state, jax.random.key(1))


def test_split_holds_out_a_tenth_and_each_member_draws_from_the_rest(epoch_setup):
    trainer, state, fit = epoch_setup
    assert int(fit.num_train) == 90 and float(fit.score_weight.sum()) == 10
    assert fit.member_slots.shape == (2, 128) and fit.score_x.shape == (13, OBS + ACT)
    train_rows = np.asarray(fit.member_slots[:, :90])
    assert np.all(train_rows < 100)  # written slots only
    assert not np.array_equal(train_rows[0], train_rows[1])  # each its own bootstrap


def test_one_epoch_takes_a_step_per_minibatch_and_keeps_each_members_best(epoch_setup):
    trainer, state, fit = epoch_setup
    zero = jnp.zeros((), jnp.int32)
    # Member 0 can only improve on an infinite error, member 1 never beats -inf.
    start = _EpochCarry(
        state.params, state.opt_state, state.params, jnp.array([jnp.inf, -jnp.inf]), zero,
        zero, zero, zero - 1, jnp.zeros(()), jnp.zeros((), bool),
    )  # fmt: skip
    end = jax.jit(lambda c: _epoch(trainer, fit, c))(start)
    assert int(end.steps) == -(-90 // 16) and int(end.epoch) == 1 and int(end.nan_step) == -1
    assert int(end.since_best) == 0 and np.isfinite(float(end.loss)) and not bool(end.failed)
    for best, new, old in zip(
        jax.tree.leaves(end.best_params),
        jax.tree.leaves(end.params),
        jax.tree.leaves(state.params),
        strict=True,
    ):
        np.testing.assert_array_equal(best[0], new[0])  # improved: the new parameters
        np.testing.assert_array_equal(best[1], old[1])  # not improved: its old ones
    trained = end.params["params"]["Dense_0"]["kernel"]
    initial = state.params["params"]["Dense_0"]["kernel"]
    assert not np.array_equal(trained[1], initial[1])  # member 1 trained all the same
