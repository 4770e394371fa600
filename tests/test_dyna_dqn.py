"""Neural Dyna: the DQN learner (targets and updates by hand, a known optimal Q),
branched-rollout search control, the same dyna(...) building tabular and neural
agents, n = 0 equal to plain DQN, NaN reporting, bad input, the experiment."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbrl_jax import Agent, Model, TrainConfig, Transition, dyna, make_train
from mbrl_jax.agents import neural_dyna
from mbrl_jax.envs import (
    acrobot_termination,
    cartpole_termination,
    make,
    mountain_car_termination,
)
from mbrl_jax.learners import (
    QNetwork,
    advantage_learning_target,
    check_q_training,
    double_q_learning_target,
    dqn,
    q_learning,
    q_learning_target,
    td_loss,
)
from mbrl_jax.learners.dqn import _transitions
from mbrl_jax.models import neural_model, tabular_sample_model
from mbrl_jax.replay import buffer_add_batch, buffer_init
from mbrl_jax.search import branched_rollouts, uniform_seen
from mbrl_jax.types import SearchControl
from tests.conftest import seeds


def small_dqn():
    return dqn(4, 2, hidden=(32,), capacity=1000, batch_size=16, learning_starts=50)


def small_model(action_space):
    """A small deterministic MLP that trains online, with cart-pole's termination."""
    return neural_model(
        4,
        action_space,
        ensemble_size=1,
        hidden=(32,),
        probabilistic=False,
        capacity=1000,
        train_steps_per_update=1,
        termination_fn=cartpole_termination,
    )


def batch(obs, action, reward, next_obs, done) -> Transition:
    f = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    return Transition(
        f(obs), jnp.asarray(action, jnp.int32), f(reward), f(next_obs), jnp.asarray(done, bool)
    )


def real_transition(t: int, num_actions: int) -> Transition:
    """Real transition t (unbatched): obs (t, t) -> (t + 1, t + 1), action t mod A."""
    return Transition(
        jnp.full((2,), float(t)),
        jnp.int32(t % num_actions),
        jnp.float32(1.0),
        jnp.full((2,), t + 1.0),
        jnp.bool_(False),
    )


def test_dqn_targets_by_hand():
    q_next_target = jnp.array([[1.0, 3.0], [2.0, 0.0], [4.0, -1.0]])
    q_next_online = jnp.array([[5.0, 0.0], [0.0, 1.0], [0.0, 2.0]])
    reward = jnp.array([1.0, 2.0, -1.0])
    done = jnp.array([False, True, False])
    # DQN: r + 0.9 max_a Q_target(s', a); no bootstrap at a terminal s'.
    np.testing.assert_allclose(
        q_learning_target(reward, done, q_next_target, 0.9),
        [1 + 0.9 * 3, 2.0, -1 + 0.9 * 4],
    )
    # Double DQN: Q_target at the online network's argmax (0, 1, 1).
    np.testing.assert_allclose(
        double_q_learning_target(reward, done, q_next_target, q_next_online, 0.9),
        [1 + 0.9 * 1, 2.0, -1 + 0.9 * -1],
    )
    # Advantage learning: y - alpha (max_b Q(s, b) - Q(s, a)), gaps 3 - 1, 0, 4 - 4.
    q = jnp.array([[1.0, 3.0], [2.0, 0.0], [4.0, -1.0]])
    np.testing.assert_allclose(
        advantage_learning_target(reward, q, jnp.array([0, 0, 0]), 0.5),
        [1.0 - 0.5 * 2, 2.0, -1.0],
    )


def test_one_update_of_a_linear_q_by_hand():
    """Q(s, .) = s W + b (no hidden layer), squared loss, one transition: the gradient
    of 1/2 (y - Q(s, a))^2 is -(y - Q(s, a)) [s, 1] in column a and zero elsewhere,
    and Adam's first step moves each parameter by -lr sign(gradient)."""
    lr, gamma = 0.01, 0.5
    learner = dqn(
        2,
        2,
        hidden=(),
        learning_rate=lr,
        gamma=gamma,
        loss="squared",
        double=False,
        target_period=2,
    )
    state = learner.init(jax.random.key(0))
    layer = lambda flat: learner.network_params(flat)["params"]["Dense_0"]  # noqa: E731
    w, b = np.asarray(layer(state.params)["kernel"]), np.asarray(layer(state.params)["bias"])
    s, a, r, s2 = np.array([1.0, -2.0]), 1, 0.5, np.array([0.5, 3.0])
    y = r + gamma * np.max(s2 @ w + b)
    error = y - (s @ w + b)[a]
    grad_w, grad_b = np.zeros_like(w), np.zeros_like(b)
    grad_w[:, a], grad_b[a] = -error * s, -error
    new = learner.update(state, batch([s], [a], [r], [s2], [False]), jax.random.key(1))
    np.testing.assert_allclose(layer(new.params)["kernel"], w - lr * np.sign(grad_w), atol=1e-6)
    np.testing.assert_allclose(layer(new.params)["bias"], b - lr * np.sign(grad_b), atol=1e-6)
    np.testing.assert_allclose(new.loss, 0.5 * error**2, rtol=1e-5)
    # The target network is refreshed every second update (target_period=2).
    np.testing.assert_array_equal(layer(new.target_params)["kernel"], w)
    newer = learner.update(new, batch([s], [a], [r], [s2], [False]), jax.random.key(2))
    np.testing.assert_array_equal(
        layer(newer.target_params)["kernel"], layer(newer.params)["kernel"]
    )
    assert int(newer.updates) == 2 and int(newer.env_steps) == 0


def test_the_learning_rate_decays_to_its_end_value_and_stays_there():
    """With ``decay_steps`` = 2 and ``learning_rate_end`` = 0, Adam's first step moves
    each parameter by the full rate times sign(gradient) (as in the test above), and
    from the third update on (step size 0) the parameters no longer move."""
    lr = 0.01
    learner = dqn(2, 2, hidden=(), learning_rate=lr, learning_rate_end=0.0, decay_steps=2,
                  loss="squared", double=False)  # fmt: skip
    data = batch([[1.0, -2.0]], [1], [0.5], [[0.5, 3.0]], [False])
    update = jax.jit(learner.update)
    states = [learner.init(jax.random.key(0))]
    for i in range(4):
        states.append(update(states[-1], data, jax.random.key(i)))
    first_move = np.abs(np.asarray(states[1].params - states[0].params))
    np.testing.assert_allclose(first_move[first_move > 0], lr, rtol=1e-4)
    assert np.any(states[2].params != states[1].params)  # step size lr / 2
    np.testing.assert_array_equal(states[3].params, states[2].params)
    np.testing.assert_array_equal(states[4].params, states[2].params)
    with pytest.raises(ValueError, match=r"learning_rate_end must be in \[0.0, inf\], got -0.001"):
        dqn(2, 2, learning_rate_end=-1e-3, decay_steps=10)
    with pytest.raises(ValueError, match=r"learning_rate_end must be in \[0.0, inf\], got -0.001"):
        dqn(2, 2, learning_rate_end=-1e-3)  # rejected even while it is unused


def test_layer_norm_q_network_by_hand():
    """One hidden layer with ``layer_norm``: Q(s) = relu(LN(s W1 + b1)) W2 + b2, with
    LN(z) = (z - mean z) / sqrt(var z + 1e-6) at its initial scale 1 and bias 0."""
    learner = dqn(3, 2, hidden=(4,), layer_norm=True)
    state = learner.init(jax.random.key(0))
    tree = learner.network_params(state.params)["params"]
    assert set(tree) == {"Dense_0", "LayerNorm_0", "Dense_1"}
    obs = np.array([0.5, -1.0, 2.0], np.float32)
    z = obs @ np.asarray(tree["Dense_0"]["kernel"]) + np.asarray(tree["Dense_0"]["bias"])
    hidden = np.maximum((z - z.mean()) / np.sqrt(z.var() + 1e-6), 0.0)
    expected = hidden @ np.asarray(tree["Dense_1"]["kernel"]) + np.asarray(tree["Dense_1"]["bias"])
    np.testing.assert_allclose(learner.q_values(state, jnp.asarray(obs)), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="layer_norm must be a bool, got 1"):
        dqn(3, 2, layer_norm=1)


def test_greedy_policy_reads_the_polyak_average_updated_per_real_step():
    """average <- tau theta + (1 - tau) average after each real step (theta: the
    parameters after that step's replay update), by hand from the parameters seen; a
    simulated batch update moves theta but not the average."""
    learner = dqn(3, 2, hidden=(4,), batch_size=2, learning_starts=1, average_tau=0.25)
    state = learner.init(jax.random.key(0))
    expected = np.asarray(state.params)
    obs = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5], [0.2, 0.3, 0.4]], np.float32)
    for i in range(3):
        action, reward, done = jnp.int32(i % 2), jnp.float32(1.0), jnp.bool_(False)
        real = Transition(obs[i], action, reward, obs[(i + 1) % 3], done)
        state = learner.update(state, real, jax.random.key(i))
        expected = 0.25 * np.asarray(state.params) + 0.75 * expected
        np.testing.assert_allclose(state.average_params, expected, rtol=1e-6, atol=1e-7)
    simulated = batch(obs[:2].tolist(), [0, 1], [1.0, 0.0], obs[1:].tolist(), [False, True])
    after = learner.update(state, simulated, jax.random.key(9))
    assert not np.allclose(after.params, state.params)
    np.testing.assert_array_equal(after.average_params, state.average_params)
    network = QNetwork((4,), 2)
    average_q = network.apply(learner.network_params(after.average_params), obs)
    np.testing.assert_allclose(learner.greedy_q_values(after, obs), average_q, rtol=1e-6)
    online_q = network.apply(learner.network_params(after.params), obs)
    np.testing.assert_allclose(learner.q_values(after, obs), online_q, rtol=1e-6)
    # The default keeps no average: the greedy policy is the online network's.
    plain = dqn(3, 2, hidden=(4,), batch_size=2, learning_starts=1)
    state = plain.update(plain.init(jax.random.key(0)), real, jax.random.key(0))
    np.testing.assert_array_equal(state.average_params, state.params)
    np.testing.assert_array_equal(plain.greedy_q_values(state, obs), plain.q_values(state, obs))
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"average_tau must be in \(0.0, 1.0\]"):
            dqn(3, 2, average_tau=bad)
        with pytest.raises(ValueError, match=r"target_tau must be in \(0.0, 1.0\]"):
            dqn(3, 2, target_tau=bad)  # 0: the target network would never move


@pytest.mark.parametrize(
    "double, alpha, expected",
    [
        (False, 0.0, [[1.0, 1.8], [0.0, 2.0]]),
        (True, 0.0, [[1.0, 1.8], [0.0, 2.0]]),
        # Advantage learning's fixed point keeps V* and widens each gap by 1 / (1 - alpha):
        # Q(s, a) = V*(s) - (V*(s) - Q*(s, a)) / (1 - alpha): s0 1.8 - 0.8 / 0.5 = 0.2,
        # s1 2 - 2 / 0.5 = -2.
        (True, 0.5, [[0.2, 1.8], [-2.0, 2.0]]),
    ],
)
def test_batch_updates_converge_to_the_known_optimal_q(double, alpha, expected):
    """A two-step chain: from s0, action 0 ends with reward 1, action 1 moves to s1
    with reward 0; in s1 action 0 ends with 0, action 1 ends with 2. With gamma 0.9:
    Q*(s1) = (0, 2), Q*(s0) = (1, 1.8)."""
    s0, s1 = [1.0, 0.0], [0.0, 1.0]
    data = batch(
        [s0, s0, s1, s1], [0, 1, 0, 1], [1, 0, 0, 2], [s0, s1, s0, s0], [True, False, True, True]
    )
    learner = dqn(
        2, 2, hidden=(16,), learning_rate=3e-3, gamma=0.9, double=double, target_period=20,
        advantage_alpha=alpha,
    )  # fmt: skip

    @jax.jit
    def train(key):
        state = learner.init(key)
        state, _ = jax.lax.scan(
            lambda s, _: (learner.update(s, data, key), None), state, None, length=3000
        )
        return learner.q_values(state, jnp.array([s0, s1]))

    np.testing.assert_allclose(train(jax.random.key(0)), expected, atol=0.02)


@pytest.mark.slow
def test_real_transitions_are_replayed_and_epsilon_follows_real_steps():
    learner = dqn(
        2,
        3,
        hidden=(8,),
        capacity=4,
        batch_size=2,
        learning_starts=3,
        epsilon_start=1.0,
        epsilon_end=0.0,
        epsilon_steps=4,
    )
    state = learner.init(jax.random.key(0))
    for t in range(6):
        one = real_transition(t, 3)
        state = learner.update(state, one, jax.random.key(t))
        # Gradient steps start once the buffer holds learning_starts transitions.
        assert int(state.updates) == max(0, t + 1 - 2)
    assert int(state.env_steps) == 6 and int(state.buffer.size) == 4
    # The ring wrapped: it holds transitions 2..5 (slot j has item j + 4 if j < 2).
    # Each slot is one row [obs, action, reward, next_obs, done], read back exactly.
    stored = _transitions(state.buffer.data, 2)
    np.testing.assert_array_equal(stored.obs[:, 0], [4, 5, 2, 3])
    np.testing.assert_array_equal(stored.action, [1, 2, 2, 0])
    np.testing.assert_array_equal(stored.next_obs[:, 1], [5, 6, 3, 4])
    assert stored.action.dtype == jnp.int32 and not stored.done.any()
    np.testing.assert_array_equal(stored.reward, 1.0)
    # After epsilon_steps real steps epsilon is 0: acting is greedy for any key.
    obs = jnp.array([0.3, -0.2])
    greedy = int(jnp.argmax(learner.q_values(state, obs)))
    acts = jax.vmap(learner.act, in_axes=(None, None, 0))(state, obs, seeds(50))
    assert set(np.asarray(acts).tolist()) == {greedy}
    fresh = learner.init(jax.random.key(0))  # epsilon 1: uniformly random
    acts = jax.vmap(learner.act, in_axes=(None, None, 0))(fresh, obs, seeds(300))
    assert set(np.asarray(acts).tolist()) == {0, 1, 2}


def test_replay_updates_take_that_many_steps_per_real_transition():
    learner = dqn(2, 2, hidden=(8,), capacity=16, batch_size=4, learning_starts=3, replay_updates=3)
    state = learner.init(jax.random.key(0))
    for t in range(5):
        one = real_transition(t, 2)
        state = jax.jit(learner.update)(state, one, jax.random.key(t))
    assert int(state.updates) == 3 * (5 - 3 + 1)


@pytest.mark.slow
def test_nan_in_the_q_loss_is_detected_reported_and_skipped():
    learner = dqn(2, 2, hidden=(8,))
    states = jax.vmap(learner.init)(seeds(3))
    good = batch([[1.0, 0.0]], [0], [1.0], [[0.0, 1.0]], [False])
    bad = good._replace(reward=jnp.array([jnp.nan]))
    batches = jax.tree.map(lambda g, b: jnp.stack([g, b, g]), good, bad)
    updated = jax.vmap(learner.update)(states, batches, seeds(3))
    np.testing.assert_array_equal(updated.nan_update, [-1, 0, -1])
    # The bad step left run 1's parameters as they were; the others moved.
    kernel = lambda s: s.params  # noqa: E731  (flat: every layer's parameters)
    np.testing.assert_array_equal(kernel(updated)[1], kernel(states)[1])
    assert not np.array_equal(kernel(updated)[0], kernel(states)[0])
    with pytest.raises(
        FloatingPointError,
        match=r"TD loss became NaN or inf at gradient "
        r"update 0 in run\(s\) \[1\]",
    ):
        check_q_training(updated)
    check_q_training(jax.tree.map(lambda x: x[0], updated))  # a clean run passes


def _planning_parts(horizon: int):
    """A learner that always picks action 1, and a hand model moving obs by +1 per
    step (terminating past 3), around a buffer of real start states 10, 20, 30."""
    learner = dqn(1, 2, hidden=(4,))
    always_one = learner._replace(act=lambda state, obs, key: jnp.int32(1))

    def sample(model_state, obs, action, key):
        next_obs = obs + action[:, None].astype(jnp.float32)
        done = (next_obs[:, 0] % 10) > 3
        return Transition(obs, action, jnp.zeros(obs.shape[0]), next_obs, done)

    starts = jnp.array([[10.0], [20.0], [30.0]])
    real = batch(starts, [0, 0, 0], [0, 0, 0], starts, [False] * 3)
    buffer = buffer_add_batch(buffer_init(jax.tree.map(lambda x: x[0], real), 8), real)
    model_state = type("ModelState", (), {"data": buffer})()
    search = branched_rollouts(always_one, 1, batch_size=4, horizon=horizon)
    return always_one, sample, model_state, search


def test_branched_rollouts_follow_the_model_for_k_steps_then_restart():
    learner, sample, model_state, search = _planning_parts(horizon=3)
    state = search.init(jax.random.key(0))
    assert not search.has_proposal(state)  # no real transition seen yet
    real = batch([[10.0]], [0], [0.0], [[10.0]], [False])
    state = search.update(
        state, jax.tree.map(lambda x: x[0], real), None, model_state, jax.random.key(0)
    )
    assert search.has_proposal(state)
    depths = []
    for step in range(7):
        key = jax.random.key(step)
        obs, action, state = search.propose(state, None, model_state, key)
        offset = np.asarray(obs[:, 0]) % 10
        depths.append(offset.tolist())
        np.testing.assert_array_equal(action, 1)
        simulated = sample(model_state, obs, action, key)
        state = search.update(state, simulated, None, model_state, key, simulated=True)
    # Start states come from the buffer (offset 0); each branch then walks the model's
    # +1 steps; after k = 3 steps all branches start again from real states.
    assert depths == [[0] * 4, [1] * 4, [2] * 4] * 2 + [[0] * 4]
    assert set(np.asarray(obs[:, 0]).tolist()) <= {10.0, 20.0, 30.0}


def test_terminated_branches_restart_from_real_states():
    learner, sample, model_state, search = _planning_parts(horizon=10)
    state = search.init(jax.random.key(0))._replace(real_steps=jnp.int32(1))
    offsets = []
    for step in range(6):
        key = jax.random.key(step)
        obs, action, state = search.propose(state, None, model_state, key)
        offsets.append(int(np.asarray(obs[0, 0]) % 10))
        state = search.update(
            state, sample(model_state, obs, action, key), None, model_state, key, simulated=True
        )
    # The model terminates on reaching offset 4, so branches cycle 0, 1, 2, 3, 0, ...
    assert offsets == [0, 1, 2, 3, 0, 1]


@pytest.mark.slow  # 19 s of compiling; make test had to stay under 10 minutes
def test_tabular_and_neural_dyna_are_the_same_dyna_call(maze):
    n, steps, starts = 3, 300, 100
    S, A = maze.num_states, maze.num_actions
    tabular = dyna(
        q_learning(S, A), tabular_sample_model(S, A), uniform_seen(S, A), planning_steps=n
    )
    cartpole, params = make("CartPole-v1")
    learner = small_dqn()
    model = small_model(cartpole.action_space(params))
    search = branched_rollouts(learner, 4, batch_size=8, horizon=2, planning_starts=starts)
    neural = dyna(learner, model.model, search, planning_steps=n)
    assert isinstance(model.model, Model) and isinstance(search, SearchControl)
    config = TrainConfig(num_steps=steps)
    tab_state, _ = jax.jit(make_train(maze, tabular, config))(jax.random.key(0))
    neu_state, _ = jax.jit(make_train(cartpole, neural, config, params))(jax.random.key(0))
    # One real update per step plus n planning updates; the neural agent plans from
    # the real step its search control starts at.
    assert int(tab_state.updates) == steps * (1 + n)
    assert int(neu_state.updates) == steps + n * (steps - starts + 1)
    assert int(neu_state.learner.updates) == (steps - 50 + 1) + n * (steps - starts + 1)


@pytest.mark.slow
def test_planning_ratio_zero_is_plain_dqn_on_the_same_key():
    env, params = make("CartPole-v1")
    parts = neural_dyna(small_dqn(), small_model(env.action_space(params)), 4, planning_steps=0)
    config = TrainConfig(num_steps=400)
    key = jax.random.key(5)
    plain_agent = Agent(*parts.learner.learner)
    plain_state, plain = jax.jit(make_train(env, plain_agent, config, params))(key)
    dyna_state, composed = jax.jit(make_train(env, parts.agent, config, params))(key)
    np.testing.assert_array_equal(plain.cumulative_reward, composed.cumulative_reward)
    np.testing.assert_array_equal(plain.episodes, composed.episodes)
    for a, b in zip(jax.tree.leaves(plain_state), jax.tree.leaves(dyna_state.learner), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(plain_state.updates) == 400 - 50 + 1  # and it did learn from replay


@pytest.mark.slow
def test_neural_dyna_same_key_same_result_and_vmap_equals_separate_runs():
    env, params = make("CartPole-v1")
    parts = neural_dyna(
        small_dqn(),
        small_model(env.action_space(params)),
        4,
        planning_steps=2,
        batch_size=8,
        horizon=2,
        planning_starts=100,
    )
    train = jax.jit(jax.vmap(make_train(env, parts.agent, TrainConfig(num_steps=200), params)))
    keys = seeds(3)
    state, metrics = train(keys)
    again_state, again = train(keys)
    np.testing.assert_array_equal(metrics.cumulative_reward, again.cumulative_reward)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(again_state), strict=True):
        np.testing.assert_array_equal(a, b)
    _, alone = train(keys[1:2])
    np.testing.assert_array_equal(alone.episodes[0], metrics.episodes[1])


def test_bad_input_is_a_clear_error():
    env, params = make("CartPole-v1")
    space = env.action_space(params)
    learner, model = small_dqn(), small_model(space)
    with pytest.raises(ValueError, match="planning_steps must be an integer >= 0, got -1"):
        neural_dyna(learner, model, 4, planning_steps=-1)
    with pytest.raises(
        ValueError,
        match=r"horizon \(the rollout length k\) must be an integer "
        r">= 1, got 0",
    ):
        neural_dyna(learner, model, 4, planning_steps=5, horizon=0)
    with pytest.raises(ValueError, match="capacity=32 < batch_size=64"):
        dqn(4, 2, capacity=32, batch_size=64)
    with pytest.raises(ValueError, match="learning_rate must be positive and finite, got 0"):
        dqn(4, 2, learning_rate=0)
    with pytest.raises(ValueError, match="loss must be one of"):
        dqn(4, 2, loss="l1")
    with pytest.raises(ValueError, match="epsilon_end must be in"):
        dqn(4, 2, epsilon_end=1.5)
    learner = dqn(4, 2)
    with pytest.raises(ValueError, match=r"observations of shape \(4,\)"):
        learner.update(
            learner.init(jax.random.key(0)),
            batch([0.0] * 3, 0, 0.0, [0.0] * 3, False),
            jax.random.key(0),
        )


def _pump(velocity_index: int):
    """Action 2 while the velocity ``obs[velocity_index]`` is positive, else 0: pumps
    energy into Acrobot (the second joint's velocity) and MountainCar, so that
    their episodes reach the goal (8 of 8 Acrobot episodes within 400 steps)."""
    return lambda obs, key: jnp.where(obs[velocity_index] > 0, 2, 0)


def _random(env, params):
    return lambda obs, key: env.action_space(params).sample(key)


@pytest.mark.parametrize(
    "name, termination, policy",
    [
        ("CartPole-v1", cartpole_termination, None),
        ("Acrobot-v1", acrobot_termination, _pump(5)),
        ("MountainCar-v0", mountain_car_termination, _pump(1)),
    ],
)
def test_known_terminations_match_the_gymnax_environments(name, termination, policy):
    env, params = make(name)
    policy = policy or _random(env, params)

    def rollout(key):
        obs, state = env.reset(key, params)

        def step(carry, k):
            obs, state = carry
            k_act, k_step = jax.random.split(k)
            action = policy(obs, k_act)
            next_obs, state, _, terminated, _, info = env.step(k_step, state, action, params)
            predicted = termination(obs, action, info["final_observation"])
            return (next_obs, state), (predicted, terminated)

        return jax.lax.scan(step, (obs, state), jax.random.split(key, 400))[1]

    predicted, terminated = jax.jit(jax.vmap(rollout))(seeds(8))
    assert np.asarray(terminated).sum() >= 8  # the check meets real terminations
    np.testing.assert_array_equal(predicted, terminated)


@pytest.mark.slow
def test_experiment_writes_the_contract_at_toy_size(tmp_path):
    from experiments import dyna_dqn
    from mbrl_jax.results import write_result

    config = dyna_dqn.Config(
        runs=2,
        planning_steps=(0, 2),
        replay_controls=(2,),
        num_steps=400,
        eval_every=200,
        eval_episodes=2,
        error_steps=3,
        planning_starts=100,
    )
    result = dyna_dqn.run(config, progress=False)
    paths = write_result(result, tmp_path)
    saved = json.loads(paths["json"].read_text())
    assert saved["experiment"] == "dyna-dqn" and saved["seeds"] == [0, 1]
    # stored with the task's values filled in: CartPole's target and target refresh
    assert saved["config"]["target"] == 475.0 and saved["config"]["target_every_real"] == 100
    assert saved["config"]["num_steps"] == 400
    for label in ("n=0", "n=2", "1-step error, n=2", "3-step error, n=2", "max Q, replay 3/step"):
        assert saved["curves"][label]["x"] == [200.0, 400.0]
    # The runs without planning are plain DQN: no model trained, so no error curves.
    assert not any("error, n=0" in label or "error, replay" in label for label in saved["curves"])
    assert set(saved["steps_to_target"]) == {"n=0", "n=2", "replay 3/step"}
    assert set(saved["speedup"]) == {"n=0", "n=2", "replay 3/step"}
    returns = np.array(saved["curves"]["n=2"]["y"])
    assert ((returns >= 8) & (returns <= 500)).all()  # CartPole returns, at least 8 steps
    # The model, trained online on real steps, predicts held-out steps well: its
    # one-step error is small next to the observations' own squared change (~0.1).
    assert max(saved["curves"]["1-step error, n=2"]["y"]) < 0.05
    assert paths["png"].stat().st_size > 0 and paths["csv"].read_text().startswith("label")


def test_experiment_per_task_settings_default_to_the_tasks_and_overrides_win():
    from experiments import dyna_dqn

    acrobot = dyna_dqn.task_config(dyna_dqn.Config(env="Acrobot-v1"))
    assert (acrobot.num_steps, acrobot.target, acrobot.target_every_real) == (20_000, -100.0, 0)
    cartpole = dyna_dqn.task_config(dyna_dqn.Config())
    assert (cartpole.num_steps, cartpole.target, cartpole.target_every_real) == (40_000, 475.0, 100)
    assert (acrobot.decay_real_steps, cartpole.decay_real_steps) == (20_000, 40_000)  # the run
    given = dyna_dqn.Config(env="Acrobot-v1", num_steps=5000, target=-150.0, target_every_real=50,
                            decay_real_steps=0)  # fmt: skip
    assert dyna_dqn.task_config(given) == given  # a value given replaces the task's
    shorter = dyna_dqn.task_config(dyna_dqn.Config(num_steps=3000))
    assert shorter.decay_real_steps == 3000
    with pytest.raises(ValueError, match="num_steps=1500 must be a multiple of eval_every=1000"):
        dyna_dqn.check(dyna_dqn.Config(num_steps=1500))
    with pytest.raises(ValueError, match="replay control n must be an integer >= 1, got 0"):
        dyna_dqn.run(dyna_dqn.Config(replay_controls=(0,)), progress=False)
    with pytest.raises(TypeError, match="setting env must be one of CartPole-v1"):
        dyna_dqn.Config(env="Pong")


def test_td_loss_by_hand():
    """A linear Q (no hidden layer) with known weights: the loss of two transitions,
    squared and Huber, DQN and double-DQN targets, against the module docstring's L."""
    network = QNetwork((), 2)
    online = {"params": {"Dense_0": {"kernel": jnp.array([[1.0, 0.0], [0.0, 2.0]]),
                                     "bias": jnp.zeros(2)}}}  # fmt: skip
    target = {"params": {"Dense_0": {"kernel": jnp.array([[0.0, 3.0], [1.0, 0.0]]),
                                     "bias": jnp.zeros(2)}}}  # fmt: skip
    data = batch([[1.0, 1.0], [2.0, 0.0]], [1, 0], [1.0, 0.0], [[1.0, 0.0], [0.0, 1.0]],
                  [False, True])  # fmt: skip
    # Q(s, .) = s W: Q_online(s1) = (1, 2), Q_online(s2) = (2, 0): taken 2 and 2.
    # Q_target(s1') = (0, 3), Q_target(s2') = (1, 0); s2' is terminal.
    # DQN: y1 = 1 + 0.5 * 3 = 2.5;  double: a* = argmax Q_online(s1') = argmax (1, 0) = 0,
    # y1 = 1 + 0.5 * 0 = 1.0; both y2 = 0.
    for double, y1 in ((False, 2.5), (True, 1.0)):
        errors = np.array([y1 - 2.0, 0.0 - 2.0])
        squared = td_loss(network, online, target, data, 0.5, double, "squared")
        np.testing.assert_allclose(squared, np.mean(0.5 * errors**2), rtol=1e-6)
        huber = td_loss(network, online, target, data, 0.5, double, "huber")
        per_item = np.where(np.abs(errors) <= 1, 0.5 * errors**2, np.abs(errors) - 0.5)
        np.testing.assert_allclose(huber, np.mean(per_item), rtol=1e-6)
    # Advantage learning, alpha 0.5: Q_target(s1) = (1, 3), taken 1: gap 0;
    # Q_target(s2) = (0, 6), taken 0: gap 6, so y2 = 0 - 0.5 * 6 = -3.
    errors = np.array([1.0 - 2.0, -3.0 - 2.0])
    squared = td_loss(network, online, target, data, 0.5, True, "squared", advantage_alpha=0.5)
    np.testing.assert_allclose(squared, np.mean(0.5 * errors**2), rtol=1e-6)
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match=r"advantage_alpha must be in \[0"):
            dqn(2, 2, advantage_alpha=bad)


def test_runs_without_planning_train_a_model_only_when_asked():
    from experiments import dyna_dqn

    env, params = make("CartPole-v1")
    plain = dyna_dqn.make_parts(env, params, 0, dyna_dqn.task_config(dyna_dqn.Config()))
    assert plain.model is None and plain.agent.spaces == plain.learner.spaces
    asked = dyna_dqn.task_config(dyna_dqn.Config(baseline_model=True))
    assert dyna_dqn.make_parts(env, params, 0, asked).model is not None
    planning = dyna_dqn.make_parts(env, params, 1, dyna_dqn.task_config(dyna_dqn.Config()))
    assert planning.model is not None


@pytest.mark.slow
def test_library_dqn_learns_like_the_plain_single_function_dqn():
    """``dqn`` in ``make_train`` and the from-scratch baseline of benchmarks/plain_dqn.py
    run one algorithm: at a small size their mean returns agree within noise (8 seeds,
    a difference under three standard errors of the difference), and both learn."""
    from benchmarks.dqn_loop import library_train
    from benchmarks.plain_dqn import PlainDQN, make_plain_dqn

    settings, steps, window = PlainDQN(hidden=(32, 32), learning_starts=200), 4000, 1500
    returns = {}
    for name, train in (
        ("ours", library_train(settings, steps)),
        ("plain", make_plain_dqn(settings, steps)),
    ):
        total, episodes = (np.asarray(a) for a in jax.jit(jax.vmap(train))(seeds(8)))
        reward = total[:, -1] - total[:, -window - 1]
        returns[name] = reward / np.maximum(episodes[:, -1] - episodes[:, -window - 1], 1)
    mean = {name: float(r.mean()) for name, r in returns.items()}
    se = np.sqrt(sum(np.var(r, ddof=1) / len(r) for r in returns.values()))
    assert abs(mean["ours"] - mean["plain"]) < 3 * se, (mean, se)
    assert min(mean.values()) > 40  # random play lasts about 22 steps
