"""The unrolled Threefry lowering (``mbrl_jax/threefry.py``) is JAX's hash bit for bit."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mbrl_jax.threefry import threefry2x32

# Random123's known-answer vectors for threefry2x32, 20 rounds: (key, counter, output).
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


@pytest.mark.parametrize("key, count, expected", KNOWN_ANSWERS)
def test_threefry2x32_gives_the_known_answers(key, count, expected):
    words = [jnp.asarray(v, jnp.uint32) for v in (*key, *count)]
    assert tuple(int(w) for w in threefry2x32(*words)) == expected


# A fresh process: draws lowered by JAX's own CPU rule, then the same draws in fresh
# functions after use_unrolled_threefry(), which must be the same bits.
PROBE = """
import jax, jax.numpy as jnp, numpy as np
from mbrl_jax.threefry import use_unrolled_threefry

def draws():
    def f(seed):
        key = jax.random.key(seed)
        keys = jax.random.split(key, 3)
        return (
            jax.random.key_data(keys),
            jax.random.key_data(jax.random.fold_in(key, 7)),
            jax.random.bits(keys[0], (5, 7)),
            jax.random.uniform(keys[1], (33,)),
            jax.random.normal(keys[2], (4, 3)),
            jax.random.randint(key, (6,), 0, 10),
            jax.vmap(lambda k: jax.random.uniform(k, (2,)))(keys),
        )
    return jax.jit(jax.vmap(f))(jnp.arange(4))

before = draws()
use_unrolled_threefry()
after = draws()
print(all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after))))
text = jax.jit(lambda k: jax.random.bits(k, (3,))).lower(jax.random.key(0)).as_text()
print("while" in text)
"""


def test_unrolled_lowering_draws_the_same_bits_without_a_loop():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["True", "False"]


def test_threefry2x32_broadcasts_a_key_over_counters_as_jax_does():
    counts = jnp.arange(10, dtype=jnp.uint32)
    k1, k2 = jnp.uint32(1), jnp.uint32(2)
    x0, x1 = threefry2x32(k1, k2, counts[:5], counts[5:])
    for i in range(5):
        y0, y1 = threefry2x32(k1, k2, counts[i], counts[5 + i])
        assert (int(x0[i]), int(x1[i])) == (int(y0), int(y1))
    keypair = jnp.array([1, 2], jnp.uint32)
    expected = jax.extend.random.threefry_2x32(keypair, counts)  # JAX's: halves of the count
    np.testing.assert_array_equal(np.concatenate([x0, x1]), expected)
