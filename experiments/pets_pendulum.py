"""PETS on gymnax ``Pendulum-v1`` (swing-up, 200-step episodes): CEM through a
probabilistic ensemble with TSinf particles and the known reward.

The default config (preset ``cpu``) keeps PETS's ensemble (5 members, three hidden
layers of 200) with a planner sized for a 2-core CPU; ``--preset paper`` uses
horizon 25, population 500, 50 elites, 5 iterations, 20 particles, sized for a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import gymnax

from mbrl_jax.config import setting
from mbrl_jax.envs import pendulum_reward
from mbrl_jax.pets import PETS
from mbrl_jax.validation import check_count

from .pets_common import CEMConfig, PETSConfig, make_experiment, run_pets_experiment, summary

NAME = "pets-pendulum"
DESCRIPTION = "PETS (CEM + ensemble + TSinf) on Pendulum-v1: return per episode"


@dataclass(frozen=True)
class Config(PETSConfig):
    """PETS on Pendulum-v1; the defaults are the ``cpu`` preset: 10 trials, CEM with
    horizon 20, population 64, 8 elites, 4 iterations, 5 particles."""

    trials: int = setting(10, "planned trials after the random-action trial 0")
    planner: CEMConfig = setting(
        CEMConfig(horizon=20, population=64, elites=8, iterations=4), "the CEM planner"
    )


PRESETS = {
    "cpu": Config(),
    "paper": replace(
        Config(),
        planner=CEMConfig(horizon=25, population=500, elites=50, iterations=5, particles=20),
    ),
}


def pets(config: Config) -> PETS:
    """The PETS loop of ``config``; the constructors check the settings."""
    env, _ = gymnax.make("Pendulum-v1")
    return make_experiment(env, config, reward_fn=pendulum_reward)


def check(config: Config) -> None:
    """Raise ValueError for settings PETS does not accept (before anything runs)."""
    check_count("trials", config.trials, minimum=1)
    pets(config)


def run(config: Config = Config(), *, progress: bool = True) -> dict:
    check(config)
    return run_pets_experiment(NAME, "PETS on Pendulum-v1", pets(config), config, progress=progress)


__all__ = ["DESCRIPTION", "NAME", "PRESETS", "Config", "check", "run", "summary"]
