"""JAX's Threefry hash lowered unrolled on the CPU: the same random bits, fewer loops.

Every ``jax.random`` call with JAX's default keys (split, fold_in, bits, uniform, ...)
is the Threefry-2x32 hash (Salmon et al. 2011, "Parallel random numbers: as easy as
1, 2, 3", 20 rounds) of a counter under the key. JAX lowers it unrolled on GPUs and
TPUs, but on the CPU as an XLA while loop over its five blocks of four rounds, which
keeps compile times down. In a small training step (a DQN step on a 64-transition
minibatch draws several keys) each of those loops costs the CPU runtime's per-iteration
overhead, a few microseconds, for a few dozen integer operations.

:func:`use_unrolled_threefry` registers the unrolled hash (:func:`threefry2x32`) as
the CPU lowering of ``jax.extend.random.threefry2x32_p``. It changes no result: the
hash is the same function, bit for bit (``tests/test_threefry.py`` checks keys, bits,
uniforms and normals against JAX's own lowering). It changes the whole process, and
only what is lowered after the call (a function JAX has already compiled keeps its
executable). It is opt-in: nothing in the library calls it, because on some programs it
makes XLA's CPU compiler take minutes instead of seconds (SAC's ``init`` and two
``update`` calls in one jit: over 100 s, against 3 s with JAX's loop). The benchmarks
measure what it buys.
"""

import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry2x32_p
from jax.interpreters import mlir

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)  # Threefry's key-schedule constant


def _rotate_left(x: jnp.ndarray, bits: int) -> jnp.ndarray:
    return (x << np.uint32(bits)) | (x >> np.uint32(32 - bits))


def threefry2x32(key1, key2, count1, count2) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Threefry-2x32 with 20 rounds: the two uint32 words of each hashed counter.

    Key schedule ``k = (key1, key2, key1 ^ key2 ^ 0x1BD11BDA)``; the counter starts as
    ``(count1 + k0, count2 + k1)``; block ``b = 1..5`` applies four rounds ``x0 += x1;
    x1 = rotl(x1, r) ^ x0`` with the rotations ``r`` of its parity, then injects the key
    ``x0 += k[b mod 3]``, ``x1 += k[(b + 1) mod 3] + b``. The arguments broadcast."""
    ks = (key1, key2, key1 ^ key2 ^ _PARITY)
    x0, x1 = count1 + ks[0], count2 + ks[1]
    for block in range(1, 6):
        for r in _ROTATIONS[(block - 1) % 2]:
            x0 = x0 + x1
            x1 = _rotate_left(x1, r) ^ x0
        x0 = x0 + ks[block % 3]
        x1 = x1 + ks[(block + 1) % 3] + np.uint32(block)
    return x0, x1


_UNROLLED = mlir.lower_fun(threefry2x32, multiple_results=True)
_in_use = False


def use_unrolled_threefry() -> None:
    """Lower ``threefry2x32`` on the CPU as :func:`threefry2x32` unrolled, for every
    computation this process lowers from now on (see the module's docstring)."""
    global _in_use
    mlir.register_lowering(threefry2x32_p, _UNROLLED, platform="cpu")
    _in_use = True


def unrolled_threefry_in_use() -> bool:
    """Whether this process called :func:`use_unrolled_threefry` (there is no undo)."""
    return _in_use
