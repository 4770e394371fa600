"""Figure 8.2: Dyna-Q on the Dyna maze (Example 8.1), steps per episode for n = 0, 5, 50.

Book settings: alpha 0.1, epsilon 0.1, gamma 0.95, Q initialised to 0, 50
episodes, averaged over 30 runs; the book plots episodes 2-50 (episode 1 is the
same random walk for every n). The same seeds are used for every n.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from mbrl_jax.agents import dyna_q
from mbrl_jax.config import ExperimentConfig, setting
from mbrl_jax.envs import dyna_maze
from mbrl_jax.results import curve, format_table, make_result
from mbrl_jax.sweep import run_seeds, seed_keys
from mbrl_jax.train import EpisodeMetrics, TrainConfig, make_train
from mbrl_jax.types import Agent

NAME = "dyna-maze"
DESCRIPTION = "Figure 8.2: Dyna-Q steps per episode on the Dyna maze, n = 0, 5, 50"
SCORE_LABEL = "Steps per episode (mean over episodes 2..)"


@dataclass(frozen=True)
class Config(ExperimentConfig):
    runs: int = setting(30, "independent runs; run i uses seed + i")
    seed: int = setting(0, "the first run's seed")
    planning_steps: tuple[int, ...] = setting((0, 5, 50), "planning steps n, one curve each")
    num_episodes: int = setting(50, "episodes per run")
    alpha: float = setting(0.1, "step size of the Q-learning updates", traced=True)
    epsilon: float = setting(0.1, "exploration rate of the epsilon-greedy policy", traced=True)
    gamma: float = setting(0.95, "discount rate", traced=True)


def agent(config: Config, planning_steps) -> Agent:
    """The Dyna-Q agent for n = ``planning_steps`` (a Python int, checked, or a traced
    int: the planning loop's run-time bound)."""
    env = dyna_maze()
    return dyna_q(
        env.num_states,
        env.num_actions,
        planning_steps=planning_steps,
        alpha=config.alpha,
        epsilon=config.epsilon,
        gamma=config.gamma,
    )


def check(config: Config) -> None:
    """Raise ValueError for settings the agents do not accept (before anything runs)."""
    for n in config.planning_steps:
        agent(config, n)


def train(config: Config, key: jax.Array) -> dict[str, EpisodeMetrics]:
    """One run of every n from ``key``, labelled ``n=N`` (the traced settings may be
    tracers). One program serves every n: n is a run-time bound of the planning loop
    and the n's run one after another (``lax.map``), bit for bit as separate agents."""
    length = TrainConfig(num_episodes=config.num_episodes)

    def train_n(n: jax.Array) -> EpisodeMetrics:
        return make_train(dyna_maze(), agent(config, n), length)(key)[1]

    metrics = jax.lax.map(train_n, jnp.asarray(config.planning_steps, jnp.int32))
    return {
        f"n={n}": jax.tree.map(lambda x, i=i: x[i], metrics)
        for i, n in enumerate(config.planning_steps)
    }


def score(config: Config, metrics: dict[str, EpisodeMetrics]) -> dict[str, np.ndarray]:
    """Per run: steps per episode averaged over episodes 2.. (NaN if one is unfinished),
    ``mean_steps`` for a single n, else ``n=N mean_steps`` for each."""
    lengths = {label: mean_steps(np.asarray(m.episode_length)) for label, m in metrics.items()}
    if len(lengths) == 1:
        return {"mean_steps": next(iter(lengths.values()))}
    return {f"{label} mean_steps": values for label, values in lengths.items()}


def mean_steps(lengths: np.ndarray) -> np.ndarray:
    """Steps per episode averaged over episodes 2.. (the last axis); NaN for a run
    with an episode unfinished (length -1)."""
    lengths = np.asarray(lengths, float)[..., 1:]
    return np.where(np.any(lengths < 0, axis=-1), np.nan, lengths.mean(axis=-1))


def run(config: Config = Config(), *, progress: bool = True) -> dict:
    """Every n in one compiled program (one n at a time), its runs sharded across the
    devices."""
    check(config)
    seeds, _ = seed_keys(config.seed, config.runs)
    metrics, timing = run_seeds(partial(train, config), seeds, progress=progress)
    episodes = np.arange(1, config.num_episodes + 1)
    curves = {}
    for label, m in metrics.items():
        lengths = np.asarray(m.episode_length, float)
        lengths[lengths < 0] = np.nan  # episode not finished within max_steps
        curves[label] = curve(episodes, lengths)
    return make_result(
        NAME,
        config=config,
        seeds=seeds,
        timing=timing,
        x_label="Episodes",
        y_label="Steps per episode",
        curves=curves,
        plot_style={"x_min": 2, "y_lim": [0, 800], "title": "Figure 8.2: Dyna-Q on the Dyna maze"},
    )


def summary(result: dict) -> str:
    episodes = [2, 3, 4, 5, 6, 10, 20, 30, 50]
    last = result["config"]["num_episodes"]
    return format_table(result, [e for e in episodes if e <= last], "episode")
