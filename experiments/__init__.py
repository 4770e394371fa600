"""Reproduced results, one module per figure; each runnable as ``mbrl-jax run NAME``.

Every module has ``NAME``, ``DESCRIPTION``, ``run(*, runs, seed, progress, ...) -> result``
(a dict in the result.json format) and ``summary(result) -> str``. A module with
``PRESETS`` (named settings, e.g. ``cpu`` and ``paper``) also takes ``preset=NAME``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

EXPERIMENTS: dict[str, str] = {
    "dyna-maze": "experiments.dyna_maze",
    "policy-snapshot": "experiments.policy_snapshot",
    "blocking-maze": "experiments.blocking_maze",
    "shortcut-maze": "experiments.shortcut_maze",
    "prioritized-sweeping": "experiments.prioritized_sweeping",
    "expected-vs-sample": "experiments.expected_vs_sample",
    "trajectory-sampling": "experiments.trajectory_sampling",
    "pets-cartpole": "experiments.pets_cartpole",
    "pets-pendulum": "experiments.pets_pendulum",
    "mpc-true-model": "experiments.mpc_true_model",
    "dyna-dqn": "experiments.dyna_dqn",
    "racetrack-rtdp": "experiments.racetrack_rtdp",
    "decision-time-maze": "experiments.decision_time_maze",
}


def load(name: str) -> ModuleType:
    """The experiment module for ``name``; a clear error for unknown names."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; available: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(EXPERIMENTS[name])
