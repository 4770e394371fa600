"""What the continuous-control Dyna experiments share: SAC and MBPO through one
``neural_dyna`` call (:func:`mbrl_jax.agents.neural_dyna` with a SAC learner), run as a
Python loop over jitted chunks of ``eval_every`` real steps, all seeds vmapped. At the
end of each chunk the model is refitted on all real data (MBPO refits every F real
steps: F is ``eval_every``) and the greedy policy (the actor's squashed mean) plays
``eval_episodes`` real episodes.

With ``planning_steps`` n = 0 the agent is SAC alone (no model is built); n > 0 is MBPO
with G = n gradient steps per real step on model rollouts mixed with real data. The
same chunks run a value-guided agent over MBPO (:func:`mbrl_jax.blend.value_guided`:
``parts._replace(agent=...)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from mbrl_jax.agents import neural_dyna
from mbrl_jax.blend import ValueGuidedState
from mbrl_jax.config import ExperimentConfig, setting
from mbrl_jax.envs import (
    inverted_pendulum_reward,
    inverted_pendulum_termination,
    make,
)
from mbrl_jax.learners import SAC, check_sac_training, sac
from mbrl_jax.models import NeuralModel, check_training, neural_model
from mbrl_jax.results import curve, make_result, speedups, steps_to_target, timing_line
from mbrl_jax.search import rollout_length_schedule
from mbrl_jax.sweep import seed_keys
from mbrl_jax.timing import Timing, compile_timed, run_timed
from mbrl_jax.train import TrainConfig, make_train_chunks
from mbrl_jax.types import Agent
from mbrl_jax.validation import check_count


class Task(NamedTuple):
    """A continuous-control task of the experiments: its environment and the known task
    functions a model may use (None: the model learns the reward / never terminates)."""

    env_id: str  # an mbrl_jax.envs.make name
    title: str
    reward_fn: Any
    termination_fn: Any
    target: float  # the return that counts as solved

    def make(self):
        """``(env, env_params)``."""
        return make(self.env_id)


#: brax's MuJoCo-class tasks (the ``brax`` extra) of ``mbpo-brax`` and ``mpc-value-brax``:
#: InvertedPendulum (1 per step balanced, at most 1,000 steps) with its known reward and
#: termination; HalfCheetah with brax's 17-value observation, from which the reward cannot be
#: computed (:func:`mbrl_jax.envs.halfcheetah_reward`), so the model learns it, as in MBPO.
BRAX_TASKS = {
    "inverted_pendulum": Task(
        "brax/inverted_pendulum",
        "InvertedPendulum (brax)",
        inverted_pendulum_reward,
        inverted_pendulum_termination,
        950.0,
    ),
    "halfcheetah": Task("brax/halfcheetah", "HalfCheetah (brax)", None, None, 5000.0),
}


@dataclass(frozen=True)
class MBPOConfig(ExperimentConfig):
    """SAC's and MBPO's settings (MBPO's names in Janner et al. 2019, appendix C)."""

    runs: int = setting(5, "independent runs; run i uses seed + i")
    seed: int = setting(0, "the first run's seed")
    eval_every: int = setting(
        250, "real steps per chunk: the model is refitted and the greedy policy evaluated after it"
    )
    eval_episodes: int = setting(5, "real episodes per evaluation of the greedy policy")
    target: float = setting(-200.0, "the greedy return that counts as solved")
    hidden: tuple[int, ...] = setting((128, 128), "hidden widths of SAC's actor and critics")
    learning_rate: float = setting(3e-4, "SAC's Adam step size", traced=True)
    gamma: float = setting(0.99, "discount rate", traced=True)
    tau: float = setting(0.005, "Polyak rate of the target critics", traced=True)
    batch_size: int = setting(256, "SAC's minibatch size")
    learning_starts: int = setting(
        250, "real steps of uniform random actions before SAC starts learning"
    )
    real_ratio: float = setting(
        0.05, "share of real transitions in MBPO's minibatches", traced=True
    )
    rollout_batch: int = setting(
        40, "model rollouts started per planning step (x planning_steps = MBPO's M per step)"
    )
    rollout_schedule: tuple[int, int, int, int] = setting(
        (0, 1, 1, 1),
        "MBPO's rollout length schedule (first_step, last_step, min_length, max_length)",
    )
    model_capacity: int = setting(100_000, "model transitions kept (MBPO's model buffer)")
    ensemble_size: int = setting(7, "members of the probabilistic ensemble")
    elites: int = setting(5, "members of lowest validation error that the rollouts use")
    model_hidden: tuple[int, ...] = setting((200, 200, 200), "hidden widths of each member")
    model_batch_size: int = setting(256, "the model's minibatch size when refitting")
    model_max_epochs: int = setting(25, "epochs at most per refit (early stopping)")


#: MBPOConfig fields of the experiments' ``tiny`` presets (a smoke run in seconds)
TINY_MBPO = dict(
    runs=2,
    eval_every=100,
    eval_episodes=1,
    learning_starts=50,
    hidden=(16, 16),
    batch_size=16,
    rollout_batch=8,
    ensemble_size=2,
    elites=2,
    model_hidden=(16,),
    model_max_epochs=2,
    model_capacity=400,
)


class Parts(NamedTuple):
    """One group's agent, its SAC learner and its model (None for SAC alone)."""

    agent: Agent
    learner: SAC
    model: NeuralModel | None

    def learner_state(self, agent_state: Any) -> Any:
        return _dyna_state(agent_state).learner if self.model is not None else agent_state


def _dyna_state(agent_state: Any) -> Any:
    """The Dyna agent's state, inside a value-guided agent's (:func:`~mbrl_jax.blend.
    value_guided`) or as it is."""
    return agent_state.agent if isinstance(agent_state, ValueGuidedState) else agent_state


def _refit(model: NeuralModel, agent_state: Any, key) -> Any:
    """``agent_state`` with its Dyna agent's model fitted on all real data (MBPO's refit)."""
    if isinstance(agent_state, ValueGuidedState):
        return agent_state._replace(agent=_refit(model, agent_state.agent, key))
    return agent_state._replace(model=model.fit(agent_state.model, key))


def make_parts(
    env, env_params, n: int, config: MBPOConfig, num_steps: int, reward_fn=None,
    termination_fn=None,
) -> Parts:  # fmt: skip
    """SAC alone (n = 0) or MBPO with G = n for ``env`` under ``config``; the model keeps
    all ``num_steps`` real transitions. ``reward_fn``/``termination_fn``: the task's
    known functions (None: the reward is learned, and episodes never terminate in the
    model)."""
    obs_size = env.observation_space(env_params).shape[0]
    space = env.action_space(env_params)
    learner = sac(
        obs_size,
        space,
        hidden=config.hidden,
        learning_rate=config.learning_rate,
        gamma=config.gamma,
        tau=config.tau,
        batch_size=config.batch_size,
        capacity=num_steps,
        learning_starts=config.learning_starts,
        real_ratio=config.real_ratio,
        model_capacity=config.model_capacity if n else 0,
    )
    if n == 0:
        return Parts(Agent(*learner.learner), learner, None)
    model = neural_model(
        obs_size,
        space,
        ensemble_size=config.ensemble_size,
        elites=config.elites,
        hidden=config.model_hidden,
        capacity=num_steps,
        batch_size=config.model_batch_size,
        max_epochs=config.model_max_epochs,
        reward_fn=reward_fn,
        termination_fn=termination_fn,
    )
    dyna = neural_dyna(
        learner,
        model,
        obs_size,
        planning_steps=n,
        batch_size=config.rollout_batch,
        horizon=rollout_length_schedule(*config.rollout_schedule),
        planning_starts=config.eval_every,
    )
    return Parts(dyna.agent, learner, model)


def greedy_return(env, env_params, act: Callable, key, episodes: int) -> jax.Array:
    """Mean return of ``episodes`` real episodes (vmapped) of ``act(obs_batch) ->
    actions``, each to its end or the task's time limit."""
    k_reset, k_steps = jax.random.split(key)
    obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(k_reset, episodes), env_params
    )
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def one_step(carry, k):
        obs, env_state, alive, total = carry
        obs, env_state, reward, terminated, truncated, _ = step(
            jax.random.split(k, episodes), env_state, act(obs), env_params
        )
        total = total + jnp.where(alive, reward, 0.0)
        return (obs, env_state, alive & ~(terminated | truncated), total), None

    start = (obs, env_state, jnp.ones((episodes,), bool), jnp.zeros((episodes,)))
    keys = jax.random.split(k_steps, env_params.max_steps_in_episode)
    (_, _, _, total), _ = jax.lax.scan(one_step, start, keys)
    return jnp.mean(total)


def make_run(env, env_params, parts: Parts, config: MBPOConfig):
    """``(start(key) -> carry, chunk(carry, key) -> (carry, (greedy return, step
    metrics)))``: a chunk is ``eval_every`` real steps (each one's ``StepMetrics``), the
    model's refit (MBPO) and an evaluation of the greedy policy."""
    start, run_chunk = make_train_chunks(
        env, parts.agent, TrainConfig(num_steps=config.eval_every), env_params
    )

    def chunk(carry, key):
        k_fit, k_eval = jax.random.split(key)
        carry, metrics = run_chunk(carry, config.eval_every)
        if parts.model is not None:
            carry = carry._replace(agent_state=_refit(parts.model, carry.agent_state, k_fit))
        learner_state = parts.learner_state(carry.agent_state)
        act = lambda obs: parts.learner.mean_action(learner_state, obs)  # noqa: E731
        return carry, (greedy_return(env, env_params, act, k_eval, config.eval_episodes), metrics)

    return start, chunk


class GroupRun(NamedTuple):
    """One group's run over all seeds (leading axis): the greedy return after each
    chunk, every real step's cumulative reward and episode count, the final agent state
    and the :class:`Timing` (compile apart)."""

    greedy: np.ndarray  # (seeds, chunks)
    cumulative_reward: np.ndarray  # (seeds, steps)
    episodes: np.ndarray  # (seeds, steps) episodes ended so far
    agent_state: Any
    timing: Timing


def run_group(
    env, env_params, parts: Parts, config: MBPOConfig, num_steps: int, keys, bar=None
) -> GroupRun:
    """Train one group (SAC, MBPO or a value-guided agent) over all seeds, vmapped, in
    chunks of ``eval_every`` real steps; raise if SAC or the model met a NaN."""
    start, chunk = make_run(env, env_params, parts, config)
    start, chunk = jax.vmap(start), jax.vmap(chunk)
    start_c, timing = compile_timed(start, keys)
    carry, run_s = run_timed(start_c, keys)
    eval_keys = jax.vmap(lambda k: jax.random.fold_in(k, 7))(keys)
    chunk_c, chunk_timing = compile_timed(chunk, carry, eval_keys)
    timing, greedy, cumulative, episodes = timing + chunk_timing, [], [], []
    for i in range(num_steps // config.eval_every):
        k = jax.vmap(lambda key, i=i: jax.random.fold_in(key, i))(eval_keys)
        (carry, (returns, metrics)), seconds = run_timed(chunk_c, carry, k)
        run_s += seconds
        greedy.append(np.asarray(returns))
        cumulative.append(np.asarray(metrics.cumulative_reward))
        episodes.append(np.asarray(metrics.episodes))
        if bar is not None:
            bar.update(1)
    check_sac_training(parts.learner_state(carry.agent_state), "SAC")
    if parts.model is not None:
        check_training(_dyna_state(carry.agent_state).model, "MBPO's model")
    return GroupRun(
        np.stack(greedy, axis=1),
        np.concatenate(cumulative, axis=1),
        np.concatenate(episodes, axis=1),
        carry.agent_state,
        replace(timing, run_s=timing.run_s + run_s),
    )


def check_common(config: MBPOConfig, *step_counts: int) -> None:
    """Raise ValueError for counts the chunked loop cannot run."""
    check_count("eval_every", config.eval_every, minimum=1)
    check_count("eval_episodes", config.eval_episodes, minimum=1)
    for steps in step_counts:
        check_count("num_steps", steps, minimum=1)
        if steps % config.eval_every:
            raise ValueError(
                f"the run length {steps} must be a multiple of eval_every={config.eval_every}"
            )


@dataclass(frozen=True)
class SACAndMBPOConfig(MBPOConfig):
    """SAC alone (G = 0) against MBPO (G > 0) on one task, one curve per G."""

    planning_steps: tuple[int, ...] = setting(
        (0, 20), "G, gradient steps on model rollouts per real step (0: SAC alone), one curve each"
    )
    rollout_schedule: tuple[int, int, int, int] = setting(
        (250, 750, 1, 25),
        "MBPO's rollout length schedule (first_step, last_step, min_length, max_length): "
        "k from 1 at step 250 to 25 at step 750",
    )
    num_steps: int = setting(20_000, "real steps of SAC alone")
    planning_num_steps: int = setting(5_000, "real steps of each MBPO run")
    known_reward: bool = setting(
        True, "the model uses the task's known reward (false, or none known: it learns it)"
    )


def group_label(n: int) -> str:
    return "SAC" if n == 0 else f"MBPO G={n}"


def _run_length(config: SACAndMBPOConfig, n: int) -> int:
    return config.num_steps if n == 0 else config.planning_num_steps


def _known_reward(config: SACAndMBPOConfig, task: Task):
    return task.reward_fn if config.known_reward else None


def check_sac_and_mbpo(config: SACAndMBPOConfig, task: Task) -> None:
    """Raise ValueError for settings :func:`run_sac_and_mbpo` cannot run."""
    check_count("runs", config.runs, minimum=1)
    check_common(config, config.num_steps, config.planning_num_steps)
    env, env_params = task.make()
    for n in config.planning_steps:
        check_count("planning steps G", n, minimum=0)
        make_parts(
            env, env_params, n, config, _run_length(config, n), _known_reward(config, task),
            task.termination_fn,
        )  # fmt: skip


def run_sac_and_mbpo(
    name: str, config: SACAndMBPOConfig, task: Task, *, progress: bool = True
) -> dict[str, Any]:
    """SAC (G = 0) and MBPO (each G of ``planning_steps``) on ``task``, seeds vmapped: the
    greedy return after every chunk, per group the real steps until it reaches
    ``config.target`` (None: the task's) and SAC's mean steps over each group's
    (``speedup``)."""
    check_sac_and_mbpo(config, task)
    target = task.target if config.target is None else config.target
    env, env_params = task.make()
    seeds, keys = seed_keys(config.seed, config.runs)
    total = sum(_run_length(config, n) // config.eval_every for n in config.planning_steps)
    bar = tqdm(total=total, desc=name, unit="chunk", disable=not progress)
    curves, reached, lengths, timing = {}, {}, {}, Timing()
    for n in config.planning_steps:
        steps = _run_length(config, n)
        parts = make_parts(
            env, env_params, n, config, steps, _known_reward(config, task), task.termination_fn
        )
        group = run_group(env, env_params, parts, config, steps, keys, bar)
        x = np.arange(1, steps // config.eval_every + 1) * config.eval_every
        curves[group_label(n)] = curve(x, group.greedy)
        reached[group_label(n)] = steps_to_target(x, group.greedy, target)
        lengths[group_label(n)] = steps
        timing = timing + group.timing
    bar.close()
    return make_result(
        name,
        config=config,
        seeds=seeds,
        timing=timing,
        x_label="Real environment steps",
        y_label="Greedy return (mean over seeds)",
        curves=curves,
        task=task.title,
        target=target,
        steps_to_target=reached,
        speedup=speedups(reached, lengths, "SAC"),
        plot_style={"title": f"SAC and MBPO on {task.title}"},
    )


def summary_sac_and_mbpo(result: dict) -> str:
    """The printed summary of :func:`run_sac_and_mbpo`'s result."""
    lines = [f"{result['task']}: real steps until the greedy return reaches {result['target']}"]
    for name, values in result["steps_to_target"].items():
        done = [v for v in values if v is not None]
        mean = f"{np.mean(done):.0f}" if done else "-"
        lines.append(
            f"  {name:12s} reached in {len(done)}/{len(values)} runs, mean {mean} steps "
            f"(per run: {values}); SAC's mean steps over this: "
            f"{result['speedup'].get(name, float('nan')):.2f}x"
        )
    final = {name: c["y"][-1] for name, c in result["curves"].items()}
    lines.append("  final greedy return: " + ", ".join(f"{k} {v:.1f}" for k, v in final.items()))
    lines.append(timing_line(result))
    return "\n".join(lines)
