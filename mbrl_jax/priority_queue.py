"""A priority queue of integer items in fixed arrays, inside jit and vmap: one slot per
item ``0 .. capacity - 1``, laid out as a ``blocks x block_size`` array with the maximum
of every block kept beside it. Push is O(1) (a scatter-max into a slot and its block's
maximum); pop is O(sqrt(N)) (argmax over the block maxima, argmax inside the winning
block, then that block's maximum recomputed). ``block_size=capacity`` is the plain dense
array with one argmax over everything; ``benchmarks/prioritized_sweeping.py`` measures
both. An item pushed while queued keeps the larger of its priorities.

Prioritized sweeping's search control (:func:`mbrl_jax.search.prioritized`) queues
state-action pairs with it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from mbrl_jax.validation import check_count


class PriorityQueue(NamedTuple):
    priority: jax.Array  # (blocks, block_size) float32; -inf marks an absent item
    block_max: jax.Array  # (blocks,) float32: max of each row of ``priority``


def queue_init(capacity: int, block_size: int | None = None) -> PriorityQueue:
    """An empty queue for items ``0 .. capacity - 1`` (block size default ~sqrt(capacity))."""
    capacity = check_count("capacity", capacity, minimum=1)
    if block_size is None:
        block_size = max(1, math.isqrt(capacity - 1) + 1)
    block_size = check_count("block_size", block_size, minimum=1)
    blocks = -(-capacity // block_size)
    return PriorityQueue(
        jnp.full((blocks, block_size), -jnp.inf, jnp.float32),
        jnp.full((blocks,), -jnp.inf, jnp.float32),
    )


def queue_push(queue: PriorityQueue, items: jax.Array, priorities: jax.Array) -> PriorityQueue:
    """Insert ``items`` (int array, any shape) with ``priorities``; an item already
    queued keeps the larger priority. A priority of -inf inserts nothing, so a
    masked push is ``jnp.where(mask, priorities, -jnp.inf)``."""
    block_size = queue.priority.shape[1]
    items = jnp.ravel(items)
    priorities = jnp.ravel(jnp.asarray(priorities, jnp.float32))
    rows, cols = items // block_size, items % block_size
    return PriorityQueue(
        queue.priority.at[rows, cols].max(priorities),
        queue.block_max.at[rows].max(priorities),
    )


def queue_is_empty(queue: PriorityQueue) -> jax.Array:
    return jnp.max(queue.block_max) == -jnp.inf


def queue_pop(queue: PriorityQueue) -> tuple[jax.Array, jax.Array, PriorityQueue]:
    """``(item, priority, queue)``: the highest-priority item, removed (ties go to the
    lowest index). On an empty queue it returns priority -inf and the queue unchanged;
    check :func:`queue_is_empty` first."""
    block_size = queue.priority.shape[1]
    row = jnp.argmax(queue.block_max)
    col = jnp.argmax(queue.priority[row])
    top = queue.priority[row, col]
    new_row = queue.priority[row].at[col].set(-jnp.inf)
    queue = PriorityQueue(
        queue.priority.at[row].set(new_row), queue.block_max.at[row].set(jnp.max(new_row))
    )
    return (row * block_size + col).astype(jnp.int32), top, queue
