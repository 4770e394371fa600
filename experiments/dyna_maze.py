"""Figure 8.2: Dyna-Q on the Dyna maze (Example 8.1), steps per episode for n = 0, 5, 50.

Book settings: alpha 0.1, epsilon 0.1, gamma 0.95, Q initialised to 0, 50
episodes, averaged over 30 runs; the book plots episodes 2-50 (episode 1 is the
same random walk for every n). The same seeds are used for every n.
"""

from __future__ import annotations

import jax
import numpy as np
from tqdm import tqdm

from mbrl_jax.agents import dyna_q
from mbrl_jax.envs import dyna_maze
from mbrl_jax.results import curve, format_table, make_result
from mbrl_jax.sweep import seed_keys
from mbrl_jax.timing import Timing, compile_and_run
from mbrl_jax.train import TrainConfig, make_train

NAME = "dyna-maze"
DESCRIPTION = "Figure 8.2: Dyna-Q steps per episode on the Dyna maze, n = 0, 5, 50"


def run(
    *,
    runs: int = 30,
    seed: int = 0,
    progress: bool = True,
    planning_steps: tuple[int, ...] = (0, 5, 50),
    num_episodes: int = 50,
    alpha: float = 0.1,
    epsilon: float = 0.1,
    gamma: float = 0.95,
) -> dict:
    env = dyna_maze()
    seeds, keys = seed_keys(seed, runs)
    curves, timing = {}, Timing()
    for n in tqdm(planning_steps, desc=NAME, unit="group", disable=not progress):
        agent = dyna_q(
            env.num_states,
            env.num_actions,
            planning_steps=n,
            alpha=alpha,
            epsilon=epsilon,
            gamma=gamma,
        )
        train = make_train(env, agent, TrainConfig(num_episodes=num_episodes))
        (_, metrics), group_timing = compile_and_run(jax.vmap(train), keys)
        timing += group_timing
        lengths = np.asarray(metrics.episode_length, float)
        lengths[lengths < 0] = np.nan  # episode not finished within max_steps
        curves[f"n={n}"] = curve(np.arange(1, num_episodes + 1), lengths)
    return make_result(
        NAME,
        params=dict(
            planning_steps=list(planning_steps),
            num_episodes=num_episodes,
            alpha=alpha,
            epsilon=epsilon,
            gamma=gamma,
            runs=runs,
        ),
        seeds=seeds,
        timing=timing,
        x_label="Episodes",
        y_label="Steps per episode",
        curves=curves,
        plot_style={"x_min": 2, "y_lim": [0, 800], "title": "Figure 8.2: Dyna-Q on the Dyna maze"},
    )


def summary(result: dict) -> str:
    episodes = [2, 3, 4, 5, 6, 10, 20, 30, 50]
    return format_table(result, episodes, "episode")
