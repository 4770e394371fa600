"""Expected updates, distribution models and the search controls of S&B sections
8.5-8.6 against hand computations, plus a small end-to-end Figure 8.8."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments import trajectory_sampling as fig88
from mbrl_jax.dyna import DynaState, planning_updates
from mbrl_jax.envs.random_mdp import random_mdp_params, transition_distribution
from mbrl_jax.learners import QTable, expected_q_learning, q_learning
from mbrl_jax.models.distribution import (
    check_outcome_overflow,
    count_distribution_model,
    draw_transition,
    mdp_distribution_model,
)
from mbrl_jax.search.trajectory import trajectory_sampling, uniform_sweep
from mbrl_jax.types import Transition, TransitionDistribution

KEY = jax.random.key(0)


def tr(s, a, r, s2, done=False) -> Transition:
    return Transition(jnp.int32(s), jnp.int32(a), jnp.float32(r), jnp.int32(s2), jnp.bool_(done))


def dist(s, a, rewards, next_obs, done, prob) -> TransitionDistribution:
    return TransitionDistribution(
        jnp.int32(s),
        jnp.int32(a),
        jnp.asarray(rewards, jnp.float32),
        jnp.asarray(next_obs, jnp.int32),
        jnp.asarray(done, bool),
        jnp.asarray(prob, jnp.float32),
    )


# --- the expected update (section 8.5) ----------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    s=st.integers(0, 3),
    a=st.integers(0, 1),
    s2=st.integers(0, 3),
    reward=st.floats(-5, 5),
    done=st.booleans(),
    alpha=st.sampled_from([0.1, 0.5, 1.0]),
    gamma=st.sampled_from([0.0, 0.9, 1.0]),
    seed=st.integers(0, 1000),
)
def test_expected_update_on_one_certain_outcome_is_the_sample_update(
    s, a, s2, reward, done, alpha, gamma, seed
):
    q = QTable(jax.random.normal(jax.random.key(seed), (4, 2)))
    sample = q_learning(4, 2, alpha=alpha, gamma=gamma).update(q, tr(s, a, reward, s2, done), KEY)
    expected = expected_q_learning(4, 2, alpha=alpha, gamma=gamma)
    from_transition = expected.update(q, tr(s, a, reward, s2, done), KEY)
    from_distribution = expected.update(q, dist(s, a, [reward], [s2], [done], [1.0]), KEY)
    np.testing.assert_allclose(from_transition.q, sample.q, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(from_distribution.q, sample.q, rtol=1e-6, atol=1e-6)


def test_expected_update_by_hand_on_two_outcomes():
    q = QTable(jnp.array([[0.5, 1.0], [2.0, -1.0], [4.0, 3.0]]))
    d = dist(0, 1, [1.0, -2.0], [1, 2], [False, False], [0.25, 0.75])
    # target = 0.25 (1 + 0.9 * 2) + 0.75 (-2 + 0.9 * 4) = 0.7 + 1.2 = 1.9
    book = expected_q_learning(3, 2, alpha=1.0, gamma=0.9).update(q, d, KEY).q
    assert float(book[0, 1]) == pytest.approx(1.9)
    # alpha 0.5: 1 + 0.5 (1.9 - 1) = 1.45; every other entry unchanged
    half = expected_q_learning(3, 2, alpha=0.5, gamma=0.9).update(q, d, KEY).q
    assert float(half[0, 1]) == pytest.approx(1.45)
    mask = np.ones((3, 2), bool)
    mask[0, 1] = False
    np.testing.assert_array_equal(np.asarray(half)[mask], np.asarray(q.q)[mask])
    # a terminal outcome is not bootstrapped; a padding slot (prob 0) counts for nothing
    d = dist(0, 1, [1.0, -2.0, 99.0], [1, 2, 2], [False, True, False], [0.25, 0.75, 0.0])
    # 0.25 (1 + 0.9 * 2) + 0.75 (-2) = 0.7 - 1.5 = -0.8
    got = expected_q_learning(3, 2, alpha=1.0, gamma=0.9).update(q, d, KEY).q
    assert float(got[0, 1]) == pytest.approx(-0.8)


def test_expected_learner_checks_its_hyperparameters():
    with pytest.raises(ValueError, match=r"alpha must be in \[0.0, 1.0\], got 1.5"):
        expected_q_learning(3, 2, alpha=1.5)
    with pytest.raises(ValueError, match="epsilon"):
        expected_q_learning(3, 2, epsilon=-0.1)
    with pytest.raises(ValueError, match="num_states must be an integer >= 1"):
        expected_q_learning(0, 2)


# --- distribution models --------------------------------------------------------


def test_draw_follows_the_probabilities_and_skips_empty_slots():
    d = dist(
        0, 0, [1.0, 2.0, 3.0, 4.0], [1, 2, 3, 4], [False, False, True, False], [0.2, 0, 0.5, 0.3]
    )
    got = jax.vmap(lambda k: draw_transition(d, k))(jax.random.split(KEY, 20000))
    freq = np.bincount(np.asarray(got.next_obs), minlength=5)[1:] / 20000
    np.testing.assert_allclose(freq, [0.2, 0.0, 0.5, 0.3], atol=0.015)
    assert (np.asarray(got.reward) == np.asarray(got.next_obs)).all()  # fields stay together
    assert (np.asarray(got.done) == (np.asarray(got.next_obs) == 3)).all()


def test_mdp_distribution_model_gives_the_true_model_or_a_draw_from_it():
    params = random_mdp_params(KEY, 8, 2, 3)
    model = mdp_distribution_model(params)
    state = model.init(KEY)
    assert model.update(state, tr(0, 0, 1.0, 1), KEY) == state  # a known model does not learn
    got = model.sample(state, 5, 1, KEY)
    want = transition_distribution(params, 5, 1)
    assert isinstance(got, TransitionDistribution)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    sampled = mdp_distribution_model(params, expected=False).sample(state, 5, 1, KEY)
    assert isinstance(sampled, Transition)
    same = (np.asarray(want.next_obs) == int(sampled.next_obs)) & (
        np.asarray(want.done) == bool(sampled.done)
    )
    k = int(np.flatnonzero(same)[0])
    assert float(sampled.reward) == float(want.reward[k])


def test_count_model_probabilities_are_visit_frequencies():
    model = count_distribution_model(4, 2, max_outcomes=3)
    state = model.init(KEY)
    # (1, 0): to 2 three times (rewards 1, 2, 3), to 3 once (reward -1), terminal twice (0, 4)
    history = [
        (2, 1.0, False), (3, -1.0, False), (2, 2.0, False),
        (1, 0.0, True), (2, 3.0, False), (1, 4.0, True),
    ]  # fmt: skip
    for s2, r, done in history:
        state = model.update(state, tr(1, 0, r, s2, done), KEY)
    d = model.sample(state, 1, 0, KEY)
    np.testing.assert_allclose(d.prob, [3 / 6, 1 / 6, 2 / 6], rtol=1e-6)
    np.testing.assert_array_equal(d.next_obs, [2, 3, 1])
    np.testing.assert_array_equal(d.done, [False, False, True])
    np.testing.assert_allclose(d.reward, [2.0, -1.0, 2.0], rtol=1e-6)  # running means
    assert int(state.overflow.sum()) == 0
    check_outcome_overflow(state)  # nothing dropped: no error
    # a non-terminal move to 1 is a different outcome from the terminal one at index 1:
    # a 4th distinct outcome with K = 3 is dropped and counted
    state = model.update(state, tr(1, 0, 5.0, 1, False), KEY)
    assert int(state.overflow[1, 0]) == 1 and int(state.overflow.sum()) == 1
    with pytest.raises(ValueError, match="1 transitions of 1 state-action pairs .* max_outcomes=3"):
        check_outcome_overflow(state)
    np.testing.assert_array_equal(model.sample(state, 1, 0, KEY).prob, d.prob)
    # a never-visited pair: the same state, reward 0, not done, probability 1
    empty = model.sample(state, 3, 1, KEY)
    assert float(empty.prob[0]) == 1.0 and float(empty.prob[1:].sum()) == 0.0
    assert (int(empty.next_obs[0]), float(empty.reward[0]), bool(empty.done[0])) == (3, 0.0, False)


def test_count_model_sample_switch_draws_by_counts_and_drives_q_learning():
    sample_model = count_distribution_model(3, 1, max_outcomes=2, expected=False)
    state = sample_model.init(KEY)
    for s2 in [1, 1, 1, 2]:
        state = sample_model.update(state, tr(0, 0, float(s2), s2), KEY)
    got = jax.vmap(lambda k: sample_model.sample(state, 0, 0, k))(jax.random.split(KEY, 8000))
    assert isinstance(got, Transition)
    assert abs((np.asarray(got.next_obs) == 1).mean() - 0.75) < 0.02
    assert (np.asarray(got.reward) == np.asarray(got.next_obs)).all()
    one = jax.tree.map(lambda x: x[0], got)
    q = q_learning(3, 1, alpha=0.5).update(QTable(jnp.zeros((3, 1))), one, KEY).q
    assert float(q[0, 0]) == pytest.approx(0.5 * float(one.reward))


def test_count_model_is_jittable_and_vmappable():
    model = count_distribution_model(5, 2, max_outcomes=2)
    batch = jax.vmap(model.init)(jax.random.split(KEY, 3))
    obs, actions = jnp.array([0, 1, 2]), jnp.array([1, 1, 0])
    transitions = Transition(obs, actions, jnp.ones(3), jnp.array([4, 4, 4]), jnp.zeros(3, bool))
    batch = jax.jit(jax.vmap(model.update))(batch, transitions, jax.random.split(KEY, 3))
    counts = [int(batch.count[i, s, a].sum()) for i, (s, a) in enumerate([(0, 1), (1, 1), (2, 0)])]
    assert counts == [1, 1, 1] and int(batch.count.sum()) == 3


# --- search control (section 8.6) -------------------------------------------------


def test_uniform_sweep_visits_every_pair_once_per_sweep():
    search = uniform_sweep(5, 3)
    state = search.init(KEY)
    pairs = []
    for _ in range(2 * 15):
        s, a, state = search.propose(state, None, None, KEY)
        pairs.append((int(s), int(a)))
    first, second = pairs[:15], pairs[15:]
    assert first == [(s, a) for s in range(5) for a in range(3)]  # in order
    assert second == first
    assert search.update(state, tr(0, 0, 0, 1), None, None, KEY, simulated=True) is state


def test_trajectory_sampling_follows_the_policy_and_restarts_after_termination():
    learner = expected_q_learning(4, 2, epsilon=0.0)
    q = QTable(jnp.array([[0.0, 1.0], [2.0, 0.0], [0.0, 3.0], [0.0, 0.0]]))
    search = trajectory_sampling(learner, start_state=2)
    state = search.init(KEY)
    s, a, state = search.propose(state, q, None, KEY)
    assert (int(s), int(a)) == (2, 1)  # starts at the start state, greedy action
    state = search.update(state, tr(2, 1, 0.0, 1), q, None, KEY, simulated=True)
    s, a, _ = search.propose(state, q, None, KEY)
    assert (int(s), int(a)) == (1, 0)
    # a real transition does not move the simulated trajectory
    assert search.update(state, tr(1, 0, 0.0, 3), q, None, KEY) is state
    # a terminal transition sends it back to the start
    state = search.update(state, tr(1, 0, 0.0, 3, done=True), q, None, KEY, simulated=True)
    assert int(state.obs) == 2
    # a distribution: an outcome is drawn by prob; a certain terminal outcome restarts
    certain_end = dist(2, 1, [0.0, 0.0], [0, 3], [False, True], [0.0, 1.0])
    moved = search.update(
        state._replace(obs=jnp.int32(0)), certain_end, q, None, KEY, simulated=True
    )
    assert int(moved.obs) == 2
    branches = dist(2, 1, [0.0, 0.0, 0.0], [0, 3, 1], [False, False, True], [0.3, 0.6, 0.1])
    after = jax.vmap(lambda k: search.update(state, branches, q, None, k, simulated=True).obs)(
        jax.random.split(KEY, 10000)
    )
    freq = np.bincount(np.asarray(after), minlength=4) / 10000
    np.testing.assert_allclose(freq, [0.3, 0.0, 0.1, 0.6], atol=0.02)  # 0.1: back at start 2


def test_trajectory_sampling_explores_with_epsilon():
    learner = expected_q_learning(2, 2, epsilon=0.5)
    q = QTable(jnp.array([[0.0, 1.0], [0.0, 0.0]]))
    search = trajectory_sampling(learner, start_state=0)
    state = search.init(KEY)
    actions = jax.vmap(lambda k: search.propose(state, q, None, k)[1])(jax.random.split(KEY, 8000))
    assert abs(np.asarray(actions).mean() - 0.75) < 0.02  # 0.5 greedy + 0.5 * 1/2 random


def test_planning_with_trajectory_sampling_updates_only_states_on_trajectories():
    # a chain 0 -> 1 -> 2 -> ... under both actions (b = 1, hand-made), never terminating:
    # n on-policy planning updates from start 0 touch exactly states 0 .. n-1.
    params = random_mdp_params(KEY, 10, 2, 1, terminal_prob=0.0)
    chain = jnp.broadcast_to((jnp.arange(10) + 1)[:, None, None] % 10, (10, 2, 1))
    params = params.replace(successors=chain.astype(jnp.int32), rewards=jnp.ones((10, 2, 1)))
    learner = expected_q_learning(10, 2, alpha=1.0, gamma=1.0, epsilon=0.1)
    model = mdp_distribution_model(params)
    search = trajectory_sampling(learner, start_state=params.start)
    state = DynaState(learner.init(KEY), model.init(KEY), search.init(KEY), jnp.int32(0))
    state = jax.jit(lambda s, k: planning_updates(learner, model, search, 4, s, k))(state, KEY)
    touched = np.asarray(state.learner.q != 0).any(axis=1)
    np.testing.assert_array_equal(touched, [True] * 4 + [False] * 6)
    assert int(state.updates) == 4 and int(state.search.obs) == 4


# --- Figure 8.8, small ---------------------------------------------------------------


@pytest.fixture(scope="module")
def small_figure():
    # 100 states, b = 1: one uniform sweep is 200 updates; 2000 updates = 10 sweeps
    config = fig88.Config(runs=100, groups=((100, 1, 2000),), num_checkpoints=20)
    return fig88.run(config, progress=False)


@pytest.mark.slow
def test_small_figure_on_policy_leads_early_and_uniform_wins_late(small_figure):
    uniform = small_figure["curves"]["uniform, 100 states, b=1"]
    on_policy = small_figure["curves"]["on-policy, 100 states, b=1"]
    assert uniform["x"] == [float(x) for x in range(0, 2001, 100)]
    assert uniform["y"][0] == on_policy["y"][0]  # same tasks, same all-zero Q
    diff = small_figure["on_policy_minus_uniform"]["100 states, b=1"]  # paired over tasks
    np.testing.assert_allclose(diff["y"], np.subtract(on_policy["y"], uniform["y"]), atol=1e-9)
    # after 100 updates (half a sweep) on-policy is clearly ahead...
    assert diff["y"][1] > 0.5 and diff["y"][1] > 3 * diff["y_err"][1]
    # ... and after 10 sweeps uniform is clearly ahead (it has backed up every pair)
    assert diff["y"][-1] < 0 and -diff["y"][-1] > 3 * diff["y_err"][-1]
    assert 100 < small_figure["crossovers"]["100 states, b=1"] <= 2000


@pytest.mark.slow
def test_small_figure_result_contract_and_summary(small_figure):
    assert small_figure["experiment"] == "trajectory-sampling"
    assert set(small_figure["curves"]) == {"uniform, 100 states, b=1", "on-policy, 100 states, b=1"}
    assert small_figure["seeds"] == list(range(100))
    assert small_figure["timing"]["compile_s"] > 0 and small_figure["timing"]["run_s"] > 0
    text = fig88.summary(small_figure)
    assert "on-policy, 100 states, b=1" in text and "uniform >= on-policy for good" in text
    assert fig88.label("uniform", 1000, 3) == "uniform, b=3"
    assert fig88.label("on-policy", 10000, 1) == "on-policy, 10000 states, b=1"


@pytest.mark.slow
def test_warm_started_evaluation_agrees_with_fixed_sweeps():
    keys = jax.random.split(KEY, 6)
    params = jax.vmap(lambda k: random_mdp_params(k, 60, 2, 3))(keys)
    values = {
        ev: np.asarray(fig88.make_group(60, 3, "uniform", 600, 6, evaluation=ev)(params, keys))
        for ev in ("fixed", "warm")
    }
    np.testing.assert_allclose(values["warm"], values["fixed"], atol=2e-3)


def test_figure_setup_errors_are_clear():
    with pytest.raises(ValueError, match="method must be one of"):
        fig88.make_group(10, 1, "random", 100, 10)
    with pytest.raises(ValueError, match="multiple of num_checkpoints=3"):
        fig88.make_group(10, 1, "uniform", 100, 3)
    with pytest.raises(ValueError, match="evaluation must be"):
        fig88.make_group(10, 1, "uniform", 100, 10, evaluation="exact")
    with pytest.raises(ValueError, match="runs must be an integer >= 1"):
        fig88.Config(runs=0)
    # checked before anything runs: the groups' shapes, planners and random tasks
    with pytest.raises(TypeError, match=r"setting groups must be tuple\[tuple\[int, int, int\]"):
        fig88.Config(groups=((100, 1),))
    with pytest.raises(ValueError, match="multiple of num_checkpoints=40"):
        fig88.check(fig88.Config(groups=((100, 1, 2000), (100, 3, 1001))))
    with pytest.raises(ValueError, match="branching"):
        fig88.check(fig88.Config(groups=((10, 11, 400),)))
