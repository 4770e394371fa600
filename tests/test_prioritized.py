"""Prioritized sweeping: the priority queue, predecessor lists, the sweep, Example 8.4."""

from __future__ import annotations

import heapq
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments import prioritized_sweeping as example_8_4
from mbrl_jax import Transition, dyna
from mbrl_jax.agents import prioritized_sweeping
from mbrl_jax.envs import dyna_maze
from mbrl_jax.learners import q_learning
from mbrl_jax.models import tabular_sample_model
from mbrl_jax.priority_queue import queue_init, queue_is_empty, queue_pop, queue_push
from mbrl_jax.search import check_predecessor_overflow, prioritized
from tests.conftest import seeds
from tests.test_tabular import grid_distances_to_goal

KEY = jax.random.key(0)
CAPACITY = 37  # not a multiple of the default block size (7): a ragged last block
OPS = 48


def run_queue_ops(kinds, items, priorities, block_size):
    """Apply push (kind 0) / pop (kind 1) operations in a scan; returns what each pop
    gave: (item, priority), item -1 when the queue was empty."""

    def apply(queue, op):
        kind, item, priority = op

        def push(q):
            return queue_push(q, item, priority), (jnp.int32(-2), jnp.float32(0))

        def pop(q):
            empty = queue_is_empty(q)
            popped, top, q = queue_pop(q)
            return q, (jnp.where(empty, -1, popped), top)

        return jax.lax.cond(kind == 0, push, pop, queue)

    return jax.lax.scan(apply, queue_init(CAPACITY, block_size), (kinds, items, priorities))[1]


op_lists = st.lists(
    st.tuples(
        st.integers(0, 1),
        st.integers(0, CAPACITY - 1),
        st.floats(0.0, 100.0, allow_nan=False, allow_subnormal=False, width=32),
    ),
    min_size=OPS,
    max_size=OPS,
)
queue_runs = {
    b: jax.jit(jax.vmap(lambda k, i, p, b=b: run_queue_ops(k, i, p, b))) for b in (None, 1, 37)
}


@pytest.mark.slow  # 20 s (a compile per example); make test had to stay under 10 minutes
@settings(max_examples=10, deadline=None)
@given(st.lists(op_lists, min_size=4, max_size=4), st.sampled_from([None, 1, 37]))
def test_queue_pops_in_priority_order_and_never_loses_an_item(batch, block_size):
    """jit + vmap over 4 operation sequences, checked against Python's heapq (lazy
    deletion; a re-pushed item keeps its larger priority): every pop gives the
    highest priority queued, the item popped held it, an empty queue says so."""
    kinds, items, priorities = (
        np.array([[op[j] for op in ops] for ops in batch]) for j in range(3)
    )
    priorities = priorities.astype(np.float32)
    popped_items, popped_priorities = jax.device_get(
        queue_runs[block_size](kinds, items, priorities)
    )
    for b in range(len(batch)):
        heap, current, order = [], {}, itertools.count()
        for t, (kind, item, priority) in enumerate(
            zip(kinds[b], items[b], priorities[b], strict=True)
        ):
            if kind == 0:
                current[int(item)] = max(current.get(int(item), -np.inf), float(priority))
                heapq.heappush(heap, (-current[int(item)], next(order), int(item)))
                continue
            while heap and current.get(heap[0][2]) != -heap[0][0]:
                heapq.heappop(heap)  # a stale entry
            if not heap:
                assert popped_items[b, t] == -1
                continue
            top = -heap[0][0]
            assert popped_priorities[b, t] == top
            assert current.pop(int(popped_items[b, t])) == top  # that item held it (ties)
        left = sorted(current.values(), reverse=True)
        drained = drain(
            queue_push_all(kinds[b], items[b], priorities[b], block_size, popped_items[b])
        )
        assert drained == pytest.approx(left)  # and nothing was lost


def queue_push_all(kinds, items, priorities, block_size, popped):
    """Replay the sequence eagerly, popping exactly what the jitted run popped."""
    queue = queue_init(CAPACITY, block_size)
    for kind, item, priority, got in zip(kinds, items, priorities, popped, strict=True):
        if kind == 0:
            queue = queue_push(queue, item, priority)
        elif got >= 0:
            _, _, queue = queue_pop(queue)
    return queue


def drain(queue) -> list[float]:
    out = []
    while not bool(queue_is_empty(queue)):
        _, priority, queue = queue_pop(queue)
        out.append(float(priority))
    return out


def tr(s, a, r, s2, done=False) -> Transition:
    return Transition(jnp.int32(s), jnp.int32(a), jnp.float32(r), jnp.int32(s2), jnp.bool_(done))


def chain_agent(num_states=5, planning_steps=10, max_predecessors=4):
    model = tabular_sample_model(num_states, 2)
    learner = q_learning(num_states, 2, alpha=1.0, gamma=0.9)
    search = prioritized(
        num_states, 2, model, theta=0.0, gamma=0.9, max_predecessors=max_predecessors
    )
    return dyna(learner, model, search, planning_steps=planning_steps, direct_rl=False)


def test_predecessor_lists_are_exact_and_stale_entries_are_reused():
    """A hand-built deterministic model: 0 -a0-> 2, 1 -a0-> 2, 1 -a1-> 2, 2 -a0-> 3."""
    agent = chain_agent(planning_steps=0)
    state = agent.init(KEY)
    for t in [tr(0, 0, 0, 2), tr(1, 0, 0, 2), tr(1, 1, 0, 2), tr(2, 0, 0, 3), tr(1, 0, 0, 2)]:
        state = agent.update(state, t, KEY)
    lists = np.asarray(state.search.predecessors.pairs)
    assert sorted(p for p in lists[2] if p >= 0) == [0 * 2 + 0, 1 * 2 + 0, 1 * 2 + 1]
    assert sorted(p for p in lists[3] if p >= 0) == [2 * 2 + 0]
    assert all(p < 0 for s in (0, 1, 4) for p in lists[s])
    # (1, 0) now leads to 4: its entry for 2 goes stale, and 4 lists it
    state = agent.update(state, tr(1, 0, 0, 4), KEY)
    # (2, 1) -> 2: it takes the stale slot instead of a fresh one
    state = agent.update(state, tr(2, 1, 0, 2), KEY)
    lists = np.asarray(state.search.predecessors.pairs)
    assert sorted(p for p in lists[2] if p >= 0) == [0, 3, 5]
    assert sorted(p for p in lists[4] if p >= 0) == [2]
    assert int(state.search.predecessors.overflow) == 0


def test_predecessor_overflow_is_counted_and_reported():
    agent = chain_agent(planning_steps=0, max_predecessors=1)
    state = agent.init(KEY)
    for t in [tr(0, 0, 0, 2), tr(1, 0, 0, 2)]:
        state = agent.update(state, t, KEY)
    assert int(state.search.predecessors.overflow) == 1
    with pytest.raises(ValueError, match="max_predecessors=1"):
        check_predecessor_overflow(state.search)


def test_sweep_propagates_the_goal_value_backwards_and_stops_when_the_queue_is_empty():
    """Chain 0 -> 1 -> 2 -> 3 (goal, reward 1, terminal) via action 0. With alpha 1,
    after the reward is seen the sweep sets Q(s, 0) = gamma^(2 - s) hand-computed,
    in 3 updates, then stops: the queue is empty, the 7 other updates are not made."""
    agent = chain_agent(planning_steps=10)
    state = agent.init(KEY)
    for s in (0, 1):
        state = agent.update(state, tr(s, 0, 0.0, s + 1), KEY)
    assert int(state.updates) == 0  # zero TD errors: nothing queued, nothing planned
    state = agent.update(state, tr(2, 0, 1.0, 3, done=True), KEY)
    q = np.asarray(state.learner.q)
    np.testing.assert_allclose(q[:3, 0], [0.81, 0.9, 1.0], rtol=1e-6)
    assert int(state.updates) == 3
    assert bool(queue_is_empty(state.search.queue))


def test_prioritized_sweeping_pops_the_largest_td_error_first():
    agent = chain_agent(planning_steps=1)
    state = agent.init(KEY)
    state = agent.update(state, tr(0, 0, 0.5, 1, done=True), KEY)  # P = 0.5, updated at once
    state = agent.update(state, tr(3, 1, 0.0, 4), jax.random.key(1))  # P = 0: not queued
    q = np.asarray(state.learner.q)
    assert q[0, 0] == pytest.approx(0.5) and int(state.updates) == 1
    agent2 = chain_agent(planning_steps=0)
    s2 = agent2.init(KEY)
    s2 = agent2.update(s2, tr(0, 0, 0.5, 1, done=True), KEY)
    s2 = agent2.update(s2, tr(2, 1, 2.0, 3, done=True), KEY)
    s2 = agent2.update(s2, tr(1, 1, -1.0, 3, done=True), KEY)
    order = []
    queue = s2.search.queue
    while not bool(queue_is_empty(queue)):
        pair, priority, queue = queue_pop(queue)
        order.append((int(pair), float(priority)))
    assert order == [(2 * 2 + 1, 2.0), (1 * 2 + 1, 1.0), (0, 0.5)]


def test_greedy_path_length_is_the_shortest_path_for_optimal_q_and_fails_for_zero_q(maze):
    params = maze.default_params
    distance = grid_distances_to_goal(maze.grids[0]).ravel()
    q = np.zeros((maze.num_states, 4), np.float32)
    for cell in maze.open_cells():  # Q(s, a) = -(distance after the move)
        for a in range(4):
            nxt = int(maze.transition(jnp.int32(cell), a, params)[0])
            q[cell, a] = -distance[nxt]
    assert int(maze.greedy_path_length(jnp.asarray(q), params, 20)) == 14
    assert int(maze.greedy_path_length(jnp.asarray(q), params, 13)) == 14  # 13 + 1: too long
    assert maze.shortest_path_length() == 14
    assert int(maze.greedy_path_length(jnp.zeros_like(q), params, 30)) == 31


@pytest.mark.slow
def test_example_8_4_prioritized_sweeping_needs_several_times_fewer_updates():
    """Two smallest sizes, 4 runs: every run finds a verified-optimal path, and
    prioritized sweeping needs at least 5x fewer updates than Dyna-Q."""
    config = example_8_4.Config(runs=4, resolutions=((1, 1), (1, 2)))
    result = example_8_4.run(config, progress=False)
    assert result["curves"]["Dyna-Q"]["x"] == [47.0, 94.0]
    assert result["runs_not_found"] == {"Dyna-Q": [0, 0], "prioritized sweeping": [0, 0]}
    assert all(r >= 5 for r in result["ratio_dyna_q_to_prioritized"])
    # Dyna-Q counts 1 + n = 6 updates per real step, so at least the 14 steps of a path
    assert all(y >= 6 * 14 for y in result["curves"]["Dyna-Q"]["y"])


def test_prioritized_sweeping_run_is_the_same_alone_and_among_others():
    env = dyna_maze()
    agent = prioritized_sweeping(env.num_states, 4, planning_steps=5, alpha=1.0)
    search = example_8_4.updates_until_optimal(env, agent, max_steps=3000)
    keys = seeds(3)
    batch = jax.jit(lambda k: jax.lax.map(search, k))(keys)
    alone = jax.jit(search)(keys[1])
    assert bool(batch.found.all())
    assert int(alone.updates) == int(batch.updates[1]) > 0
    assert int(alone.steps) == int(batch.steps[1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"theta": -0.1}, r"theta must be in \[0.0, inf\], got -0.1"),
        ({"max_predecessors": 0}, "max_predecessors must be an integer >= 1, got 0"),
        ({"max_predecessors": 41}, "max_predecessors must be at most .* = 40, got 41"),
        ({"block_size": 41}, r"block_size must be in \[1, .* = 40\], got 41"),
    ],
)
def test_bad_prioritized_sweeping_input_is_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        prioritized(10, 4, tabular_sample_model(10, 4), **kwargs)


def test_queue_capacity_must_be_positive():
    with pytest.raises(ValueError, match="capacity must be an integer >= 1, got 0"):
        queue_init(0)


def test_example_8_4_bad_input_is_a_clear_error(maze):
    agent = prioritized_sweeping(maze.num_states, 4, planning_steps=5)
    with pytest.raises(ValueError, match="max_steps must be an integer >= 1, got 0"):
        example_8_4.updates_until_optimal(maze, agent, max_steps=0)
    with pytest.raises(ValueError, match=r"tolerance must be in \[1.0, inf\], got 0.5"):
        example_8_4.updates_until_optimal(maze, agent, max_steps=10, tolerance=0.5)
    with pytest.raises(ValueError, match="runs must be an integer >= 1, got 0"):
        example_8_4.Config(runs=0)
    with pytest.raises(ValueError, match="max_steps must be an integer >= 1, got 0"):
        example_8_4.run(example_8_4.Config(max_steps=0), progress=False)
    with pytest.raises(ValueError, match=r"tolerance must be in \[1.0, inf\], got 0.5"):
        example_8_4.check(example_8_4.Config(tolerance=0.5))
