"""Observability: ``--profile`` traces, compile/run time with XLA's cost analysis in
result.json, and the benchmarks runner (the timing helpers: tests/test_timing.py)."""

import functools
import json
import subprocess
import sys

import pytest

import experiments.dyna_maze
from mbrl_jax.cli import main
from mbrl_jax.profiling import trace_files


@pytest.mark.slow
def test_cli_profile_writes_a_trace(tmp_path, monkeypatch):
    # A tiny run (traces of CPU loops are big), so its summary's episode table is skipped.
    tiny = functools.partial(experiments.dyna_maze.run, planning_steps=(5,), num_episodes=3)
    monkeypatch.setattr(experiments.dyna_maze, "run", tiny)
    monkeypatch.setattr(experiments.dyna_maze, "summary", lambda result: "")
    argv = ["run", "dyna-maze", "--runs", "1", "--out", str(tmp_path / "out"), "--no-progress"]
    assert main([*argv, "--profile", str(tmp_path / "trace")]) == 0
    files = trace_files(tmp_path / "trace")
    assert {f.name.split(".", 1)[1] for f in files} == {"xplane.pb", "trace.json.gz"}
    assert all(f.stat().st_size > 0 for f in files)
    assert all(f.relative_to(tmp_path / "trace").parts[:2] == ("plugins", "profile") for f in files)


@pytest.mark.slow
def test_result_json_reports_compile_run_and_xla_cost(tmp_path):
    out = tmp_path / "dm"
    assert main(["run", "dyna-maze", "--runs", "2", "--out", str(out), "--no-progress"]) == 0
    timing = json.loads((out / "result.json").read_text())["timing"]
    assert set(timing) == {"compile_s", "run_s", "flops", "bytes_accessed"}
    assert timing["compile_s"] > 0 and timing["run_s"] > 0
    assert timing["flops"] > 0 and timing["bytes_accessed"] > 0


@pytest.mark.slow
def test_benchmarks_quick_appends_a_dated_section(tmp_path):
    # A subprocess, as a user runs it: dqn_loop and threefry switch their process to the
    # unrolled Threefry lowering, which must not reach the later tests of this worker.
    out = tmp_path / "RESULTS.md"
    out.write_text("# Hand-written\n\nkept as it is\n")
    command = [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    assert text.startswith("# Hand-written\n\nkept as it is\n\n## ")
    assert "quick sizes" in text and "jax " in text and "Device: " in text
    for name in ("cli_wall", "dyna_maze", "prioritized_sweeping", "planning", "dyna_dqn"):
        assert f"### {name} — `python -m benchmarks.{name}" in text
    assert text.count("|---|") >= 3  # every benchmark printed a table
