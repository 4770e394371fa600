"""Reproduced results, one module per figure; each runnable as ``mbrl-jax run NAME``
(installed from a wheel as ``mbrl_jax.experiments``).

Every module has ``NAME``, ``DESCRIPTION``, a ``Config`` (an
:class:`mbrl_jax.config.ExperimentConfig`: every setting, typed, with its doc and kind),
``check(config)`` (a ValueError for settings it cannot run, before anything compiles),
``run(config, *, progress) -> result`` (a dict in the result.json format, holding the
whole config) and ``summary(result) -> str``; optionally ``PRESETS`` (named configs),
``plot(result, path)`` (its own figure), and ``train(config, key)``, ``score(config,
metrics)`` and ``SCORE_LABEL`` for a parameter study (``mbrl-jax sweep NAME``, see
:mod:`mbrl_jax.study`).
"""

from __future__ import annotations

import importlib
from types import ModuleType

EXPERIMENTS: dict[str, str] = {
    "dyna-maze": "dyna_maze",
    "policy-snapshot": "policy_snapshot",
    "blocking-maze": "blocking_maze",
    "shortcut-maze": "shortcut_maze",
    "prioritized-sweeping": "prioritized_sweeping",
    "expected-vs-sample": "expected_vs_sample",
    "trajectory-sampling": "trajectory_sampling",
    "pets-cartpole": "pets_cartpole",
    "pets-pendulum": "pets_pendulum",
    "mpc-true-model": "mpc_true_model",
    "dyna-dqn": "dyna_dqn",
    "mbpo-pendulum": "mbpo_pendulum",
    "racetrack-rtdp": "racetrack_rtdp",
    "decision-time-maze": "decision_time_maze",
    "exploration-mountaincar": "exploration_mountaincar",
    "mpc-value": "mpc_value",
    "mbpo-brax": "mbpo_brax",
    "mpc-value-brax": "mpc_value_brax",
}


def load(name: str) -> ModuleType:
    """The experiment module for ``name``; a clear error for unknown names."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; available: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f".{EXPERIMENTS[name]}", __name__)
