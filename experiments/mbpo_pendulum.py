"""SAC against MBPO on gymnax ``Pendulum-v1`` (swing-up, 200-step episodes): the greedy
return against real environment steps, seeds vmapped.

Both are one ``neural_dyna`` call with a SAC learner (:mod:`experiments.mbpo_common`):
curve ``SAC`` is n = 0 (the learner alone), curve ``MBPO G=n`` takes n gradient steps
per real step on minibatches of model rollouts (95%) and real data (5%), the
probabilistic ensemble (7 members, rollouts from the 5 elites) refitted every
``eval_every`` real steps. The rollouts grow from 1 model step to 25 between real steps
250 and 750 (MBPO's linear schedule): on this task longer rollouts were what made
MBPO fast (G = 20 and 2,000 steps: k = 1 solved 2 of 5 seeds, k up to 5 3, k up to 10
and 15 4; at 3,000 steps k up to 15 reached -200 at 1,825 steps on average, k up to 25
at 1,500; benchmarks/RESULTS.md, 2026-12-02). The model uses the task's known reward unless
``known_reward=false`` (then it learns it, as in the MBPO paper). ``steps_to_target``
holds, per group and seed, the first evaluation whose
greedy return (mean of ``eval_episodes`` episodes) reaches ``target`` (-200, the usual
"solved" level), or null; ``speedup`` is SAC's mean steps to it over MBPO's (a run that
never reaches it counted at its group's run length: a lower bound for SAC's side).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import gymnax
import numpy as np
from tqdm import tqdm

from mbrl_jax.config import setting
from mbrl_jax.envs import pendulum_reward
from mbrl_jax.results import curve, make_result, speedups, steps_to_target, timing_line
from mbrl_jax.sweep import seed_keys
from mbrl_jax.timing import Timing
from mbrl_jax.validation import check_count

from .mbpo_common import TINY_MBPO, MBPOConfig, check_common, make_parts, run_group

NAME = "mbpo-pendulum"
DESCRIPTION = "SAC vs MBPO (SAC + ensemble + branched rollouts) on Pendulum-v1"
ENV = "Pendulum-v1"


@dataclass(frozen=True)
class Config(MBPOConfig):
    """SAC (n = 0) and MBPO (n > 0) on Pendulum-v1."""

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
        True, "the model uses Pendulum's known reward (as pets-pendulum); false: it learns it"
    )


PRESETS = {
    "cpu": Config(),
    "tiny": replace(
        Config(), **TINY_MBPO, num_steps=200, planning_num_steps=200, planning_steps=(0, 2)
    ),
}


def label(n: int) -> str:
    return "SAC" if n == 0 else f"MBPO G={n}"


def reward_fn(config: Config):
    return pendulum_reward if config.known_reward else None


def run_length(config: Config, n: int) -> int:
    return config.num_steps if n == 0 else config.planning_num_steps


def check(config: Config) -> None:
    """Raise ValueError for settings this experiment cannot run (before anything runs)."""
    check_count("runs", config.runs, minimum=1)
    check_common(config, config.num_steps, config.planning_num_steps)
    env, env_params = gymnax.make(ENV)
    for n in config.planning_steps:
        check_count("planning steps G", n, minimum=0)
        make_parts(env, env_params, n, config, run_length(config, n), reward_fn(config))


def run(config: Config = Config(), *, progress: bool = True) -> dict[str, Any]:
    check(config)
    env, env_params = gymnax.make(ENV)
    seeds, keys = seed_keys(config.seed, config.runs)
    total = sum(run_length(config, n) // config.eval_every for n in config.planning_steps)
    bar = tqdm(total=total, desc=NAME, unit="chunk", disable=not progress)
    curves, reached, lengths, timing = {}, {}, {}, Timing()
    for n in config.planning_steps:
        steps = run_length(config, n)
        parts = make_parts(env, env_params, n, config, steps, reward_fn(config))
        group = run_group(env, env_params, parts, config, steps, keys, bar)
        returns, timing = group.greedy, timing + group.timing
        x = np.arange(1, steps // config.eval_every + 1) * config.eval_every
        curves[label(n)] = curve(x, returns)
        reached[label(n)] = steps_to_target(x, returns, config.target)
        lengths[label(n)] = steps
    bar.close()
    return make_result(
        NAME,
        config=config,
        seeds=seeds,
        timing=timing,
        x_label="Real environment steps",
        y_label="Greedy return (mean over seeds)",
        curves=curves,
        steps_to_target=reached,
        speedup=speedups(reached, lengths, "SAC"),
        plot_style={"title": f"SAC and MBPO on {ENV}"},
    )


def summary(result: dict) -> str:
    target = result["config"]["target"]
    lines = [f"{ENV}: real steps until the greedy return reaches {target}"]
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


__all__ = ["DESCRIPTION", "NAME", "PRESETS", "Config", "check", "run", "summary"]
