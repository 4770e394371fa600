"""Chunked runs and checkpoints: chunks equal one run bit for bit, a killed run
resumes to the same result, and a mismatched or damaged checkpoint is an error."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from mbrl_jax.agents import dyna_q
from mbrl_jax.checkpoint import CheckpointError, run_with_checkpoints
from mbrl_jax.envs import dyna_maze
from mbrl_jax.train import TrainConfig, make_train, make_train_chunks

TOTAL, CHUNK = 500, 100


@pytest.fixture(scope="module")
def chunks(maze):
    """``(start, run_chunk)`` of a small Dyna-Q run (shared, so compiled once)."""
    return make_train_chunks(
        maze,
        dyna_q(maze.num_states, maze.num_actions, planning_steps=5),
        TrainConfig(num_steps=TOTAL),
    )


@pytest.fixture(scope="module")
def uninterrupted(chunks):
    """The final carry and metrics of one unchunked ``TOTAL``-step run with key 0."""
    start, run_chunk = chunks
    return jax.jit(lambda key: run_chunk(start(key), TOTAL))(jax.random.key(0))


def raw(tree):
    """``tree`` with typed PRNG keys as their key data, for exact comparison."""

    def leaf(x):
        return jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x

    return jax.tree.map(leaf, tree)


def assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(raw(a)), jax.tree.leaves(raw(b)), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def run(chunks, directory, key=0, **kwargs):
    start, run_chunk = chunks
    options = dict(total_steps=TOTAL, chunk_steps=CHUNK, directory=directory, progress=False)
    return run_with_checkpoints(start, run_chunk, jax.random.key(key), **(options | kwargs))


def test_chunks_equal_one_run_bit_for_bit(maze, chunks, uninterrupted):
    start, run_chunk = chunks
    step = jax.jit(run_chunk, static_argnums=1)
    carry = jax.jit(start)(jax.random.key(0))
    pieces = []
    for num_steps in (100, 300, 100):
        carry, metrics = step(carry, num_steps)
        pieces.append(metrics)
    joined = jax.tree.map(lambda *parts: np.concatenate(parts), *pieces)
    assert_trees_equal((carry, joined), uninterrupted)
    # make_train is start + one chunk
    agent = dyna_q(maze.num_states, maze.num_actions, planning_steps=5)
    state, metrics = jax.jit(make_train(maze, agent, TrainConfig(num_steps=TOTAL)))(
        jax.random.key(0)
    )
    assert_trees_equal((state, metrics), (uninterrupted[0].agent_state, uninterrupted[1]))


def test_log_every_keeps_every_kth_value(maze, uninterrupted):
    agent = dyna_q(maze.num_states, maze.num_actions, planning_steps=5)
    config = TrainConfig(num_steps=TOTAL, log_every=50)
    state, metrics = jax.jit(make_train(maze, agent, config))(jax.random.key(0))
    assert metrics.episodes.shape == (TOTAL // 50,)
    thinned = jax.tree.map(lambda x: x[49::50], uninterrupted[1])
    assert_trees_equal((state, metrics), (uninterrupted[0].agent_state, thinned))


def test_callback_once_per_chunk_and_uneven_last_chunk(chunks, uninterrupted, tmp_path):
    calls = []
    carry, metrics = run(
        chunks,
        tmp_path,
        chunk_steps=200,
        callback=lambda step, m: calls.append((step, m.episodes.shape)),
    )
    assert calls == [(200, (200,)), (400, (200,)), (500, (100,))]
    assert_trees_equal((carry, metrics), uninterrupted)


KILLED_RUN = """
import os, sys
import jax
from mbrl_jax.agents import dyna_q
from mbrl_jax.checkpoint import run_with_checkpoints
from mbrl_jax.envs import dyna_maze
from mbrl_jax.train import TrainConfig, make_train_chunks

def die_after_two_chunks(step, metrics):
    if step == 2 * {chunk}:
        os._exit(17)  # no cleanup at all, as if killed

maze = dyna_maze()
start, run_chunk = make_train_chunks(
    maze,
    dyna_q(maze.num_states, maze.num_actions, planning_steps=5),
    TrainConfig(num_steps={total}),
)
run_with_checkpoints(
    start, run_chunk, jax.random.key(0), total_steps={total}, chunk_steps={chunk},
    directory=sys.argv[1], progress=False, callback=die_after_two_chunks,
)
"""


@pytest.mark.slow
def test_killed_run_resumes_bit_identical(chunks, uninterrupted, tmp_path):
    script = tmp_path / "killed_run.py"
    script.write_text(textwrap.dedent(KILLED_RUN.format(total=TOTAL, chunk=CHUNK)))
    directory = tmp_path / "checkpoints"
    killed = subprocess.run(
        [sys.executable, str(script), str(directory)], capture_output=True, text=True, timeout=120
    )
    assert killed.returncode == 17, killed.stderr
    assert sorted(int(p.name) for p in directory.iterdir()) == [CHUNK, 2 * CHUNK]

    steps = []
    carry, metrics = run(chunks, directory, callback=lambda step, _: steps.append(step))
    assert steps == [300, 400, 500]  # resumed after the second chunk
    assert_trees_equal((carry, metrics), uninterrupted)
    again = run(chunks, directory, callback=lambda step, _: steps.append(step))
    assert steps == [300, 400, 500]  # a finished run just loads its result
    assert_trees_equal(again, uninterrupted)


@pytest.mark.slow
def test_vmapped_run_interrupted_in_process(maze, chunks, tmp_path):
    start, run_chunk = chunks
    keys = jax.random.split(jax.random.key(1), 2)
    options = dict(total_steps=200, chunk_steps=CHUNK, directory=tmp_path, progress=False)
    batched = (jax.vmap(start), lambda c, n: jax.vmap(run_chunk, in_axes=(0, None))(c, n))

    def crash(step, metrics):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_with_checkpoints(*batched, keys, time_axis=1, callback=crash, **options)
    carry, metrics = run_with_checkpoints(*batched, keys, time_axis=1, **options)
    agent = dyna_q(maze.num_states, maze.num_actions, planning_steps=5)
    expected = jax.jit(jax.vmap(make_train(maze, agent, TrainConfig(num_steps=200))))(keys)
    assert_trees_equal((carry.agent_state, metrics), expected)


@pytest.fixture
def finished(chunks, tmp_path):
    """A directory holding the checkpoints of a finished run (steps 400 and 500)."""
    run(chunks, tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(chunk_steps=50), "chunk_steps: checkpoint has 100, this run has 50"),
        (dict(total_steps=600), "total_steps: checkpoint has 500, this run has 600"),
        (dict(key=1), "key: checkpoint has [0-9a-f]{16}, this run has [0-9a-f]{16}"),
        (dict(fingerprint={"alpha": 0.5}), "user: checkpoint has None, this run has {'alpha'"),
        ("more states", r"carry .agent_state.learner.q: checkpoint has float32\[54, 4\], this run"),
    ],
)
def test_mismatched_checkpoint_is_refused(maze, chunks, finished, change, message):
    if change == "more states":  # the same run on a finer maze (make_train checks the sizes)
        finer = dyna_maze((2, 1))
        agent = dyna_q(finer.num_states, finer.num_actions, planning_steps=5)
        chunks, change = make_train_chunks(finer, agent, TrainConfig(num_steps=TOTAL)), {}
    with pytest.raises(ValueError, match=message) as error:
        run(chunks, finished, **change)
    assert str(finished / "500") in str(error.value)


def garbage(path: Path) -> None:
    path.write_bytes(b"\x00garbage" * 8)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def wrong_checksum(path: Path) -> None:
    meta = json.loads(path.read_text())
    path.write_text(json.dumps(meta | {"checksum": "0" * 64}))


# orbax's reader leaves an asyncio callback behind when tensorstore fails on a damaged file
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    "damage, target, message",
    [
        (garbage, "meta/metadata", "cannot read the checkpoint"),
        (garbage, "state/manifest.ocdbt", "cannot read the checkpoint"),
        (truncate, "state/d/*", "cannot read the checkpoint"),
        (wrong_checksum, "meta/metadata", "do not match their checksum"),
    ],
)
def test_damaged_checkpoint_is_an_error_not_a_restart(chunks, finished, damage, target, message):
    for path in (finished / "500").glob(target):
        damage(path)
    with pytest.raises(CheckpointError, match=message) as error:
        run(chunks, finished)
    assert str(finished / "500") in str(error.value)
    assert sorted(p.name for p in finished.iterdir()) == ["400", "500"]  # nothing overwritten


def test_directory_with_other_files_is_not_silently_used(chunks, tmp_path):
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="holds no readable checkpoint but other files"):
        run(chunks, tmp_path)


def test_bad_chunk_arguments_are_rejected(maze, chunks, tmp_path):
    agent = dyna_q(maze.num_states, maze.num_actions, planning_steps=5)
    with pytest.raises(ValueError, match="num_steps must be a multiple of log_every=3"):
        TrainConfig(num_steps=100, log_every=3)
    with pytest.raises(ValueError, match="needs a run measured in time steps"):
        make_train_chunks(maze, agent, TrainConfig(num_episodes=5))
    start, run_chunk = make_train_chunks(maze, agent, TrainConfig(num_steps=90, log_every=3))
    with pytest.raises(ValueError, match="num_steps must be a multiple of log_every=3"):
        run_chunk(start(jax.random.key(0)), 10)
    with pytest.raises(ValueError, match="chunk_steps must be an integer >= 1"):
        run(chunks, tmp_path, chunk_steps=0)
    with pytest.raises(ValueError, match="fingerprint must be JSON-serializable"):
        run(chunks, tmp_path, fingerprint={"agent": agent})
