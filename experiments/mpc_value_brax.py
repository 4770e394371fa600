"""Value-bootstrapped MPC against PETS, SAC and MBPO on brax's MuJoCo-class tasks (the
``brax`` extra): mpc-value's groups and curves (:func:`experiments.mpc_value.run_suite`,
see its module docstring) on :data:`experiments.mbpo_common.BRAX_TASKS`, one PETS
configuration (``pets.*``) for every task, trials of one 1,000-step episode.

- ``cpu`` (the default): InvertedPendulum, sized for this 2-core CPU.
- ``gpu``: InvertedPendulum and HalfCheetah (its reward learned by every model), PETS at
  the PETS paper's CEM (population 500, 50 elites, 20 particles, horizon 30), value-MPC at
  H = 1, 3, 5 with a 256-sequence population, SAC 256-256, 20,000 real steps of the
  model-based groups and 100,000 of SAC.
- ``tiny``: a smoke run in seconds (but brax's compile).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from mbrl_jax.config import setting

from .mbpo_common import BRAX_TASKS
from .mpc_value import TINY_VALUE_MPC, Suite, ValueMPCConfig, check_suite, run_suite, summary
from .pets_common import CEMConfig, PETSConfig

NAME = "mpc-value-brax"
DESCRIPTION = "value-bootstrapped MPC vs PETS, SAC and MBPO on brax tasks (gpu preset: HalfCheetah)"
SUITE = Suite(BRAX_TASKS, lambda config, task: config.pets)

_TaskName = Literal["inverted_pendulum", "halfcheetah"]


@dataclass(frozen=True)
class Config(ValueMPCConfig):
    """The four groups on brax tasks."""

    tasks: tuple[_TaskName, ...] = setting(
        ("inverted_pendulum",), "brax tasks (experiments.mbpo_common.BRAX_TASKS)"
    )
    eval_every: int = setting(
        500, "real steps per chunk: the model is refitted and the greedy policy evaluated after it"
    )
    learning_starts: int = setting(
        500, "real steps of uniform random actions before SAC starts learning"
    )
    num_steps: int = setting(10_000, "real steps of SAC alone")
    planning_num_steps: int = setting(3_000, "real steps of each MBPO and value-MPC run")
    rollout_schedule: tuple[int, int, int, int] = setting(
        (0, 1, 1, 1),
        "MBPO's rollout length schedule (first_step, last_step, min_length, max_length): "
        "one model step throughout, as mbpo-brax",
    )
    pets: PETSConfig = setting(
        replace(PETSConfig(), trials=3, trial_length=1000, capacity=4000),
        "PETS on every task (runs and seed: the top-level ones)",
    )


PRESETS = {
    "cpu": Config(),
    "gpu": replace(
        Config(),
        tasks=("inverted_pendulum", "halfcheetah"),
        runs=8,
        num_steps=100_000,
        planning_num_steps=20_000,
        eval_every=1000,
        learning_starts=5_000,
        hidden=(256, 256),
        model_hidden=(200, 200, 200, 200),
        mpc_horizons=(1, 3, 5),
        mpc=CEMConfig(horizon=5, population=256, elites=32, iterations=6, particles=8),
        pets=replace(
            PETSConfig(),
            trials=20,
            trial_length=1000,
            capacity=21_000,
            hidden=(200, 200, 200, 200),
            planner=CEMConfig(horizon=30, population=500, elites=50, iterations=5, particles=20),
        ),
    ),
    "tiny": replace(
        Config(),
        **TINY_VALUE_MPC,
        pets=replace(
            PETSConfig(),
            trials=1,
            trial_length=100,
            ensemble_size=2,
            hidden=(16,),
            max_epochs=2,
            planner=CEMConfig(horizon=3, population=8, elites=2, iterations=1, particles=2),
        ),
    ),
}


def check(config: Config) -> None:
    """Raise ValueError for settings this experiment cannot run (before anything runs)."""
    check_suite(config, SUITE)


def run(config: Config = Config(), *, progress: bool = True) -> dict[str, Any]:
    return run_suite(NAME, config, SUITE, progress=progress)


__all__ = ["DESCRIPTION", "NAME", "PRESETS", "Config", "check", "run", "summary"]
