"""PETS on the continuous cart-pole (Chua et al. 2018): CEM through a probabilistic
ensemble with TSinf particles, the known reward (1 per step) and termination.

The default config (preset ``cpu``) keeps PETS's ensemble (5 members, three hidden
layers of 200, swish) and horizon 15, and shrinks the planner (population 100,
10 elites, 5 particles, 5 iterations) so that 5 seeds x 5 trials run in a few
minutes on a 2-core CPU. ``--preset paper`` uses the paper's planner (population
500, 50 elites, 20 particles), sized for a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mbrl_jax.envs import ContinuousCartPole, cartpole_reward, cartpole_termination
from mbrl_jax.pets import PETS
from mbrl_jax.validation import check_count

from .pets_common import PETSConfig, make_experiment, run_pets_experiment, summary

NAME = "pets-cartpole"
DESCRIPTION = "PETS (CEM + ensemble + TSinf) on the continuous cart-pole: return per trial"


@dataclass(frozen=True)
class Config(PETSConfig):
    """PETS on the continuous cart-pole: :class:`PETSConfig`'s defaults (the ``cpu``
    preset: 5 trials, CEM with horizon 15, population 100, 10 elites, 5 iterations,
    5 particles)."""


PRESETS = {
    "cpu": Config(),
    "paper": replace(
        Config(), planner=replace(Config().planner, population=500, elites=50, particles=20)
    ),
}


def pets(config: Config) -> PETS:
    """The PETS loop of ``config``; the constructors check the settings."""
    return make_experiment(
        ContinuousCartPole(),
        config,
        reward_fn=cartpole_reward,
        termination_fn=cartpole_termination,
    )


def check(config: Config) -> None:
    """Raise ValueError for settings PETS does not accept (before anything runs)."""
    check_count("trials", config.trials, minimum=1)
    pets(config)


def run(config: Config = Config(), *, progress: bool = True) -> dict:
    check(config)
    return run_pets_experiment(
        NAME, "PETS on the continuous cart-pole", pets(config), config, progress=progress
    )


__all__ = ["DESCRIPTION", "NAME", "PRESETS", "Config", "check", "run", "summary"]
