"""The functional replay buffer: ring order, masking, sampling only written slots."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mbrl_jax.replay import (
    buffer_add,
    buffer_add_batch,
    buffer_capacity,
    buffer_init,
    buffer_sample,
)

MAX_ITEMS = 24  # every example writes a fixed-length stream, masked: one compile per capacity
CAPACITIES = (1, 3, 8)
EXAMPLE = {"id": jnp.zeros((), jnp.int32), "pair": jnp.zeros((2,), jnp.float32)}


def items(count: int) -> dict:
    ids = jnp.arange(count, dtype=jnp.int32)
    return {"id": ids, "pair": jnp.stack([ids, -ids], axis=1).astype(jnp.float32)}


@functools.partial(jax.jit, static_argnames="capacity")
def fill_one_by_one(valid: jax.Array, key: jax.Array, capacity: int):
    """The buffer after buffer_add of items 0 .. MAX_ITEMS - 1 with their valid flags,
    and 64 samples from it."""

    def body(buffer, inputs):
        item, ok = inputs
        return buffer_add(buffer, item, ok), None

    buffer = jax.lax.scan(body, buffer_init(EXAMPLE, capacity), (items(MAX_ITEMS), valid))[0]
    return buffer, buffer_sample(buffer, key, 64)


@functools.partial(jax.jit, static_argnames="capacity")
def fill_in_two_batches(valid: jax.Array, capacity: int):
    """The same stream written by two buffer_add_batch calls."""
    stream, half = items(MAX_ITEMS), MAX_ITEMS // 2
    buffer = buffer_init(EXAMPLE, capacity)
    buffer = buffer_add_batch(buffer, jax.tree.map(lambda x: x[:half], stream), valid[:half])
    return buffer_add_batch(buffer, jax.tree.map(lambda x: x[half:], stream), valid[half:])


@settings(max_examples=30, deadline=None)
@given(
    capacity=st.sampled_from(CAPACITIES),
    valid=st.lists(st.booleans(), min_size=MAX_ITEMS, max_size=MAX_ITEMS),
    seed=st.integers(0, 2**31 - 1),
)
def test_ring_keeps_the_last_items_and_samples_only_written_ones(capacity, valid, seed):
    valid = np.array(valid)
    written = np.flatnonzero(valid)  # ids of the items actually added, in order
    k = len(written)
    buffer, sample = fill_one_by_one(jnp.asarray(valid), jax.random.key(seed), capacity)
    size = min(k, capacity)
    assert int(buffer.size) == size
    assert int(buffer.next) == k % capacity
    # The j-th added item lives in slot j mod capacity; the slots hold the last `size` items.
    kept = written[k - size :]
    slots = np.arange(k - size, k) % capacity
    np.testing.assert_array_equal(np.asarray(buffer.data["id"])[slots], kept)
    np.testing.assert_array_equal(np.asarray(buffer.data["pair"])[slots, 1], -kept)
    if k:  # samples come only from the kept items, pairs intact
        assert set(np.asarray(sample["id"]).tolist()) <= set(kept.tolist())
        np.testing.assert_array_equal(sample["pair"][:, 0], sample["id"])
    # A batched write of the same stream gives the same buffer.
    batched = fill_in_two_batches(jnp.asarray(valid), capacity)
    for a, b in zip(jax.tree.leaves(buffer), jax.tree.leaves(batched), strict=True):
        np.testing.assert_array_equal(a, b)


def test_invalid_item_writes_nothing():
    buffer = buffer_add(buffer_init(EXAMPLE, 4), jax.tree.map(lambda x: x[5], items(6)))
    masked = buffer_add(buffer, jax.tree.map(lambda x: x[3], items(6)), valid=False)
    for a, b in zip(jax.tree.leaves(buffer), jax.tree.leaves(masked), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(masked.size) == 1 and int(masked.next) == 1


def test_sampling_is_uniform_over_written_slots():
    buffer = buffer_add_batch(buffer_init(EXAMPLE, 10), items(4))
    sample = jax.jit(buffer_sample, static_argnums=2)(buffer, jax.random.key(0), 4000)
    ids = np.asarray(sample["id"])
    counts = np.bincount(ids, minlength=10)
    assert counts[4:].sum() == 0
    np.testing.assert_allclose(counts[:4] / 4000, 0.25, atol=0.03)


def test_capacity_and_item_shapes_are_checked():
    with pytest.raises(ValueError, match="capacity"):
        buffer_init(EXAMPLE, 0)
    buffer = buffer_init(EXAMPLE, 3)
    assert buffer_capacity(buffer) == 3
    with pytest.raises(ValueError, match="shape"):
        buffer_add(buffer, {"id": jnp.zeros((), jnp.int32), "pair": jnp.zeros((3,))})
    with pytest.raises(ValueError, match="structure"):
        buffer_add(buffer, {"id": jnp.zeros((), jnp.int32)})
    with pytest.raises(ValueError, match="shape"):
        buffer_add_batch(buffer, {"id": jnp.zeros((2,), jnp.int32), "pair": jnp.zeros((3, 2))})


def test_uniform_index_covers_the_range_evenly_and_rejects_an_empty_one():
    from mbrl_jax.replay import uniform_index

    draws = np.asarray(uniform_index(jax.random.key(0), (70_000,), 7))
    counts = np.bincount(draws, minlength=7)
    assert draws.min() >= 0 and draws.max() == 6 and len(counts) == 7
    # each count ~ Binomial(70000, 1/7): mean 10000, sd about 93
    assert np.abs(counts - 10_000).max() < 500, counts
    with pytest.raises(ValueError, match="size must be an integer >= 1, got 0"):
        uniform_index(jax.random.key(0), (3,), 0)
