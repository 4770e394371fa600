"""Benchmark: Figure 8.2 (Dyna-Q on the Dyna maze) in JAX against a plain NumPy loop,
and Dyna-Q throughput as the number of vmapped runs grows.

    python -m benchmarks.dyna_maze [--repeats 5] [--runs 1,10,30,100,1000,10000] [--n 5,50]
                                   [--tables traced,scaling,devices] [--devices 1,2]

Compile time is reported apart from run time; run times are medians of
``--repeats`` calls of the compiled function. Q-updates count real + planning
updates that each run made in its own steps (idle, masked steps of runs that
finished early are not counted). Prints Markdown tables for benchmarks/RESULTS.md.

The ``traced`` table compiles Figure 8.2's training once with ``planning_steps`` traced
(one executable for every n, as ``mbrl-jax run dyna-maze`` does) and runs it for each
n, against the static executables of the first table.

The last table runs Dyna-Q n = 50 through :func:`mbrl_jax.sweep.run_seeds` (what the
experiments and sweeps use: the runs sharded across the devices) at the ``--runs``
counts of 1,000 and more (all of them if none is), two ways: ``train(key)`` vmapped in
cache-sized calls, and the run's ``TrainLoop`` in lanes (each device's runs through
``CPU_LANES`` lanes that start the next run as one ends); on each ``--devices`` count
of CPU devices (default: one, and one per core), each in its own subprocess (the count
is fixed when JAX starts); each repeat compiles again, and compile seconds are reported
apart.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import jax
import numpy as np

from benchmarks.numpy_dyna import run_dyna_q
from benchmarks.tables import ints, md_row
from mbrl_jax.agents import dyna_q
from mbrl_jax.envs import dyna_maze
from mbrl_jax.sweep import run_seeds, seed_keys
from mbrl_jax.timing import (
    compile_and_time,
    compile_timed,
    device_description,
    run_timed,
    versions,
)
from mbrl_jax.train import TrainConfig, make_train, make_train_loop

#: the optional tables, in the order they print (Figure 8.2's comes first, always)
TABLES = ("traced", "scaling", "devices")


def timed_train(n: int, runs: int, repeats: int, num_episodes: int = 50) -> dict:
    """Compile once, run ``repeats`` times; median run time and Q-updates per run."""
    env = dyna_maze()
    train = make_train(
        env,
        dyna_q(env.num_states, env.num_actions, planning_steps=n),
        TrainConfig(num_episodes=num_episodes),
    )
    _, keys = seed_keys(0, runs)
    (_, metrics), timing, times = compile_and_time(jax.vmap(train), keys, repeats=repeats)
    steps = int(np.asarray(metrics.total_steps, np.int64).sum())
    return {
        "n": n,
        "runs": runs,
        "compile_s": timing.compile_s,
        "run_s": timing.run_s,
        "run_s_min": times.min_s,
        "run_s_max": times.max_s,
        "updates": steps * (1 + n),
        "updates_per_s": steps * (1 + n) / timing.run_s,
        "runs_per_s": runs / timing.run_s,
    }


def numpy_baseline(n: int, runs: int) -> dict:
    start = time.perf_counter()
    updates = sum(run_dyna_q(n, seed)[1] for seed in range(runs))
    seconds = time.perf_counter() - start
    return {"n": n, "runs": runs, "s_per_run": seconds / runs, "updates_per_s": updates / seconds}


def figure_table(repeats: int, numpy_runs: int) -> tuple[list[dict], list[dict]]:
    """Figure 8.2 (30 runs of each n) in JAX against the NumPy loop, as a table."""
    print("## Figure 8.2: 30 runs x n in {0, 5, 50}, 50 episodes\n")
    print("| n | compile s | run s (median) | NumPy s (30 runs, est.) | speed-up of run |")
    print("|---|---|---|---|---|")
    figure, baseline = [], []
    for n in (0, 5, 50):
        jax_row, np_row = timed_train(n, 30, repeats), numpy_baseline(n, numpy_runs)
        figure.append(jax_row)
        baseline.append(np_row)
        est = np_row["s_per_run"] * 30
        speedup = est / jax_row["run_s"]
        row = (n, f"{jax_row['compile_s']:.2f}", f"{jax_row['run_s']:.3f}", f"{est:.1f}")
        print(md_row(*row, f"{speedup:.0f}x"))
    total_compile = sum(r["compile_s"] for r in figure)
    total_run = sum(r["run_s"] for r in figure)
    total_np = sum(r["s_per_run"] * 30 for r in baseline)
    speedup = total_np / total_run
    print(f"| all | {total_compile:.2f} | {total_run:.3f} | {total_np:.1f} | {speedup:.0f}x |")
    np_rate = sum(r["updates_per_s"] for r in baseline) / len(baseline)
    print(f"\nNumPy loop: {np_rate:,.0f} Q-updates/s (mean over n), {numpy_runs} runs per n.\n")
    return figure, baseline


def timed_traced_n(ns: list[int], runs: int, repeats: int, num_episodes: int = 50) -> list[dict]:
    """One executable for every n (``planning_steps`` traced: a run-time loop bound),
    compiled once and run for each n: median run time per n."""
    env = dyna_maze()
    config = TrainConfig(num_episodes=num_episodes)

    def train(n, keys):
        agent = dyna_q(env.num_states, env.num_actions, planning_steps=n)
        return jax.vmap(make_train(env, agent, config))(keys)  # as timed_train: all outputs

    _, keys = seed_keys(0, runs)
    compiled, timing = compile_timed(train, np.int32(ns[0]), keys)
    rows = []
    for n in ns:
        seconds = [run_timed(compiled, np.int32(n), keys)[1] for _ in range(repeats)]
        rows.append({"n": n, "compile_s": timing.compile_s, "run_s": statistics.median(seconds)})
    return rows


def traced_n_table(figure: list[dict], repeats: int) -> list[dict]:
    """Figure 8.2's three n: one static executable each (``figure``) against one
    executable for every n, as a table."""
    print("## Figure 8.2, one executable for every n (planning_steps traced)\n")
    print("| n | static: compile s | static: run s | traced: run s | traced / static |")
    print("|---|---|---|---|---|")
    traced = timed_traced_n([r["n"] for r in figure], 30, repeats)
    for static, dynamic in zip(figure, traced, strict=True):
        cells = (f"{static['compile_s']:.2f}", f"{static['run_s']:.3f}", f"{dynamic['run_s']:.3f}")
        print(md_row(static["n"], *cells, f"{dynamic['run_s'] / static['run_s']:.2f}"))
    static_compile = sum(r["compile_s"] for r in figure)
    static_run, traced_run = sum(r["run_s"] for r in figure), sum(r["run_s"] for r in traced)
    print(
        f"| all | {static_compile:.2f} (traced: {traced[0]['compile_s']:.2f}, once) | "
        f"{static_run:.3f} | {traced_run:.3f} | {traced_run / static_run:.2f} |\n"
    )
    return traced


def scaling_table(ns: list[int], run_counts: list[int], repeats: int) -> list[dict]:
    """Dyna-Q throughput as the number of vmapped runs grows, as a table."""
    print("## Dyna-Q throughput vs vmapped runs (50 episodes each)\n")
    print("| n | runs | compile s | run s (median) | Q-updates/s | runs/s |")
    print("|---|---|---|---|---|---|")
    scaling = []
    for n in ns:
        for runs in run_counts:
            row = timed_train(n, runs, repeats if runs < 1000 else max(1, repeats // 2))
            scaling.append(row)
            cells = (f"{row['compile_s']:.2f}", f"{row['run_s']:.3f}")
            rates = (f"{row['updates_per_s']:,.0f}", f"{row['runs_per_s']:,.1f}")
            print(md_row(n, runs, *cells, *rates), flush=True)
    return scaling


#: how ``devices_table`` runs the runs through ``run_seeds``: a vmapped ``train(key)``,
#: or the run's ``TrainLoop`` in lanes (``mbrl_jax.train.run_in_lanes``)
WAYS = ("vmapped", "lanes")


def sharded_rates(runs: int, repeats: int, way: str, n: int = 50) -> dict:
    """Dyna-Q through ``run_seeds`` on this process's devices, ``way`` one of
    :data:`WAYS`: median seconds of ``repeats`` calls (each compiles again; compile
    seconds apart) and Q-updates/s."""
    env = dyna_maze()
    agent = dyna_q(env.num_states, env.num_actions, planning_steps=n)
    config = TrainConfig(num_episodes=50)
    if way == "lanes":
        loop = make_train_loop(env, agent, config)
        train = loop._replace(result=lambda state: loop.result(state)[1].total_steps)
    else:
        train_run = make_train(env, agent, config)

        def train(key):
            return train_run(key)[1].total_steps

    compile_s, run_s = [], []
    for _ in range(repeats):
        steps, timing = run_seeds(train, range(runs))
        compile_s.append(timing.compile_s)
        run_s.append(timing.run_s)
    updates = int(np.asarray(steps, np.int64).sum()) * (1 + n)
    median = float(np.median(run_s))
    return {
        "devices": jax.device_count(),
        "runs": runs,
        "way": way,
        "compile_s": float(np.median(compile_s)),
        "run_s": median,
        "run_s_all": run_s,
        "updates_per_s": updates / median,
    }


def devices_table(run_counts: list[int], repeats: int, device_counts: list[int]) -> list[dict]:
    """``sharded_rates`` both ways (:data:`WAYS`) on each count of CPU devices, a
    subprocess each (the count is fixed when JAX starts)."""
    print("## Dyna-Q n = 50 through run_seeds: vmapped runs or lanes, by CPU devices\n")
    print(md_row("devices", "runs", "runs as", "compile s", "run s (median)", "Q-updates/s"))
    print(md_row(*["---"] * 6))
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f]
    rows = []
    for runs in run_counts:
        for devices in device_counts:
            for way in WAYS:
                env = {
                    **os.environ, "JAX_NUM_CPU_DEVICES": str(devices), "XLA_FLAGS": " ".join(flags),
                }  # fmt: skip
                argv = ["--worker-runs", str(runs), "--worker-way", way, "--repeats", str(repeats)]
                done = subprocess.run(
                    [sys.executable, "-m", "benchmarks.dyna_maze", *argv],
                    env=env, capture_output=True, text=True, check=True,
                )  # fmt: skip
                row = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append(row)
                cells = (f"{row['compile_s']:.2f}", f"{row['run_s']:.2f}")
                rate = f"{row['updates_per_s']:,.0f}"
                print(md_row(row["devices"], runs, way, *cells, rate), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--numpy-runs",
        type=int,
        default=3,
        help="NumPy runs per n (time per run is extrapolated to 30)",
    )
    parser.add_argument("--runs", default="1,10,30,100,1000,10000")
    parser.add_argument("--n", default="5,50", help="planning steps for the scaling table")
    parser.add_argument("--json", action="store_true", help="also print the raw figures as JSON")
    parser.add_argument(
        "--tables",
        default=",".join(TABLES),
        help="tables after Figure 8.2's, comma-separated (default: all)",
    )
    parser.add_argument(
        "--devices",
        default=f"1,{len(os.sched_getaffinity(0))}",
        help="CPU device counts of the devices table (default: 1 and one per core)",
    )
    parser.add_argument("--worker-runs", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-way", choices=WAYS, default="vmapped", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker_runs is not None:  # a subprocess of devices_table
        print(json.dumps(sharded_rates(args.worker_runs, args.repeats, args.worker_way)))
        return
    print(f"device: {device_description()}; versions: {versions()}; {time.strftime('%Y-%m-%d')}\n")
    tables = set(args.tables.split(","))
    unknown = tables - set(TABLES)
    if unknown:
        parser.error(f"unknown --tables {sorted(unknown)}; available: {','.join(TABLES)}")
    figures = {}
    figures["figure_8_2"], figures["numpy"] = figure_table(args.repeats, args.numpy_runs)
    if "traced" in tables:
        figures["traced_n"] = traced_n_table(figures["figure_8_2"], args.repeats)
    if "scaling" in tables:
        figures["scaling"] = scaling_table(ints(args.n), ints(args.runs), args.repeats)
    if "devices" in tables:
        large = [r for r in ints(args.runs) if r >= 1000] or ints(args.runs)
        device_counts = list(dict.fromkeys(ints(args.devices)))
        figures["devices"] = devices_table(large, max(1, args.repeats // 2), device_counts)
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
