"""Observability: ``--profile`` traces, compile/run time with XLA's cost analysis in
result.json, and the benchmarks runner."""

import functools
import json
import math

import jax
import jax.numpy as jnp
import pytest

import experiments.dyna_maze
from benchmarks.__main__ import main as run_benchmarks
from mbrl_jax.cli import main
from mbrl_jax.profiling import trace_files
from mbrl_jax.results import Timing, compile_and_run, cost_analysis


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


def test_result_json_reports_compile_run_and_xla_cost(tmp_path):
    out = tmp_path / "dm"
    assert main(["run", "dyna-maze", "--runs", "2", "--out", str(out), "--no-progress"]) == 0
    timing = json.loads((out / "result.json").read_text())["timing"]
    assert set(timing) == {"compile_s", "run_s", "flops", "bytes_accessed"}
    assert timing["compile_s"] > 0 and timing["run_s"] > 0
    assert timing["flops"] > 0 and timing["bytes_accessed"] > 0


def test_compile_and_run_splits_compile_from_run_and_counts_loop_bodies_once():
    x = jnp.ones((32, 32))
    out, timing = compile_and_run(lambda a: a @ a, x)
    assert float(out[0, 0]) == 32.0
    assert timing.compile_s > 0 and timing.run_s > 0
    assert timing.flops == 2 * 32**3 and timing.bytes_accessed > 0

    def ten_matmuls(a):
        return jax.lax.scan(lambda c, _: (c @ a, None), a, None, length=10)[0]

    _, looped = compile_and_run(ten_matmuls, x)
    assert looped.flops == pytest.approx(2 * 32**3, rel=0.01)  # the body once, not 10 times


def test_timing_sums_groups_and_writes_null_for_unknown_cost():
    total = Timing(1.0, 2.0, 10.0, 20.0) + Timing(0.5, 0.25, math.nan, 4.0)
    assert total.as_dict() == {
        "compile_s": 1.5,
        "run_s": 2.25,
        "flops": None,
        "bytes_accessed": 24.0,
    }


class _Compiled:
    def __init__(self, analysis):
        self.analysis = analysis

    def cost_analysis(self):
        return self.analysis


def test_cost_analysis_reads_a_dict_or_a_list_of_dicts():
    one = {"flops": 3.0, "bytes accessed": 5.0, "utilization0{}": 1.0}
    assert cost_analysis(_Compiled(one)) == (3.0, 5.0)
    assert cost_analysis(_Compiled([one, one])) == (6.0, 10.0)
    assert all(math.isnan(v) for v in cost_analysis(_Compiled(None)))


@pytest.mark.slow
def test_benchmarks_quick_appends_a_dated_section(tmp_path):
    out = tmp_path / "RESULTS.md"
    out.write_text("# Hand-written\n\nkept as it is\n")
    run_benchmarks(["--quick", "--out", str(out)])
    text = out.read_text()
    assert text.startswith("# Hand-written\n\nkept as it is\n\n## ")
    assert "quick sizes" in text and "jax " in text and "Device: " in text
    for name in ("dyna_maze", "prioritized_sweeping", "planning", "dyna_dqn"):
        assert f"### {name} — `python -m benchmarks.{name}" in text
    assert text.count("|---|") >= 3  # every benchmark printed a table
