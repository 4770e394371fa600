"""gymnax imported after mbrl_jax leaves its render-only plotting imports for later
(``mbrl_jax/_gymnax_import.py``), without changing what anyone gets from them."""

import os
import subprocess
import sys

# A fresh process: this one imported gymnax long ago.
PROBE = """
import sys
import jax
import mbrl_jax
assert "gymnax" not in sys.modules, "import mbrl_jax must not import gymnax"
from mbrl_jax.sweep import use_every_core
use_every_core()  # still possible: gymnax starts JAX's backends at import
import gymnax
from gymnax.environments.misc import pong
print(len(jax.devices()))
print("seaborn" in sys.modules, "matplotlib.pyplot" in sys.modules)
palette = pong.sns.color_palette  # the first use imports the real seaborn
import seaborn
import matplotlib.pyplot
print(palette is seaborn.color_palette, type(seaborn).__name__, seaborn.__file__ is not None)
print(type(matplotlib.pyplot).__name__, hasattr(matplotlib.pyplot, "subplots"))
env, params = gymnax.make("CartPole-v1")
print(type(env).__name__)
"""


def test_gymnax_after_mbrl_jax_defers_seaborn_and_pyplot_until_first_use():
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_NUM_CPU_DEVICES", "XLA_FLAGS")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, env=env
    ).stdout.split("\n")
    cores = len(os.sched_getaffinity(0))
    devices, deferred, seaborn, pyplot, env_name = out[:5]
    assert devices == str(cores)
    assert deferred == "False False"
    assert seaborn == "True module True"
    assert pyplot == "module True"
    assert env_name == "CartPole"
