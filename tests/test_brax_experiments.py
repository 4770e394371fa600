"""The brax experiments (mbpo-brax, mpc-value-brax) end to end at their tiny presets through
the CLI on brax InvertedPendulum, which pays 1 per step, and their bad input; the gpu
presets pass their checks (the runs are in make test-slow: brax and SAC compile slowly)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments import load
from mbrl_jax.cli import main

pytest.importorskip("brax")


def _run(name: str, tmp_path) -> dict:
    out = tmp_path / name
    assert main(["run", name, "--preset", "tiny", "--out", str(out), "--no-progress"]) == 0
    assert (out / f"{name}.png").stat().st_size > 0 and (out / f"{name}.csv").exists()
    return json.loads((out / "result.json").read_text())


def _whole_steps(values, most: int) -> None:
    """Returns of InvertedPendulum episodes: a whole number of steps, 1 to ``most``."""
    values = np.asarray([v for v in values if v is not None], float)
    assert len(values) and np.all((values >= 1) & (values <= most))
    np.testing.assert_array_equal(values, np.round(values))


@pytest.mark.slow
def test_mbpo_brax_tiny_end_to_end(tmp_path):
    result = _run("mbpo-brax", tmp_path)
    assert result["task"] == "InvertedPendulum (brax)" and result["target"] == 950.0
    assert set(result["curves"]) == {"SAC", "MBPO G=2"}
    assert result["curves"]["MBPO G=2"]["x"] == [100.0, 200.0]
    for runs in result["curves"].values():  # the mean over 2 seeds of 1 episode each
        _whole_steps(np.asarray(runs["y"]) * 2, 2 * 1000)


@pytest.mark.slow
def test_mpc_value_brax_tiny_end_to_end(tmp_path):
    result = _run("mpc-value-brax", tmp_path)
    task = "InvertedPendulum (brax)"
    groups = ("PETS H=3", "value-MPC H=2", "SAC", "MBPO G=2")
    assert set(result["curves"]) == {f"{task}: {g}" for g in groups}
    # PETS: trial 0 (random) and trial 1, 100 steps each, each one episode of at most 100 steps
    pets = result["curves"][f"{task}: PETS H=3"]
    assert pets["x"] == [100.0, 200.0]
    _whole_steps(np.asarray(pets["y"]) * 2, 2 * 100)
    # population 8 x particles 2 x horizon 2 x iterations 1 + 1 prior rollout x 2 steps
    assert result["compute"][f"{task}: value-MPC H=2"]["model_steps_per_decision"] == 34
    assert result["compute"][f"{task}: PETS H=3"]["model_steps_per_decision"] == 8 * 2 * 3
    assert result["targets"] == {task: 950.0}


@pytest.mark.parametrize("name", ["mbpo-brax", "mpc-value-brax"])
def test_brax_gpu_presets_pass_their_checks(name):
    module = load(name)
    module.check(module.PRESETS["gpu"])  # builds HalfCheetah, SAC, the ensemble, the planners


def test_brax_experiments_reject_unknown_tasks(capsys):
    assert main(["run", "mbpo-brax", "--env", "hopper"]) == 2
    assert "halfcheetah" in capsys.readouterr().err
    assert main(["run", "mpc-value-brax", "--set", "tasks=inverted_pendulum,ant"]) == 2
    assert "inverted_pendulum" in capsys.readouterr().err
