"""Neural Dyna on gymnax control tasks: the deep analogue of Figure 8.2.

Dyna-DQN (:func:`mbrl_jax.agents.neural_dyna`: a DQN learner, a learned MLP
model trained online, MBPO-style branched rollouts from replayed real states)
with n = 0, 1, 5, 10 simulated batch updates per real step; n = 0 is plain DQN (no
model is trained there unless ``baseline_model`` asks for its error curves).
Every ``eval_every`` real steps the greedy policy plays ``eval_episodes`` real
episodes (greedy in a Polyak average of the Q-network's parameters over about
1 / ``average_tau`` real steps: ``DQN.greedy_q_values``; ``average_tau`` = 1 is the
online network's); curve ``n=N`` is their mean return, averaged over seeds, against real
environment steps. Those held-out real episodes also score the model: the
one-step error and the ``error_steps``-step open-loop error (the model fed the
real actions from a real state), mean squared error of the predicted next
observation (curves ``1-step error, n=N`` and ``K-step error, n=N``, second panel),
and the learner: ``max Q, n=N`` is the mean of max_a Q(s, a) over their states
(third panel), to be read against the returns the policy gets (a value that runs
away from them is the learner diverging, not the model failing).

``steps_to_target`` holds, per n and seed, the first evaluation step whose return
reaches the task's target (475 on CartPole-v1, the task's "solved" level), or
null when a run never does; ``speedup`` is the ratio of n = 0's mean steps to
each n's (runs that never reach it counted at ``num_steps``: a lower bound).

Each n is one compiled group: a Python loop over jitted chunks of ``eval_every``
steps, each vmapped over all seeds, so the progress bar moves per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from mbrl_jax.agents import neural_dyna
from mbrl_jax.config import ExperimentConfig, setting
from mbrl_jax.envs import (
    acrobot_termination,
    cartpole_termination,
    make,
    mountain_car_termination,
)
from mbrl_jax.learners import DQN, check_q_training, dqn
from mbrl_jax.models import NeuralModel, check_training, neural_model
from mbrl_jax.results import curve, make_result, speedups, steps_to_target, timing_line
from mbrl_jax.sweep import seed_keys, shard_runs, vmap_runs
from mbrl_jax.timing import Timing, compile_timed, run_timed
from mbrl_jax.train import TrainConfig, make_train_chunks
from mbrl_jax.types import Agent
from mbrl_jax.validation import check_count, discrete_actions

NAME = "dyna-dqn"
DESCRIPTION = "Neural Dyna (DQN + learned model + branched rollouts), n = 0, 1, 5, 10, gymnax"
PLANNING_STEPS = (0, 1, 5, 10)


class Task(NamedTuple):
    """What differs between the tasks: the run length, the return a run must reach
    ("solved"), the known termination, and ``target_every_real`` (0: off)."""

    num_steps: int
    target: float
    termination_fn: Any
    target_every_real: int = 0


TASKS = {
    # The target is refreshed every 100 real steps: with a fixed period of 100
    # gradient steps, n >= 5 (and 6 replay updates per step) made Q diverge here.
    "CartPole-v1": Task(40_000, 475.0, cartpole_termination, target_every_real=100),
    "Acrobot-v1": Task(20_000, -100.0, acrobot_termination),
    "MountainCar-v0": Task(50_000, -110.0, mountain_car_termination),
}

EnvName = Literal["CartPole-v1", "Acrobot-v1", "MountainCar-v0"]


@dataclass(frozen=True)
class Config(ExperimentConfig):
    """Dyna-DQN's settings on one task ``env``.

    Per-task settings: ``num_steps``, ``target`` and ``target_every_real`` default to
    none, meaning the task's own value (:data:`TASKS`: CartPole-v1 40000 steps, target
    475, target_every_real 100; Acrobot-v1 20000, -100, 0; MountainCar-v0 50000, -110,
    0). A value given replaces the task's, whatever ``env`` is: ``--set env=Acrobot-v1``
    runs Acrobot's 20000 steps, ``--set env=Acrobot-v1 --set num_steps=5000`` 5000.
    Every other field is the same for every task; ``decay_real_steps`` none means the
    run's ``num_steps`` (the learning rate falls to ``learning_rate_end`` over the whole
    run). The result stores the config with these values filled in (:func:`task_config`).
    """

    runs: int = setting(8, "independent runs; run i uses seed + i")
    seed: int = setting(0, "the first run's seed")
    env: EnvName = setting("CartPole-v1", "the gymnax task")
    planning_steps: tuple[int, ...] = setting(
        PLANNING_STEPS, "planning steps n (simulated batch updates per real step), one curve each"
    )
    replay_controls: tuple[int, ...] = setting(
        (), "controls: plain DQN with 1 + n replay updates per real step, one curve each"
    )
    num_steps: int | None = setting(None, "real environment steps per run (none: the task's)")
    target: float | None = setting(None, "the return that counts as solved (none: the task's)")
    eval_every: int = setting(1000, "real steps between evaluations of the greedy policy")
    eval_episodes: int = setting(5, "real episodes per evaluation")
    error_steps: int = setting(10, "open-loop steps of the model's K-step error")
    horizon: int = setting(1, "branched rollout length k")
    planning_batch: int = setting(64, "simulated transitions per planning update")
    planning_starts: int = setting(1000, "real steps before planning starts")
    hidden: tuple[int, ...] = setting((128, 128), "hidden layer widths of the Q-network")
    layer_norm: bool = setting(True, "LayerNorm before each hidden ReLU of the Q-network")
    learning_rate: float = setting(1e-3, "DQN's learning rate", traced=True)
    learning_rate_end: float = setting(
        0.0, "the learning rate at the end of its decay (see decay_real_steps)", traced=True
    )
    decay_real_steps: int | None = setting(
        None, "real steps over which the learning rate falls linearly to learning_rate_end "
        "(decay_real_steps x updates per real step gradient steps); none: the whole run "
        "(num_steps); 0: constant",
    )  # fmt: skip
    gamma: float = setting(0.99, "discount rate", traced=True)
    advantage_alpha: float = setting(
        0.7, "advantage learning's alpha in [0, 1) (0: double Q-learning)", traced=True
    )
    average_tau: float = setting(
        0.001, "the greedy policy reads a Polyak average of the Q-network's parameters, "
        "moved this far toward them each real step (1: the online network)", traced=True,
    )  # fmt: skip
    batch_size: int = setting(64, "DQN's minibatch size of real replay")
    learning_starts: int = setting(1000, "real steps before DQN updates start")
    target_period: int = setting(100, "gradient steps between target-network refreshes")
    target_every_real: int | None = setting(
        None,
        "refresh the target every this many real steps (target_period = it x updates per "
        "real step); 0: use target_period; none: the task's",
    )
    target_tau: float = setting(
        1.0, "target <- tau theta + (1 - tau) target at each refresh (1: a copy)", traced=True
    )
    epsilon_steps: int = setting(5000, "real steps over which epsilon decays to epsilon_end")
    epsilon_end: float = setting(0.05, "final exploration rate", traced=True)
    capacity: int = setting(50_000, "transitions kept in the replay buffers")
    replay_updates: int = setting(1, "DQN updates on real replay per real step")
    model_hidden: tuple[int, ...] = setting(
        (64, 64), "hidden layer widths of the learned model (a deterministic MLP)"
    )
    baseline_model: bool = setting(
        False, "also train the model in the runs without planning (n = 0, replay controls), "
        "for their model-error curves; off: they are plain DQN",
    )  # fmt: skip


def task_config(config: Config) -> Config:
    """``config`` with its none per-task settings replaced by the task's values, and a
    none ``decay_real_steps`` by the run's ``num_steps``."""
    task = TASKS[config.env]
    per_task = ("num_steps", "target", "target_every_real")
    config = replace(
        config, **{n: getattr(task, n) for n in per_task if getattr(config, n) is None}
    )
    if config.decay_real_steps is None:
        config = replace(config, decay_real_steps=config.num_steps)
    return config


class Evaluation(NamedTuple):
    """What one evaluation point measures, per seed."""

    episode_return: jax.Array  # () mean return of the greedy policy's episodes
    one_step_error: jax.Array  # () MSE of the model's next observation on their transitions
    k_step_error: jax.Array  # () MSE after error_steps open-loop model steps
    q_value: jax.Array  # () mean of max_a Q(s, a) over the states of those episodes


class Parts(NamedTuple):
    """One group's agent and what evaluation reads from its state: ``model`` is None
    for plain DQN (a run without planning and without ``baseline_model``)."""

    agent: Agent
    learner: DQN
    model: NeuralModel | None

    def learner_state(self, agent_state: Any) -> Any:
        return agent_state.learner if self.model is not None else agent_state


def greedy_episodes(env, env_params, parts: Parts, learner_state, key, episodes: int):
    """``episodes`` real episodes of the greedy policy (vmapped), each a scan over
    the task's time limit: (obs, action, reward, next_obs, alive), each (T, E, ...);
    ``alive`` is False after an episode has ended."""
    k_reset, k_steps = jax.random.split(key)
    obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(k_reset, episodes), env_params
    )
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def one_step(carry, k):
        obs, env_state, alive = carry
        action = jnp.argmax(parts.learner.greedy_q_values(learner_state, obs), axis=-1)
        next_obs, env_state, reward, terminated, truncated, info = step(
            jax.random.split(k, episodes), env_state, action, env_params
        )
        record = (obs, action, reward, info["final_observation"], alive)
        return (next_obs, env_state, alive & ~(terminated | truncated)), record

    keys = jax.random.split(k_steps, env_params.max_steps_in_episode)
    _, record = jax.lax.scan(one_step, (obs, env_state, jnp.ones((episodes,), bool)), keys)
    return record


def model_errors(model: NeuralModel, model_state, record, steps: int, key):
    """(one-step, ``steps``-step) mean squared error of the model's predicted next
    observation on real transitions, open loop: from the real obs_t with the real
    actions a_t .. a_{t+k-1}, against the real obs_{t+k} (windows inside an episode)."""
    obs, action, _, next_obs, alive = record
    length, _, size = obs.shape

    def predict(o, a):
        flat = (jnp.reshape(o, (-1, size)), jnp.reshape(a, (-1,)))
        return jnp.reshape(model.predict(model_state, *flat, key, "expectation")[0], o.shape)

    def mse(pred, true, valid):
        per_row = jnp.mean((pred - true) ** 2, axis=-1)
        return jnp.sum(jnp.where(valid, per_row, 0.0)) / jnp.maximum(jnp.sum(valid), 1)

    pred = predict(obs, action)
    one_step = mse(pred, next_obs, alive)
    windows = length - steps + 1
    pred = pred[:windows]
    for j in range(1, steps):
        pred = predict(pred, action[j : j + windows])
    k_step = mse(pred, next_obs[steps - 1 :], alive[steps - 1 :])
    return one_step, k_step


def make_run(env, env_params, parts: Parts, config: Config):
    """``(start(key) -> carry, chunk(carry, key) -> (carry, Evaluation))`` of one run:
    ``chunk`` runs ``eval_every`` real steps, then evaluates."""
    start, run_chunk = make_train_chunks(
        env, parts.agent, TrainConfig(num_steps=config.eval_every), env_params
    )

    def evaluate(state, key) -> Evaluation:
        k_play, k_model = jax.random.split(key)
        learner_state = parts.learner_state(state)
        episodes = config.eval_episodes
        record = greedy_episodes(env, env_params, parts, learner_state, k_play, episodes)
        returns = jnp.sum(jnp.where(record[4], record[2], 0.0), axis=0)
        if parts.model is None:
            one_step = k_step = jnp.full((), jnp.nan)
        else:
            errors = model_errors(parts.model, state.model, record, config.error_steps, k_model)
            one_step, k_step = errors
        obs, alive = record[0], record[4]
        q_max = jnp.max(parts.learner.greedy_q_values(learner_state, obs), axis=-1)
        q_value = jnp.sum(jnp.where(alive, q_max, 0.0)) / jnp.maximum(jnp.sum(alive), 1)
        return Evaluation(jnp.mean(returns), one_step, k_step, q_value)

    def chunk(carry, key):
        carry, _ = run_chunk(carry, config.eval_every)
        return carry, evaluate(carry.agent_state, key)

    return start, chunk


def make_parts(env, env_params, n: int, config: Config) -> Parts:
    """The Dyna-DQN agent with n planning steps for ``env`` under ``config`` (with the
    task's values filled in, :func:`task_config`); with n = 0 and no
    ``baseline_model``, the DQN learner alone (no model is trained)."""
    obs_size = env.observation_space(env_params).shape[0]
    space = env.action_space(env_params)
    updates_per_step = config.replay_updates + n
    target_period = config.target_period
    if config.target_every_real:
        target_period = config.target_every_real * updates_per_step
    learner = dqn(
        obs_size,
        discrete_actions(space, "dyna-dqn's DQN"),
        hidden=config.hidden,
        layer_norm=config.layer_norm,
        learning_rate=config.learning_rate,
        learning_rate_end=config.learning_rate_end,
        decay_steps=config.decay_real_steps * updates_per_step,
        gamma=config.gamma,
        advantage_alpha=config.advantage_alpha,
        average_tau=config.average_tau,
        batch_size=config.batch_size,
        learning_starts=config.learning_starts,
        target_period=target_period,
        target_tau=config.target_tau,
        epsilon_steps=config.epsilon_steps,
        epsilon_end=config.epsilon_end,
        capacity=config.capacity,
        replay_updates=config.replay_updates,
    )
    if n == 0 and not config.baseline_model:
        return Parts(Agent(*learner.learner), learner, None)
    model = neural_model(
        obs_size,
        space,
        ensemble_size=1,
        hidden=config.model_hidden,
        probabilistic=False,
        capacity=config.capacity,
        train_steps_per_update=1,
        termination_fn=TASKS[config.env].termination_fn,
    )
    dyna = neural_dyna(
        learner,
        model,
        obs_size,
        planning_steps=n,
        batch_size=config.planning_batch,
        horizon=config.horizon,
        planning_starts=config.planning_starts,
    )
    return Parts(dyna.agent, learner, model)


def run_group(env, env_params, n: int, config: Config, keys, bar=None):
    """Train one n over all seeds: per-chunk :class:`Evaluation` stacked (seeds,
    evaluations), the final DynaState, and the :class:`Timing` (compile apart)."""
    parts = make_parts(env, env_params, n, config)
    start, chunk = make_run(env, env_params, parts, config)
    start, chunk = vmap_runs(start), vmap_runs(chunk)
    keys = shard_runs(keys)
    start_c, timing = compile_timed(start, keys)
    carry, start_s = run_timed(start_c, keys)
    eval_keys = jax.vmap(lambda k: jax.random.fold_in(k, 7))(keys)
    chunk_c, chunk_timing = compile_timed(chunk, carry, eval_keys)
    timing, run_s, evaluations = timing + chunk_timing, start_s, []
    for i in range(config.num_steps // config.eval_every):
        k = jax.vmap(lambda key, i=i: jax.random.fold_in(key, i))(eval_keys)
        (carry, evaluation), seconds = run_timed(chunk_c, carry, k)
        run_s += seconds
        evaluations.append(evaluation)
        if bar is not None:
            bar.update(1)
    check_q_training(parts.learner_state(carry.agent_state), f"Dyna-DQN n={n}")
    if parts.model is not None:
        check_training(carry.agent_state.model, f"Dyna-DQN n={n} model")
    stacked = jax.tree.map(lambda *e: np.stack(e, axis=1), *evaluations)
    return stacked, carry.agent_state, replace(timing, run_s=timing.run_s + run_s)


def groups(config: Config) -> list[tuple[str, int, Config]]:
    """(label, n, config) of every curve: ``n=N`` per planning step count, then the
    replay controls ``replay 1+n/step`` (n = 0 with 1 + n replay updates)."""
    return [(f"n={n}", n, config) for n in config.planning_steps] + [
        (f"replay {1 + m}/step", 0, replace(config, replay_updates=1 + m))
        for m in config.replay_controls
    ]


def check(config: Config) -> None:
    """Raise ValueError for settings Dyna-DQN cannot run (before anything runs): the
    counts, then every group's agent is built (its constructors check the rest)."""
    config = task_config(config)
    for name in ("num_steps", "eval_every", "eval_episodes", "error_steps"):
        check_count(name, getattr(config, name), minimum=1)
    if config.num_steps % config.eval_every:
        raise ValueError(
            f"num_steps={config.num_steps} must be a multiple of eval_every={config.eval_every}"
        )
    check_count("target_every_real", config.target_every_real, minimum=0)
    check_count("decay_real_steps", config.decay_real_steps, minimum=0)
    for n in config.planning_steps:
        check_count("planning steps n", n, minimum=0)
    for m in config.replay_controls:
        check_count("replay control n", m, minimum=1)
    env, env_params = make(config.env)
    for _, n, group_config in groups(config):
        make_parts(env, env_params, n, group_config)


def run(config: Config = Config(), *, progress: bool = True) -> dict[str, Any]:
    """Dyna-DQN on ``config.env`` for each n in ``planning_steps``, ``runs`` seeds vmapped.

    For each n in ``replay_controls`` a control run adds curve ``replay 1+n/step``:
    plain DQN taking 1 + n gradient steps per real step on real replay minibatches,
    the same update budget as Dyna with n planning steps, without a model (the
    comparison of van Hasselt et al. 2019, "When to use parametric models in RL?")."""
    check(config)
    config = task_config(config)
    environment, env_params = make(config.env)
    seeds, keys = seed_keys(config.seed, config.runs)
    x = np.arange(1, config.num_steps // config.eval_every + 1) * config.eval_every
    curves, errors, q_values, reached, timing = {}, {}, {}, {}, Timing()
    runs = groups(config)
    total = len(runs) * len(x)
    bar = tqdm(total=total, desc=f"{NAME} {config.env}", unit="chunk", disable=not progress)
    for label, n, group_config in runs:
        evaluation, _, group_timing = run_group(environment, env_params, n, group_config, keys, bar)
        timing = timing + group_timing
        curves[label] = curve(x, evaluation.episode_return)
        if n > 0 or config.baseline_model:
            errors[f"1-step error, {label}"] = curve(x, evaluation.one_step_error)
            errors[f"{config.error_steps}-step error, {label}"] = curve(x, evaluation.k_step_error)
        q_values[f"max Q, {label}"] = curve(x, evaluation.q_value)
        reached[label] = steps_to_target(x, evaluation.episode_return, config.target)
    bar.close()
    return make_result(
        NAME,
        config=config,
        seeds=seeds,
        timing=timing,
        x_label="Real environment steps",
        y_label="Return of the greedy policy (mean over seeds)",
        curves={**curves, **errors, **q_values},
        steps_to_target=reached,
        speedup=speedups(reached, dict.fromkeys(reached, config.num_steps), "n=0"),
        plot_style={
            "title": f"Dyna-DQN on {config.env}",
            "panels": [
                {"title": "Return", "labels": list(curves)},
                {
                    "title": "Model error on held-out real episodes",
                    "labels": list(errors),
                    "y_label": "MSE of the next observation",
                    "log_y": True,
                },
                {
                    "title": "Value estimates on held-out real episodes",
                    "labels": list(q_values),
                    "y_label": "mean over states of max_a Q(s, a)",
                },
            ],
        },
    )


def summary(result: dict) -> str:
    target, reached = result["config"]["target"], result["steps_to_target"]
    lines = [f"Dyna-DQN on {result['config']['env']}: steps to a greedy return >= {target}"]
    for label, values in result["steps_to_target"].items():
        done = [v for v in values if v is not None]
        mean = f"{np.mean(done):.0f}" if done else "-"
        speedup = result["speedup"].get(label)
        lines.append(
            f"  {label:14s} reached in {len(done)}/{len(values)} runs, mean {mean} steps "
            f"(per run: {values}); speedup over n=0 {speedup:.2f}x"
            if speedup is not None
            else f"  {label:14s} reached in {len(done)}/{len(values)} runs, mean {mean}"
        )
    final = {label: c["y"][-1] for label, c in result["curves"].items() if label in reached}
    lines.append("  final return: " + ", ".join(f"{k} {v:.1f}" for k, v in final.items()))
    lines.append(timing_line(result))
    return "\n".join(lines)


__all__ = ["DESCRIPTION", "NAME", "TASKS", "Config", "check", "run", "summary", "task_config"]
