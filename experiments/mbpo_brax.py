"""SAC against MBPO on brax's MuJoCo-class tasks (the ``brax`` extra, ``pip install -e
'.[brax]'``): the greedy return against real environment steps, seeds vmapped. The runner
is mbpo-pendulum's (:func:`experiments.mbpo_common.run_sac_and_mbpo`); the tasks are
:data:`experiments.mbpo_common.BRAX_TASKS`.

- ``cpu`` (the default): InvertedPendulum, its known reward and termination, G = 20 with
  rollouts of one model step, sized for this 2-core CPU.
- ``gpu``: HalfCheetah in MBPO's setting (Janner et al. 2019, appendix C: 7 members of 4 x
  200 with 5 elites, 400 one-step rollouts per real step, G = 40, real_ratio 0.05, the model
  refitted every 250 real steps, 5,000 random steps first; the reward learned) for 100,000
  real steps, SAC alone beside it; compare with the HalfCheetah curve of the MBPO paper
  (its Figure 2). brax's HalfCheetah has MuJoCo's timestep and reward weights, so returns
  are on the same scale, not the same numbers (its physics backend differs).
- ``tiny``: a smoke run in seconds (but brax's compile).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from mbrl_jax.config import setting

from .mbpo_common import (
    BRAX_TASKS,
    TINY_MBPO,
    SACAndMBPOConfig,
    check_sac_and_mbpo,
    run_sac_and_mbpo,
    summary_sac_and_mbpo,
)

NAME = "mbpo-brax"
DESCRIPTION = "SAC vs MBPO on brax InvertedPendulum (cpu) and HalfCheetah (gpu preset)"


@dataclass(frozen=True)
class Config(SACAndMBPOConfig):
    """SAC (G = 0) and MBPO (G > 0) on one brax task."""

    env: Literal["inverted_pendulum", "halfcheetah"] = setting(
        "inverted_pendulum", "the brax task (experiments.mbpo_common.BRAX_TASKS)"
    )
    target: float | None = setting(
        None, "the greedy return that counts as solved (none: the task's, 950 and 5,000)"
    )
    rollout_schedule: tuple[int, int, int, int] = setting(
        (0, 1, 1, 1),
        "MBPO's rollout length schedule (first_step, last_step, min_length, max_length): "
        "one model step throughout, MBPO's InvertedPendulum and HalfCheetah setting",
    )
    rollout_batch: int = setting(
        20, "model rollouts started per planning step (x planning_steps = MBPO's M = 400)"
    )
    num_steps: int = setting(10_000, "real steps of SAC alone")
    planning_num_steps: int = setting(3_000, "real steps of each MBPO run")


PRESETS = {
    "cpu": Config(),
    "gpu": replace(
        Config(),
        env="halfcheetah",
        runs=8,
        planning_steps=(0, 40),
        rollout_batch=10,
        num_steps=100_000,
        planning_num_steps=100_000,
        learning_starts=5_000,
        hidden=(256, 256),
        model_hidden=(200, 200, 200, 200),
        model_capacity=400_000,
        known_reward=False,
    ),
    "tiny": replace(
        Config(), **TINY_MBPO, num_steps=200, planning_num_steps=200, planning_steps=(0, 2)
    ),
}


def check(config: Config) -> None:
    """Raise ValueError for settings this experiment cannot run (before anything runs)."""
    check_sac_and_mbpo(config, BRAX_TASKS[config.env])


def run(config: Config = Config(), *, progress: bool = True) -> dict[str, Any]:
    return run_sac_and_mbpo(NAME, config, BRAX_TASKS[config.env], progress=progress)


summary = summary_sac_and_mbpo

__all__ = ["DESCRIPTION", "NAME", "PRESETS", "Config", "check", "run", "summary"]
