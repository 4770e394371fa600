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

from mbrl_jax.config import setting
from mbrl_jax.envs import pendulum_reward

from .mbpo_common import (
    TINY_MBPO,
    SACAndMBPOConfig,
    Task,
    check_sac_and_mbpo,
    run_sac_and_mbpo,
    summary_sac_and_mbpo,
)

NAME = "mbpo-pendulum"
DESCRIPTION = "SAC vs MBPO (SAC + ensemble + branched rollouts) on Pendulum-v1"
TASK = Task("Pendulum-v1", "Pendulum-v1", pendulum_reward, None, -200.0)


@dataclass(frozen=True)
class Config(SACAndMBPOConfig):
    """SAC (n = 0) and MBPO (n > 0) on Pendulum-v1."""

    known_reward: bool = setting(
        True, "the model uses Pendulum's known reward (as pets-pendulum); false: it learns it"
    )


PRESETS = {
    "cpu": Config(),
    "tiny": replace(
        Config(), **TINY_MBPO, num_steps=200, planning_num_steps=200, planning_steps=(0, 2)
    ),
}


def check(config: Config) -> None:
    """Raise ValueError for settings this experiment cannot run (before anything runs)."""
    check_sac_and_mbpo(config, TASK)


def run(config: Config = Config(), *, progress: bool = True) -> dict[str, Any]:
    return run_sac_and_mbpo(NAME, config, TASK, progress=progress)


summary = summary_sac_and_mbpo

__all__ = ["DESCRIPTION", "NAME", "PRESETS", "Config", "check", "run", "summary"]
