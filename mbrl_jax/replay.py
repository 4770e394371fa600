"""A functional replay buffer: a fixed-capacity ring of transitions, inside jit and vmap.

The buffer is a pytree of arrays with a leading capacity axis plus two counters,
so it can live in any agent's or model's state and be vmapped over seeds.
Adding writes at ``next`` and wraps around, overwriting the oldest entries, so
item j (counting valid items from 0) lives in slot ``j mod capacity`` and the
written slots are always ``0 .. size - 1``; sampling draws uniformly among them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from mbrl_jax.types import PRNGKey
from mbrl_jax.validation import check_count


class ReplayBuffer(NamedTuple):
    data: Any  # pytree (a Transition, say) of arrays with leading axis `capacity`
    size: jax.Array  # () int32, slots written so far (at most capacity)
    next: jax.Array  # () int32, the slot the next item goes to


def buffer_init(example: Any, capacity: int) -> ReplayBuffer:
    """An empty buffer for items shaped like ``example`` (one unbatched item)."""
    capacity = check_count("capacity", capacity, minimum=1)
    data = jax.tree.map(
        lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example
    )
    zero = jnp.zeros((), jnp.int32)
    return ReplayBuffer(data, zero, zero)


def buffer_capacity(buffer: ReplayBuffer) -> int:
    return jax.tree.leaves(buffer.data)[0].shape[0]


def _check_items(buffer: ReplayBuffer, items: Any, batch: tuple[int, ...]) -> None:
    """Raise ValueError unless ``items`` has the buffer's structure and item shapes
    (after the leading ``batch`` axes)."""
    if jax.tree.structure(items) != jax.tree.structure(buffer.data):
        raise ValueError(
            f"the item's structure {jax.tree.structure(items)} does not match the "
            f"buffer's {jax.tree.structure(buffer.data)}"
        )
    for slot, item in zip(jax.tree.leaves(buffer.data), jax.tree.leaves(items), strict=True):
        if jnp.shape(item) != (*batch, *slot.shape[1:]):
            raise ValueError(
                f"an item leaf has shape {jnp.shape(item)}, the buffer expects "
                f"{(*batch, *slot.shape[1:])}"
            )


def buffer_add(buffer: ReplayBuffer, item: Any, valid: Any = True) -> ReplayBuffer:
    """The buffer with ``item`` (one unbatched item) written at ``next``, the oldest
    item overwritten once full. With ``valid`` False nothing is written (an
    episode's masked steps after its end)."""
    _check_items(buffer, item, ())
    capacity = buffer_capacity(buffer)
    valid = jnp.asarray(valid, bool)
    # Writing out of bounds with mode="drop" is a no-op: that is how an invalid item is skipped.
    index = jnp.where(valid, buffer.next, capacity)
    data = jax.tree.map(lambda d, x: d.at[index].set(x, mode="drop"), buffer.data, item)
    step = valid.astype(jnp.int32)
    return ReplayBuffer(
        data, jnp.minimum(buffer.size + step, capacity), (buffer.next + step) % capacity
    )


def buffer_add_batch(buffer: ReplayBuffer, items: Any, valid: Any = None) -> ReplayBuffer:
    """The buffer with a batch of items (leading axis B) written in order, as B calls
    of :func:`buffer_add` would, in one scatter. ``valid`` (B,) bool masks items out
    (all valid when None).

    The k-th valid item goes to slot ``(next + k) mod capacity``; when more than
    ``capacity`` items are valid only the last ``capacity`` are written, so no slot
    is written twice.
    """
    batch = jax.tree.leaves(items)[0].shape[0]
    _check_items(buffer, items, (batch,))
    capacity = buffer_capacity(buffer)
    valid = jnp.ones((batch,), bool) if valid is None else jnp.asarray(valid, bool)
    chex.assert_shape(valid, (batch,))
    rank = jnp.cumsum(valid.astype(jnp.int32)) - 1  # position among the valid items
    count = jnp.sum(valid.astype(jnp.int32))
    keep = valid & (rank >= count - capacity)
    index = jnp.where(keep, (buffer.next + rank) % capacity, capacity)
    data = jax.tree.map(lambda d, x: d.at[index].set(x, mode="drop"), buffer.data, items)
    return ReplayBuffer(
        data, jnp.minimum(buffer.size + count, capacity), (buffer.next + count) % capacity
    )


def uniform_index(key: PRNGKey, shape: tuple[int, ...], size: Any) -> jax.Array:
    """int32 indices in [0, size) of the given ``shape``, each 32 random bits reduced
    mod ``size`` (``size`` at least 1, at most 2**31 - 1; it may be traced).

    One random-bits draw, where ``jax.random.randint`` makes three (a key split and
    two draws; on the CPU each is a loop of its own): the hot path of every replay
    sample. Each index's probability is within size / 2**32 of 1 / size (under
    1.2e-5 relative for a buffer of 50,000)."""
    if not isinstance(size, jax.core.Tracer):
        check_count("size", int(np.asarray(size)), minimum=1)
        if int(np.asarray(size)) > 2**31 - 1:
            raise ValueError(f"size must be at most 2**31 - 1, got {int(np.asarray(size))}")
    bits = jax.random.bits(key, shape, jnp.uint32)
    return (bits % jnp.asarray(size, jnp.uint32)).astype(jnp.int32)


def buffer_sample(buffer: ReplayBuffer, key: PRNGKey, batch_size: int) -> Any:
    """``batch_size`` items drawn uniformly (:func:`uniform_index`), with replacement,
    from the written slots. The buffer must not be empty (an empty one returns slot
    0's zeros)."""
    chex.assert_scalar_non_negative(batch_size)
    index = uniform_index(key, (batch_size,), jnp.maximum(buffer.size, 1))
    return jax.tree.map(lambda d: d[index], buffer.data)
