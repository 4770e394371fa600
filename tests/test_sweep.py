"""Sweeps: equal to separate runs, one compile per static group, chunking, tidy
rows, 4 devices and 2 processes equal to 1, the `mbrl-jax sweep` command."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from collections import Counter
from functools import partial
from pathlib import Path

import chex
import jax
import numpy as np
import pytest

import mbrl_jax.sweep as sweep_module
from experiments.dyna_maze import mean_steps
from mbrl_jax.agents import dyna_q
from mbrl_jax.envs import dyna_maze
from mbrl_jax.sweep import expand_grid, run_seeds, sweep, use_every_core, write_csv
from mbrl_jax.train import TrainConfig, TrainLoop, make_train, make_train_loop

ENV = dyna_maze()
GRID = {"alpha": [0.1, 0.5], "n": [0, 5]}
SEEDS = [3, 4, 5]  # 6 runs per group: padded on 4 devices and in chunks of 4
ONE = {"alpha": [0.1], "n": [0]}
TRACES: Counter = Counter()  # times tiny_train was traced, by n


def tiny_train(key: jax.Array, *, alpha, n: int) -> jax.Array:
    """Steps per episode of 10 episodes of Dyna-Q on the Dyna maze."""
    TRACES[n] += 1
    agent = dyna_q(ENV.num_states, ENV.num_actions, planning_steps=n, alpha=alpha)
    return make_train(ENV, agent, TrainConfig(num_episodes=10))(key)[1].episode_length


def tiny_loop(alpha: float, n: int) -> TrainLoop:
    """``tiny_train``'s run as a TrainLoop that keeps the steps per episode."""
    agent = dyna_q(ENV.num_states, ENV.num_actions, planning_steps=n, alpha=alpha)
    loop = make_train_loop(ENV, agent, TrainConfig(num_episodes=10))
    return loop._replace(result=lambda state: loop.result(state)[1].episode_length)


@pytest.fixture(scope="module")
def swept():
    TRACES.clear()
    chex.clear_trace_counter()
    # One trace (and compile) per static group: a third trace would raise.
    result = sweep(chex.assert_max_traces(tiny_train, n=2), GRID, SEEDS, static=("n",))
    assert TRACES == {0: 1, 5: 1}
    return result


def test_sweep_equals_separate_calls(swept):
    assert swept.settings == expand_grid(GRID)
    assert [(s["alpha"], s["n"]) for s in swept.settings] == [
        (0.1, 0),
        (0.1, 5),
        (0.5, 0),
        (0.5, 5),
    ]
    assert swept.seeds == SEEDS and swept.axes == ("setting", "seed")
    assert swept.metrics.shape == (4, 3, 10)
    assert swept.timing.compile_s > 0 and swept.timing.run_s > 0
    alone = jax.jit(tiny_train, static_argnames="n")
    for i, setting in enumerate(swept.settings):
        for j, seed in enumerate(SEEDS):
            out = alone(jax.random.key(seed), alpha=np.float32(setting["alpha"]), n=setting["n"])
            np.testing.assert_array_equal(out, swept.metrics[i, j])


def test_chunks_equal_one_call_and_compile_once_per_group(swept):
    TRACES.clear()
    chex.clear_trace_counter()
    once_per_group = chex.assert_max_traces(tiny_train, n=2)
    chunked = sweep(once_per_group, GRID, SEEDS, static=("n",), chunk_size=4)  # 2 chunks a group
    assert TRACES == {0: 1, 5: 1}
    np.testing.assert_array_equal(chunked.metrics, swept.metrics)


@pytest.mark.slow
def test_a_small_memory_budget_chunks_the_runs(swept):
    assert swept.runs_per_call == [6, 6]  # "auto" budget: everything in one call
    TRACES.clear()
    # Room for about 2 runs: each group is probed at 6 runs, then recompiled for fewer.
    per_run_bytes = 4 * (ENV.num_states * ENV.num_actions) * 4  # a lower bound, not exact
    limited = sweep(tiny_train, GRID, SEEDS, static=("n",), memory_budget=per_run_bytes)
    assert all(batch < 6 for batch in limited.runs_per_call)
    assert TRACES == {0: 2, 5: 2}
    np.testing.assert_array_equal(limited.metrics, swept.metrics)
    with pytest.raises(ValueError, match="memory_budget must be"):
        sweep(tiny_train, ONE, 1, static=("n",), memory_budget="lots")


def test_run_seeds_equals_one_vmapped_call(swept):
    train = partial(tiny_train, alpha=np.float32(0.5), n=5)  # setting 3 of the grid
    out, timing = run_seeds(train, SEEDS)
    np.testing.assert_array_equal(out, swept.metrics[3])
    assert timing.compile_s > 0 and timing.run_s > 0
    chunked, _ = run_seeds(train, SEEDS, chunk_size=2)
    np.testing.assert_array_equal(chunked, swept.metrics[3])
    in_lanes, _ = run_seeds(tiny_loop(0.5, 5), SEEDS, lanes=2)  # 3 runs: one lane refills
    np.testing.assert_array_equal(in_lanes, swept.metrics[3])
    with pytest.raises(ValueError, match="lanes must be"):
        run_seeds(tiny_loop(0.5, 5), SEEDS, lanes=0)
    assert use_every_core() == 0  # the backend runs already: the device count stays


@pytest.mark.slow
def test_calls_are_cut_to_the_cpu_cache(swept, monkeypatch):
    monkeypatch.setattr(sweep_module, "cpu_cache_budget", lambda num_devices: 1)
    monkeypatch.setattr(sweep_module, "CPU_MIN_RUNS_PER_DEVICE", 2)
    cut = sweep(tiny_train, GRID, SEEDS, static=("n",))
    assert cut.runs_per_call == [2, 2]  # 6 runs: three even calls, probed at 6 first
    np.testing.assert_array_equal(cut.metrics, swept.metrics)


def test_rows_carry_the_settings(swept, tmp_path):
    rows = swept.rows()
    assert len(rows) == 4 * 3
    assert list(rows[0])[:3] == ["alpha", "n", "seed"] and len(rows[0]) == 3 + 10
    row = rows[2 * 3 + 1]  # setting 2 (alpha 0.5, n 0), seed 4
    assert (row["alpha"], row["n"], row["seed"]) == (0.5, 0, 4)
    assert [row[f"value[{e}]"] for e in range(10)] == swept.metrics[2, 1].tolist()
    write_csv(rows, tmp_path / "runs.csv")
    read = list(csv.DictReader((tmp_path / "runs.csv").open()))
    assert read[7]["alpha"] == "0.5" and read[7]["seed"] == "4"


def test_grid_order_and_a_list_of_settings():
    assert expand_grid({"a": [1, 2], "b": [3, 4]}) == [
        {"a": 1, "b": 3}, {"a": 1, "b": 4}, {"a": 2, "b": 3}, {"a": 2, "b": 4},
    ]  # fmt: skip
    assert expand_grid([{"a": 1, "b": 0}, {"b": 2, "a": 1}]) == [{"a": 1, "b": 0}, {"a": 1, "b": 2}]


@pytest.mark.parametrize(
    "grid, kwargs, message",
    [
        ({}, {}, "the grid is empty"),
        ([], {}, "the grid is empty"),
        ({"alpha": [], "n": [0]}, {}, r"grid\['alpha'\] must be a non-empty list"),
        ({**ONE, "b": [1]}, {}, "unknown hyperparameter 'b': train takes alpha, n"),
        ({"alpha": [0.1]}, {}, "does not give train's hyperparameters n"),
        ([{"alpha": 0.1, "n": 0}, {"alpha": 0.1}], {}, "must name the same hyperparameters"),
        (ONE, {"static": ("m",)}, "static name 'm' is not in the grid"),
        ({"alpha": ["a"], "n": [0]}, {}, "'alpha' has non-numeric values"),
        (ONE, {"seeds": 0}, "seeds must be an integer >= 1"),
        (ONE, {"chunk_size": 0}, "chunk_size must be an integer >= 1"),
    ],
)  # fmt: skip
def test_bad_input_is_a_clear_error(grid, kwargs, message):
    kwargs = {"seeds": 1, "static": ("n",), **kwargs}
    with pytest.raises(ValueError, match=message):
        sweep(tiny_train, grid, **kwargs)


def _python(code: str, *argv: str, **env: str) -> subprocess.Popen:
    """Start ``code`` in a fresh interpreter (CPU backend) that can import this module."""
    paths = [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": os.pathsep.join(filter(None, paths)),
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-c", code, *argv], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _json_result(process: subprocess.Popen) -> dict:
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])  # last line: other libraries may print


FOUR_DEVICES = """
import json, jax, numpy as np
import mbrl_jax.sweep as sw
from test_sweep import GRID, SEEDS, tiny_loop, tiny_train
devices, to_host, put = [], sw._to_host, sw._put
sw._to_host = lambda tree: devices.append(len(tree.sharding.device_set)) or to_host(tree)
sw._put = lambda x, sharding: (lambda a: devices.append(len(a.sharding.device_set)) or a)(
    put(x, sharding))
whole = sw.sweep(tiny_train, GRID, SEEDS, static=("n",))
chunked = sw.sweep(tiny_train, GRID, SEEDS, static=("n",), chunk_size=4)
seeds, _ = sw.run_seeds(lambda key: tiny_train(key, alpha=np.float32(0.5), n=5), SEEDS)
twelve = range(3, 15)  # 3 runs per device, in 2 lanes on each
lanes, _ = sw.run_seeds(tiny_loop(0.5, 5), twelve, lanes=2)
vmapped, _ = sw.run_seeds(lambda key: tiny_train(key, alpha=0.5, n=5), twelve)
print(json.dumps({"count": jax.device_count(), "whole": whole.metrics.tolist(),
                  "chunked": chunked.metrics.tolist(), "seeds": seeds.tolist(),
                  "lanes": lanes.tolist(), "vmapped": vmapped.tolist(), "devices": devices}))
"""


@pytest.mark.slow
def test_four_devices_give_the_one_device_result(swept):
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    out = _json_result(_python(FOUR_DEVICES, XLA_FLAGS=flags))
    assert out["count"] == 4
    assert set(out["devices"]) == {4}  # every input and output spread over the 4 devices
    assert out["whole"] == swept.metrics.tolist()  # 6 runs per group padded to 8, dropped
    assert out["chunked"] == swept.metrics.tolist()
    assert out["seeds"] == swept.metrics[3].tolist()
    assert out["lanes"] == out["vmapped"]  # each device ran its own lanes
    assert out["lanes"][:3] == swept.metrics[3].tolist()


EVERY_CORE = """
import json, jax
from mbrl_jax.sweep import use_every_core
asked = use_every_core()
print(json.dumps({"asked": asked, "count": jax.device_count(), "again": use_every_core()}))
"""


@pytest.mark.slow
def test_use_every_core_gives_one_cpu_device_per_core():
    cores = len(os.sched_getaffinity(0))
    flags = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f)
    out = _json_result(_python(EVERY_CORE, XLA_FLAGS=flags))
    assert out == {"asked": cores if cores > 1 else 0, "count": cores, "again": 0}
    chosen = flags + " --xla_force_host_platform_device_count=3"
    assert _json_result(_python(EVERY_CORE, XLA_FLAGS=chosen)) == {
        "asked": 0, "count": 3, "again": 0,
    }  # fmt: skip


TWO_PROCESSES = """
import json, sys, jax
jax.distributed.initialize(f"127.0.0.1:{sys.argv[1]}", num_processes=2, process_id=int(sys.argv[2]))
from mbrl_jax.sweep import sweep
from test_sweep import SEEDS, tiny_train
result = sweep(tiny_train, {"alpha": [0.1, 0.5], "n": [5]}, SEEDS, static=("n",))
print(json.dumps({"count": jax.device_count(), "metrics": result.metrics.tolist()}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_give_the_one_process_result(swept):
    port = str(_free_port())
    processes = [_python(TWO_PROCESSES, port, str(i)) for i in range(2)]
    outs = [_json_result(p) for p in processes]
    expected = swept.metrics[[1, 3]].tolist()  # the n = 5 settings
    assert [o["count"] for o in outs] == [2, 2]  # one CPU device per process
    assert [o["metrics"] for o in outs] == [expected, expected]


def test_mean_steps_skips_episode_one_and_marks_unfinished_runs():
    lengths = np.array([[100, 4, 6], [100, 4, -1]])
    np.testing.assert_array_equal(mean_steps(lengths), [5.0, np.nan])


def tiny_dqn_group(runs: int) -> dict:
    """Dyna-DQN's plain-DQN group (n = 0) at toy size through :func:`vmap_runs`: its
    greedy returns and Q-values, and over how many devices its final state lies."""
    from dataclasses import replace

    from experiments import dyna_dqn
    from mbrl_jax.envs import make

    config = replace(dyna_dqn.Config(), num_steps=400, eval_every=200, learning_starts=100)
    env, params = make("CartPole-v1")
    _, keys = sweep_module.seed_keys(0, runs)
    evaluation, state, _ = dyna_dqn.run_group(env, params, 0, dyna_dqn.task_config(config), keys)
    return {
        "returns": evaluation.episode_return.tolist(),
        "q": evaluation.q_value.tolist(),
        "devices": len(state.params.sharding.device_set),
    }


TWO_DEVICES_DQN = """
import json
from test_sweep import tiny_dqn_group
print(json.dumps({"even": tiny_dqn_group(4), "odd": tiny_dqn_group(3)}))
"""


@pytest.mark.slow
def test_vmap_runs_on_two_devices_gives_the_one_device_runs():
    """A Python loop of jitted chunks (dyna-dqn's DQN) with its 4 runs split over two
    CPU devices computes each run bit for bit as one device does; 3 runs, which do not
    divide, stay on one device."""
    flags = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f)
    flags += " --xla_force_host_platform_device_count=2"
    out = _json_result(_python(TWO_DEVICES_DQN, XLA_FLAGS=flags))
    even, odd = tiny_dqn_group(4), tiny_dqn_group(3)
    assert (out["even"]["devices"], out["odd"]["devices"], even["devices"]) == (2, 1, 1)
    for split, alone in ((out["even"], even), (out["odd"], odd)):
        assert split["returns"] == alone["returns"] and split["q"] == alone["q"]
    assert len(set(map(tuple, even["returns"]))) > 1  # the runs differ from each other
