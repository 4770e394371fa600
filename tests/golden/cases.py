"""Golden cases: small, fixed-key runs of the real thing, recorded as JSON before a
refactor and asserted after it (``tests/test_golden.py``).

Each case is a function returning a dict of plain lists; ``python -m tests.golden.generate``
writes them to ``tests/golden/NAME.json``. Regenerate only when a change alters the
numbers on purpose, and say why in the commit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces

from mbrl_jax.agents import dyna_q, prioritized_sweeping
from mbrl_jax.envs import ContinuousCartPole, dyna_maze, make
from mbrl_jax.learners import dqn
from mbrl_jax.models import neural_model
from mbrl_jax.planners import cem, env_step_fn
from mbrl_jax.sweep import seed_keys
from mbrl_jax.train import TrainConfig, make_train
from mbrl_jax.types import Agent, Transition


def _list(x) -> list:
    return np.asarray(x).tolist()


def figure_8_2() -> dict:
    """Figure 8.2: Dyna-Q steps per episode on the Dyna maze, n = 0, 5, 50, seeds 0-2."""
    env = dyna_maze()
    out = {}
    for n in (0, 5, 50):
        agent = dyna_q(env.num_states, env.num_actions, planning_steps=n)
        train = make_train(env, agent, TrainConfig(num_episodes=50))
        state, metrics = jax.jit(jax.vmap(train))(seed_keys(0, 3)[1])
        out[f"n={n}"] = {
            "episode_length": _list(metrics.episode_length),
            "updates": _list(state.updates),
        }
    return out


def prioritized_sweeping_run() -> dict:
    """Prioritized sweeping (n = 5) on the Dyna maze, 15 episodes, seed 0: episode
    lengths, updates made and the final Q-table."""
    env = dyna_maze()
    agent = prioritized_sweeping(env.num_states, env.num_actions, planning_steps=5)
    train = make_train(env, agent, TrainConfig(num_episodes=15))
    state, metrics = jax.jit(train)(jax.random.key(0))
    return {
        "episode_length": _list(metrics.episode_length),
        "updates": int(state.updates),
        "q": _list(state.learner.q),
    }


def cem_cartpole() -> dict:
    """One CEM plan (horizon 15, population 64, 8 elites, 3 iterations) through the true
    continuous cart-pole from its reset state, key 0, and the warm-started second plan."""
    env = ContinuousCartPole()
    planner = cem(env.action_space(), horizon=15, population=64, elites=8, iterations=3)
    step_fn = env_step_fn(env)
    key = jax.random.key(0)
    _, env_state = env.reset(key, env.default_params)
    plan = jax.jit(lambda s, k: planner.plan(s, step_fn, env_state, k))
    action, planner_state, info = plan(planner.init(key), jax.random.fold_in(key, 1))
    action2, _, info2 = plan(planner_state, jax.random.fold_in(key, 2))
    return {
        "action": _list(action),
        "best_return": float(info.best_return),
        "plan": _list(info.plan),
        "warm_start": _list(planner_state.mean),
        "action_2": _list(action2),
        "plan_2": _list(info2.plan),
    }


_A = np.array([[0.9, 0.2, 0.0], [-0.1, 0.8, 0.1], [0.0, 0.3, 0.7]], np.float32)
_B = np.array([[0.5], [0.0], [0.2]], np.float32)


def _linear_data(n: int) -> Transition:
    rng = np.random.default_rng(0)
    s = rng.normal(size=(n, 3)).astype(np.float32)
    a = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    return Transition(s, a, s[:, 0] - 0.5 * a[:, 0], s @ _A.T + a @ _B.T, np.zeros(n, bool))


def ensemble_fit() -> dict:
    """A probabilistic ensemble (3 x 16-16) fitted on 200 fixed transitions of a linear
    system with key 0: what the fit did, and predictions of every propagation."""
    model = neural_model(
        3, spaces.Box(-1.0, 1.0, (1,)), ensemble_size=3, hidden=(16, 16), capacity=256,
        batch_size=32, max_epochs=8, patience=3,
    )  # fmt: skip
    key = jax.random.key(0)
    state = jax.jit(model.add_batch)(jax.jit(model.init)(key), _linear_data(200))
    state = jax.jit(model.fit)(state, jax.random.fold_in(key, 1))
    probe = _linear_data(6)
    predictions = {}
    for propagation in ("expectation", "ts1", "tsinf"):
        next_obs, reward, done = jax.jit(model.predict, static_argnums=4)(
            state, probe.obs, probe.action, jax.random.fold_in(key, 2), propagation
        )
        predictions[propagation] = {"next_obs": _list(next_obs), "reward": _list(reward)}
    info = state.info
    return {
        "epochs": int(info.epochs),
        "steps": int(info.steps),
        "train_loss": float(info.train_loss),
        "validation_error": _list(info.validation_error),
        "nan_step": int(info.nan_step),
        "predictions": predictions,
    }


def dqn_cartpole() -> dict:
    """300 real steps of DQN alone on gymnax CartPole-v1 (learning from step 100), seed 0:
    the reward and episode curves, the last loss, updates and Q at fixed observations."""
    env, params = make("CartPole-v1")
    learner = dqn(
        4, 2, hidden=(32, 32), capacity=1000, batch_size=32, learning_starts=100,
        target_period=50, epsilon_steps=200,
    )  # fmt: skip
    agent = Agent(learner.init, learner.act, learner.update)
    train = make_train(env, agent, TrainConfig(num_steps=300), params)
    state, metrics = jax.jit(train)(jax.random.key(0))
    probe = jnp.array([[0.0, 0.0, 0.0, 0.0], [0.05, -0.2, 0.03, 0.3]])
    return {
        "cumulative_reward": _list(metrics.cumulative_reward),
        "episodes": _list(metrics.episodes),
        "updates": int(state.updates),
        "loss": float(state.loss),
        "q_values": _list(learner.q_values(state, probe)),
    }


CASES = {
    "figure_8_2": figure_8_2,
    "prioritized_sweeping": prioritized_sweeping_run,
    "cem_cartpole": cem_cartpole,
    "ensemble_fit": ensemble_fit,
    "dqn_cartpole": dqn_cartpole,
}
