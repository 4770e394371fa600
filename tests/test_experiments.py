"""Experiments through the CLI: the output contract and the figures' claims."""

import csv
import inspect
import json
import re

import jax
import numpy as np
import pytest

from experiments import EXPERIMENTS, load
from mbrl_jax.cli import main
from mbrl_jax.config import override
from mbrl_jax.sweep import seed_keys, sweep

CONTRACT_KEYS = {
    "experiment", "config", "seeds", "device", "versions", "timing", "x_label", "y_label", "curves",
}  # fmt: skip


@pytest.mark.slow
def test_cli_writes_result_json_png_and_csv(tmp_path, capsys):
    out = tmp_path / "dm"
    assert (
        main(["run", "dyna-maze", "--runs", "3", "--seed", "5", "--out", str(out), "--no-progress"])
        == 0
    )
    result = json.loads((out / "result.json").read_text())
    assert CONTRACT_KEYS <= set(result)
    assert result["experiment"] == "dyna-maze" and result["seeds"] == [5, 6, 7]
    assert set(result["curves"]) == {"n=0", "n=5", "n=50"}
    assert result["curves"]["n=5"]["x"] == list(map(float, range(1, 51)))
    assert result["timing"]["compile_s"] > 0 and result["timing"]["run_s"] > 0
    assert {"jax", "mbrl_jax"} <= set(result["versions"])
    rows = list(csv.DictReader((out / "dyna-maze.csv").open()))
    assert len(rows) == 3 * 50 and set(rows[0]) == {"label", "x", "y", "y_err"}
    first = next(r for r in rows if r["label"] == "n=50" and r["x"] == "2.0")
    assert float(first["y"]) == pytest.approx(result["curves"]["n=50"]["y"][1])
    assert (out / "dyna-maze.png").read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert re.search(r"compile [\d.]+ s, run [\d.]+ s", printed)
    (out / "dyna-maze.png").unlink()
    assert main(["plot", str(out / "result.json")]) == 0  # redrawn from result.json alone
    assert (out / "dyna-maze.png").exists()


def test_seed_keys_are_the_keys_sweep_gives_each_seed():
    seeds, keys = seed_keys(5, 3)
    assert seeds == [5, 6, 7] and keys.shape == (3,)
    draws = np.asarray(jax.vmap(jax.random.uniform)(keys))
    alone = [float(jax.random.uniform(jax.random.key(s))) for s in seeds]
    np.testing.assert_array_equal(draws, alone)  # any run can be repeated alone
    swept = sweep(lambda key, x: jax.random.uniform(key) + x, {"x": [0.0]}, seeds)
    np.testing.assert_array_equal(swept.metrics[0], draws)
    with pytest.raises(ValueError, match="runs must be an integer >= 1, got 0"):
        seed_keys(0, 0)


def test_unknown_experiment_is_a_clear_error(capsys):
    assert main(["run", "dyna-mazee"]) == 2
    assert "unknown experiment 'dyna-mazee'; available: dyna-maze" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown experiment"):
        load("nope")
    assert main(["run", "dyna-maze", "--runs", "0"]) == 2


def test_every_experiment_is_listed(capsys):
    assert main(["list"]) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in EXPERIMENTS)


def _slope(curve: dict, start: int, end: int) -> float:
    y = np.asarray(curve["y"])
    return (y[end - 1] - y[start - 1]) / (end - start)


@pytest.mark.slow
def test_blocking_maze_both_recover_and_dyna_q_plus_leads():
    result = load("blocking-maze").run(progress=False)
    q, qplus = result["curves"]["Dyna-Q"], result["curves"]["Dyna-Q+"]
    assert qplus["y"][-1] > 1.3 * q["y"][-1]  # clearly ahead at 3000 steps
    for c in (q, qplus):
        assert _slope(c, 900, 1000) > 0.02  # learned the first path
        assert _slope(c, 1001, 1200) < 0.01  # the path is blocked: reward stops
        assert _slope(c, 2500, 3000) > 0.01  # and comes back on the new path
    assert result["reward_rates"]["Dyna-Q+"]["runs_recovered"] == result["config"]["runs"]
    assert result["config"]["change_step"] == result["change_step"] == 1000


@pytest.mark.slow  # a study of several compiled groups (about 19 s)
def test_a_blocking_maze_study_traces_once_per_static_group_and_resumes_to_the_same_csv(
    tmp_path, monkeypatch
):
    """kappa (traced) x planning_steps (static): one trace of ``train`` per static group;
    a study killed after one group, run again, runs only the other, with the same CSV."""
    import shutil

    from mbrl_jax.study import run_study, write_study

    module = load("blocking-maze")
    config = module.Config(runs=2, num_steps=200, change_step=100, rate_window=50)
    grid = {"kappa": (1e-4, 1e-3), "planning_steps": (5, 10)}
    with pytest.raises(ValueError, match=r"rate_window must be in \[1, 99\]"):
        module.check(module.Config(num_steps=200, change_step=100, rate_window=100))
    traced, train = [], module.train

    def counting(config, key):
        traced.append(config.planning_steps)
        return train(config, key)

    monkeypatch.setattr(module, "train", counting)
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    result, rows = run_study(module, config, grid, full)
    assert sorted(traced) == [5, 10]
    assert len(rows) == 2 * 2 * 2 and rows[0]["Dyna-Q+ reward in the last window"] is not None
    for row in rows:  # kappa is Dyna-Q+'s alone: Dyna-Q's runs are the same for both
        twin = next(
            r
            for r in rows
            if r["kappa"] != row["kappa"]
            and (r["planning_steps"], r["seed"]) == (row["planning_steps"], row["seed"])
        )
        assert twin["Dyna-Q final cumulative reward"] == row["Dyna-Q final cumulative reward"]
    shutil.copytree(full / "groups", resumed / "groups")
    sorted((resumed / "groups").glob("*.json"))[0].unlink()  # killed before this group
    traced.clear()
    resumed_result, resumed_rows = run_study(module, config, grid, resumed)
    assert len(traced) == 1
    assert resumed_rows == rows and resumed_result["curves"] == result["curves"]
    csv_name = "blocking-maze-sweep-runs.csv"
    write_study(result, rows, full)
    write_study(resumed_result, resumed_rows, resumed)
    assert (resumed / csv_name).read_bytes() == (full / csv_name).read_bytes()
    damaged = sorted((resumed / "groups").glob("*.json"))[0]
    damaged.write_text('{"rows": [')
    with pytest.raises(ValueError, match=f"{damaged}: a damaged group of this study"):
        run_study(module, config, grid, resumed)


@pytest.mark.slow
def test_shortcut_maze_only_dyna_q_plus_finds_the_shortcut():
    result = load("shortcut-maze").run(progress=False)
    rates = result["reward_rates"]
    assert rates["Dyna-Q+"]["last_window"] > 1.3 * rates["Dyna-Q+"]["before_change"]
    assert rates["Dyna-Q"]["last_window"] < 1.1 * rates["Dyna-Q"]["before_change"]


@pytest.mark.slow
def test_pets_experiment_writes_the_contract_at_toy_size(tmp_path):
    from mbrl_jax.results import write_result

    module = load("pets-cartpole")
    config = override(
        module.PRESETS["cpu"],
        ["runs=2", "trials=1", "planner.population=8", "planner.elites=2",
         "planner.iterations=1", "planner.particles=2", "hidden=8", "trial_length=20",
         "max_epochs=2"],
    )  # fmt: skip
    result = module.run(config, progress=False)
    paths = write_result(result, tmp_path)
    assert CONTRACT_KEYS <= set(json.loads(paths["json"].read_text()))
    assert list(result["curves"]) == ["PETS"] and result["curves"]["PETS"]["x"] == [0.0, 1.0]
    assert result["config"]["planner"]["population"] == 8 and result["config"]["trials"] == 1
    assert result["config"]["planner"]["horizon"] == 15  # the preset's, not overridden
    returns = np.asarray(result["returns_per_seed"])
    assert returns.shape == (2, 2) and np.all((returns >= 1) & (returns <= 20))
    assert result["curves"]["PETS"]["y"][1] == pytest.approx(returns[:, 1].mean())


def test_unknown_preset_is_a_clear_error(capsys):
    assert main(["run", "pets-cartpole", "--preset", "gpu"]) == 2
    assert "unknown --preset 'gpu'; available: cpu, paper" in capsys.readouterr().err
    assert main(["run", "dyna-maze", "--preset", "paper"]) == 2
    assert "dyna-maze has no presets" in capsys.readouterr().err


@pytest.mark.slow
def test_planners_on_the_true_model_beat_random_shooting():
    module = load("mpc-true-model")
    result = module.run(module.Config(runs=4, budgets=(64,), horizon=15, steps=100), progress=False)
    y = {label: c["y"][0] for label, c in result["curves"].items()}
    assert set(y) == {"random shooting", "CEM", "MPPI", "iCEM"}
    assert min(y["CEM"], y["MPPI"], y["iCEM"]) > y["random shooting"]


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_experiment_runs_from_its_config_alone(name):
    """The experiment protocol: ``run(config=Config(), *, progress=True)``, every
    setting in the config, nothing else taken."""
    module = load(name)
    parameters = list(inspect.signature(module.run).parameters.values())
    assert [p.name for p in parameters] == ["config", "progress"], f"{name}: {parameters}"
    config, progress = parameters
    assert config.kind is config.POSITIONAL_OR_KEYWORD and config.default == module.Config()
    assert progress.kind is progress.KEYWORD_ONLY and progress.default is True
