"""Timing of compiled work: compile seconds apart from run seconds, XLA's cost
analysis of what was compiled, and the device and versions the figures came from.

Experiments time each compiled group once (:func:`compile_and_run`, or
:func:`compile_timed` then :func:`run_timed`) and sum the groups' :class:`Timing`;
benchmarks take the median of several calls (:func:`compile_and_time`).
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import astuple, dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NamedTuple

import jax

from mbrl_jax.validation import check_count

_PACKAGES = ("jax", "jaxlib", "mbrl_jax", "flax", "optax", "gymnax", "chex")
_COST_KEYS = ("flops", "bytes accessed")


def device_description() -> str:
    """The device the default backend runs on, e.g. ``cpu: cpu (2 cores, x86_64)``."""
    device = jax.devices()[0]
    text = f"{device.platform}: {device.device_kind}"
    if device.platform == "cpu":
        text += f" ({os.cpu_count()} cores, {platform.machine()})"
    return text


def versions() -> dict[str, str]:
    """Python's version and those of the installed packages the figures depend on."""
    out = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            continue
    return out


@dataclass(frozen=True)
class Timing:
    """Seconds spent compiling and running compiled functions, and XLA's cost
    analysis of them; ``a + b`` sums two (e.g. the groups of one experiment).

    ``flops`` and ``bytes_accessed`` are XLA's static estimate for one call of each
    compiled function, summed over the functions, not multiplied by how often each
    was called. XLA counts the body of a loop (``lax.scan``, ``fori_loop``,
    ``while_loop``) once, not once per trip, so for loop-heavy functions (a whole
    training run in one scan) they are the cost of the code outside the loops plus
    one iteration of each loop: a measure of the work per step, not a total. NaN
    (null in result.json) when the backend gives no cost analysis.
    """

    compile_s: float = 0.0
    run_s: float = 0.0
    flops: float = 0.0
    bytes_accessed: float = 0.0

    def __add__(self, other: Timing) -> Timing:
        return Timing(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def as_dict(self) -> dict[str, float | None]:
        """result.json's ``timing``: seconds rounded to 0.1 ms, costs as floats or null."""
        return {
            "compile_s": round(self.compile_s, 4),
            "run_s": round(self.run_s, 4),
            "flops": None if math.isnan(self.flops) else self.flops,
            "bytes_accessed": None if math.isnan(self.bytes_accessed) else self.bytes_accessed,
        }


def cost_analysis(compiled: jax.stages.Compiled) -> tuple[float, float]:
    """``(flops, bytes accessed)`` from XLA's cost analysis of ``compiled`` (see
    :class:`Timing` for what they count); NaN where the backend reports none. Some
    jax versions return one dict, others a list of dicts (one per module): summed."""
    analysis = compiled.cost_analysis()
    parts = analysis if isinstance(analysis, list | tuple) else [analysis]
    parts = [p for p in parts if p]
    if not parts:
        return math.nan, math.nan
    return tuple(sum(float(p.get(key, math.nan)) for p in parts) for key in _COST_KEYS)


def compile_timed(fn: Callable, *args) -> tuple[jax.stages.Compiled, Timing]:
    """``jax.jit(fn)`` compiled for ``args``, and a :class:`Timing` holding its
    compile seconds and cost analysis (``run_s`` 0)."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    flops, bytes_accessed = cost_analysis(compiled)
    return compiled, Timing(compile_s, 0.0, flops, bytes_accessed)


def run_timed(compiled: Callable, *args) -> tuple[Any, float]:
    """``compiled(*args)`` blocked until ready, and the seconds it took."""
    start = time.perf_counter()
    outputs = jax.block_until_ready(compiled(*args))
    return outputs, time.perf_counter() - start


def compile_and_run(fn: Callable, *args) -> tuple[Any, Timing]:
    """``jax.jit(fn)(*args)`` with the seconds spent compiling and running reported
    apart, and XLA's cost analysis of the compiled function: ``(outputs, timing)``."""
    compiled, timing = compile_timed(fn, *args)
    outputs, run_s = run_timed(compiled, *args)
    return outputs, replace(timing, run_s=run_s)


class CallTimes(NamedTuple):
    """Seconds of each timed call of one compiled function, in call order."""

    seconds: tuple[float, ...]

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def min_s(self) -> float:
        return min(self.seconds)

    @property
    def max_s(self) -> float:
        return max(self.seconds)


def compile_and_time(
    fn: Callable, *args, repeats: int = 5, warmups: int = 0
) -> tuple[Any, Timing, CallTimes]:
    """A benchmark of ``jax.jit(fn)(*args)``: compile once, call it ``warmups``
    times untimed, then ``repeats`` times, each call blocked until ready.

    Returns the last call's outputs, a :class:`Timing` with the compile seconds,
    the median run seconds and XLA's cost analysis, and the seconds of every timed
    call (for their median, min and max)."""
    repeats = check_count("repeats", repeats, minimum=1)
    warmups = check_count("warmups", warmups, minimum=0)
    compiled, timing = compile_timed(fn, *args)
    for _ in range(warmups):
        jax.block_until_ready(compiled(*args))
    seconds = []
    for _ in range(repeats):
        outputs, run_s = run_timed(compiled, *args)
        seconds.append(run_s)
    times = CallTimes(tuple(seconds))
    return outputs, replace(timing, run_s=times.median_s), times
