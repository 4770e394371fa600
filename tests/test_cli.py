"""The command line: show, run with --set, sweep any experiment, plot and compare, and
every bad input a one-line error (exit status 2) before anything runs."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

import experiments
from experiments import dyna_maze
from mbrl_jax.cli import compile_cache_dir, main
from mbrl_jax.config import to_dict


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("mbrl-jax: error: ") and "\n" not in err, err
    return err.removeprefix("mbrl-jax: error: ")


def test_show_prints_every_field_with_kind_and_doc(capsys):
    assert main(["show", "dyna-maze", "--set", "alpha=0.3"]) == 0
    out = capsys.readouterr().out
    alpha = next(line for line in out.splitlines() if line.startswith("alpha"))
    assert alpha.split()[1:4] == ["float", "traced", "0.3"]
    assert "static" in next(line for line in out.splitlines() if line.startswith("planning_steps"))


def test_run_help_lists_the_experiments_presets_and_tasks(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for name in experiments.EXPERIMENTS:
        assert name in out
    assert "presets:" in out and "--env:" in out


def test_run_with_set_stores_the_whole_config(tmp_path, capsys):
    out = tmp_path / "dm"
    args = ["run", "dyna-maze", "--set", "alpha=0.2", "--set", "planning_steps=10"]
    args += ["--set", "num_episodes=3", "--runs", "2", "--seed", "5", "--out", str(out)]
    assert main([*args, "--no-progress"]) == 0
    result = json.loads((out / "result.json").read_text())
    expected = dyna_maze.Config(runs=2, seed=5, alpha=0.2, planning_steps=(10,), num_episodes=3)
    assert result["config"] == to_dict(expected)
    assert list(result["curves"]) == ["n=10"] and result["seeds"] == [5, 6]


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "nope"], "unknown experiment 'nope'; available: dyna-maze, "),
        (["run", "dyna-maze", "--set", "beta=1"], "unknown setting 'beta' in 'beta=1'"),
        (["run", "dyna-maze", "--set", "alpha=fast"], "alpha must be a number, got 'fast'"),
        (["run", "dyna-maze", "--set", "alpha=2"], "alpha must be in [0.0, 1.0], got 2.0"),
        (["run", "dyna-maze", "--set", "planning_steps=-1"], "planning_steps must be an"),
        (["run", "dyna-maze", "--runs", "0"], "runs must be an integer >= 1, got 0"),
        (["run", "dyna-maze", "--seed", "4294967295", "--runs", "2"], "seeds must be in"),
        (["run", "dyna-maze", "--preset", "gpu"], "unknown --preset 'gpu'; available: none"),
        (["run", "dyna-maze", "--env", "CartPole-v1"], "dyna-maze has a fixed task"),
        (["sweep", "dyna-maze", "--grid", "alpha=0.1,0.1"], "--grid alpha repeats 0.1"),
        (["sweep", "dyna-maze", "--grid", "alpha=0.1,2"], "alpha must be in [0.0, 1.0]"),
        (["sweep", "dyna-maze", "--grid", "beta=1,2"], "unknown setting 'beta' in --grid"),
        (["sweep", "dyna-maze", "--alpha", ""], "--grid alpha needs comma-separated values"),
        (["sweep", "dyna-maze"], "give at least one --grid field=v1,v2"),
        (["sweep", "dyna-maze", "--grid", "alpha=0.1", "--seeds", "0"], "--seeds must be an"),
        (["sweep", "dyna-maze", "--grid", "alpha=0.1", "--grid", "alpha=0.2"], "alpha' twice"),
        (["sweep", "dyna-maze", "--grid", "alpha=0.1", "--chunk-size", "0"], "--chunk-size"),
        (["plot", "missing/result.json"], "missing/result.json: no such file"),
        (["compare", "a.json", "--out", "cmp"], "at least 2"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written, even a default output folder
    assert main(args) == 2
    assert message in _error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_out_must_be_a_writable_folder_before_the_run(tmp_path, capsys):
    file = tmp_path / "file"
    file.write_text("")
    assert main(["run", "dyna-maze", "--out", str(file)]) == 2
    assert _error(capsys) == f"--out {file} is a file, not a folder; give a folder to write into"
    assert main(["run", "dyna-maze", "--out", str(file / "below")]) == 2
    assert _error(capsys).startswith(f"--out {file / 'below'} cannot be created")


def test_plot_reports_invalid_json_in_one_line(tmp_path, capsys):
    bad = tmp_path / "result.json"
    bad.write_text("{not json")
    assert main(["plot", str(bad)]) == 2
    assert _error(capsys).startswith(f"{bad}: invalid JSON at line 1")


def test_sweep_of_a_traced_field_writes_config_grid_and_tidy_rows(tmp_path, capsys):
    out = tmp_path / "study"
    args = ["sweep", "dyna-maze", "--grid", "alpha=0.1,0.5", "--grid", "planning_steps=5"]
    args += ["--set", "num_episodes=3", "--seeds", "2", "--seed", "7", "--out", str(out)]
    assert main([*args, "--no-progress"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["experiment"] == "dyna-maze-sweep" and result["seeds"] == [7, 8]
    assert result["config"] == to_dict(dyna_maze.Config(runs=2, seed=7, num_episodes=3))
    assert result["grid"] == {"alpha": [0.1, 0.5], "planning_steps": [[5]]}
    rows = list(csv.DictReader((out / "dyna-maze-sweep-runs.csv").open()))
    assert [(r["alpha"], r["planning_steps"], r["seed"]) for r in rows] == [
        ("0.1", "5", "7"),
        ("0.1", "5", "8"),
        ("0.5", "5", "7"),
        ("0.5", "5", "8"),
    ]
    (curve,) = result["curves"].values()
    assert curve["x"] == [0.1, 0.5]
    assert curve["y"][0] == pytest.approx(
        (float(rows[0]["mean_steps"]) + float(rows[1]["mean_steps"])) / 2
    )
    assert (out / "dyna-maze-sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_overlays_two_results_and_prints_a_table(tmp_path, capsys):
    paths = []
    for name, shift in (("a", 0.0), ("b", 1.0)):
        result = {
            "experiment": "dyna-maze",
            "config": {"alpha": 0.1 + shift},
            "seeds": [0, 1, 2],
            "x_label": "Episodes",
            "y_label": "Steps",
            "curves": {"n=5": {"x": [1, 2], "y": [10.0, 5.0 + shift], "y_err": [1.0, 0.5]}},
        }
        (tmp_path / name).mkdir()
        paths.append(tmp_path / name / "result.json")
        paths[-1].write_text(json.dumps(result))
    out = tmp_path / "cmp"
    assert main(["compare", *map(str, paths), "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "n=5" in table and "+1" in table
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"


def test_the_compile_cache_folder_and_its_switch(tmp_path):
    assert compile_cache_dir({"MBRL_JAX_CACHE_DIR": str(tmp_path)}) == tmp_path
    for off in ("off", "0", "", "OFF", "false"):
        assert compile_cache_dir({"MBRL_JAX_CACHE_DIR": off}) is None
    assert compile_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "mbrl_jax" / "xla"
    assert compile_cache_dir({}).parts[-3:] == (".cache", "mbrl_jax", "xla")


CACHE_PROBE = """
import json, sys
import jax.monitoring
events = []
jax.monitoring.register_event_listener(lambda event, **kwargs: events.append(event))
from mbrl_jax.cli import compile_cache_dir, main
status = main(sys.argv[1:])
requests = events.count("/jax/compilation_cache/compile_requests_use_cache")
hits = events.count("/jax/compilation_cache/cache_hits")
print(json.dumps({"status": status, "requests": requests, "hits": hits}))
"""
TINY_RUN = ["run", "dyna-maze", "--runs", "2", "--set", "num_episodes=2", "--no-progress"]
TINY_RUN += ["--set", "planning_steps=5"]


def _cli_in_a_fresh_process(cache: str, *args: str) -> dict:
    env = {**os.environ, "MBRL_JAX_CACHE_DIR": cache, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", CACHE_PROBE, *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["status"] == 0
    return out


@pytest.mark.slow  # two subprocesses that compile an experiment
def test_a_second_run_compiles_nothing(tmp_path):
    cache = tmp_path / "cache"
    first = _cli_in_a_fresh_process(str(cache), *TINY_RUN, "--out", str(tmp_path / "a"))
    assert first["requests"] > 0 and first["hits"] == 0
    entries = sorted(p.name for p in cache.iterdir())
    assert entries
    second = _cli_in_a_fresh_process(str(cache), *TINY_RUN, "--out", str(tmp_path / "b"))
    assert second["hits"] == second["requests"] == first["requests"]  # every program read back
    assert sorted(p.name for p in cache.iterdir()) == entries  # and nothing new written
    assert (tmp_path / "a" / "dyna-maze.csv").read_text() == (
        tmp_path / "b" / "dyna-maze.csv"
    ).read_text()


@pytest.mark.slow
def test_no_compile_cache_writes_nothing(tmp_path):
    cache = tmp_path / "cache"
    out = tmp_path / "out"
    off = _cli_in_a_fresh_process(str(cache), *TINY_RUN, "--out", str(out), "--no-compile-cache")
    assert off["requests"] == 0 and not cache.exists()
    off = _cli_in_a_fresh_process("off", *TINY_RUN, "--out", str(out))
    assert off["requests"] == 0
