"""Figures 8.4 and 8.5: Dyna-Q vs Dyna-Q+ when the maze changes (Examples 8.2, 8.3).

Cumulative reward per time step, averaged over runs. The book gives no
step size or kappa for these figures; in a deterministic maze alpha = 1 is the
natural choice (the sample model is exact), and kappa is chosen small enough
that the exploration bonus does not swamp the +1 goal reward.
"""

from __future__ import annotations

import jax
import numpy as np
from tqdm import tqdm

from mbrl_jax.agents import dyna_q, dyna_q_plus
from mbrl_jax.envs import Maze
from mbrl_jax.results import curve, format_table, make_result
from mbrl_jax.sweep import seed_keys
from mbrl_jax.timing import Timing, compile_and_run
from mbrl_jax.train import TrainConfig, make_train


def run_changing_maze(
    name: str,
    title: str,
    env: Maze,
    *,
    num_steps: int,
    planning_steps: int,
    kappa: float,
    runs: int = 30,
    seed: int = 0,
    progress: bool = True,
    alpha: float = 1.0,
    epsilon: float = 0.1,
    gamma: float = 0.95,
) -> dict:
    seeds, keys = seed_keys(seed, runs)
    agents = {
        "Dyna-Q": dyna_q(
            env.num_states,
            env.num_actions,
            planning_steps=planning_steps,
            alpha=alpha,
            epsilon=epsilon,
            gamma=gamma,
        ),
        "Dyna-Q+": dyna_q_plus(
            env.num_states,
            env.num_actions,
            planning_steps=planning_steps,
            kappa=kappa,
            alpha=alpha,
            epsilon=epsilon,
            gamma=gamma,
        ),
    }
    curves, timing, slopes = {}, Timing(), {}
    change = env.change_steps[0]
    for label, agent in tqdm(agents.items(), desc=name, unit="agent", disable=not progress):
        train = make_train(env, agent, TrainConfig(num_steps=num_steps))
        (_, metrics), group_timing = compile_and_run(jax.vmap(train), keys)
        timing += group_timing
        cumulative = np.asarray(metrics.cumulative_reward)
        curves[label] = curve(np.arange(1, num_steps + 1), cumulative)
        slopes[label] = reward_rates(cumulative, change, num_steps)
    return make_result(
        name,
        params=dict(
            num_steps=num_steps,
            change_step=change,
            planning_steps=planning_steps,
            kappa=kappa,
            alpha=alpha,
            epsilon=epsilon,
            gamma=gamma,
            runs=runs,
        ),
        seeds=seeds,
        timing=timing,
        x_label="Time steps",
        y_label="Cumulative reward",
        curves=curves,
        reward_rates=slopes,
        plot_style={"title": title},
    )


def reward_rates(cumulative: np.ndarray, change: int, num_steps: int) -> dict[str, float]:
    """Mean reward per 1000 steps in the 500 steps before the change and in the
    last 500 steps of the run (the slopes of the cumulative-reward curve)."""
    before = cumulative[:, change - 1] - cumulative[:, change - 501]
    end = cumulative[:, num_steps - 1] - cumulative[:, num_steps - 501]
    return {
        "before_change": float(before.mean() * 2),
        "last_500_steps": float(end.mean() * 2),
        "runs_recovered": int((end > 0).sum()),
    }


def summary(result: dict) -> str:
    steps = result["params"]["num_steps"]
    marks = sorted({500, 1000, 1500, 2000, 3000, 4000, 5000, steps} - {s for s in [] if s > steps})
    text = format_table(result, [m for m in marks if m <= steps], "time step")
    rates = "\n".join(
        f"{label}: reward per 1000 steps before change {r['before_change']:.1f}, "
        f"in the last 500 steps {r['last_500_steps']:.1f} "
        f"({r['runs_recovered']}/{result['params']['runs']} runs rewarded there)"
        for label, r in result["reward_rates"].items()
    )
    return text + "\n" + rates
