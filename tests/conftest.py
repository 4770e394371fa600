"""Shared, compiled-once pieces for the tests."""

from __future__ import annotations

import os

import jax
import pytest

from mbrl_jax.agents import dyna_q
from mbrl_jax.envs import dyna_maze
from mbrl_jax.sweep import seed_keys
from mbrl_jax.threefry import unrolled_threefry_in_use
from mbrl_jax.train import TrainConfig, make_train

# The CLI run in tests (in this process or in subprocesses, which inherit this) must not
# write to the user's compilation cache; tests that check the cache give their own folder.
os.environ["MBRL_JAX_CACHE_DIR"] = "off"


@pytest.fixture(autouse=True)
def _keep_jax_threefry_lowering():
    """Fail the test that switches its worker to the unrolled Threefry lowering: the
    tests run later in that worker would compile with it, and some programs then take
    XLA minutes (SAC's contract test hung CI's test-slow for its 900 s timeout after the
    benchmarks runner ran dqn_loop in the worker). Such a test must use a subprocess."""
    if unrolled_threefry_in_use():
        pytest.fail("an earlier test in this worker called use_unrolled_threefry()")
    yield
    if unrolled_threefry_in_use():
        pytest.fail("this test called use_unrolled_threefry() in the worker: use a subprocess")


@pytest.fixture(scope="session")
def maze():
    return dyna_maze()


@pytest.fixture(scope="session")
def figure_8_2_train(maze):
    """``train(n)``: jitted, vmapped Figure 8.2 runs for n planning steps (cached per n)."""
    cache = {}

    def get(n: int):
        if n not in cache:
            agent = dyna_q(maze.num_states, maze.num_actions, planning_steps=n)
            cache[n] = jax.jit(jax.vmap(make_train(maze, agent, TrainConfig(num_episodes=50))))
        return cache[n]

    return get


def seeds(count: int, start: int = 0) -> jax.Array:
    """The keys of runs ``start .. start + count - 1``, as every experiment makes them."""
    return seed_keys(start, count)[1]
