"""mbrl_jax.timing: compile time apart from run time, XLA's cost analysis, medians
of repeated calls for the benchmarks."""

import math

import jax
import jax.numpy as jnp
import pytest

from mbrl_jax.timing import (
    CallTimes,
    Timing,
    compile_and_run,
    compile_and_time,
    cost_analysis,
    device_description,
    versions,
)


def test_compile_and_run_splits_compile_from_run_and_counts_loop_bodies_once():
    x = jnp.ones((32, 32))
    out, timing = compile_and_run(lambda a: a @ a, x)
    assert float(out[0, 0]) == 32.0
    assert timing.compile_s > 0 and timing.run_s > 0
    assert timing.flops == 2 * 32**3 and timing.bytes_accessed > 0

    def ten_matmuls(a):
        return jax.lax.scan(lambda c, _: (c @ a, None), a, None, length=10)[0]

    _, looped = compile_and_run(ten_matmuls, x)
    assert looped.flops == pytest.approx(2 * 32**3, rel=0.01)  # the body once, not 10 times


def test_timing_sums_groups_and_writes_null_for_unknown_cost():
    total = Timing(1.0, 2.0, 10.0, 20.0) + Timing(0.5, 0.25, math.nan, 4.0)
    assert total.as_dict() == {
        "compile_s": 1.5,
        "run_s": 2.25,
        "flops": None,
        "bytes_accessed": 24.0,
    }


class _Compiled:
    def __init__(self, analysis):
        self.analysis = analysis

    def cost_analysis(self):
        return self.analysis


def test_cost_analysis_reads_a_dict_or_a_list_of_dicts():
    one = {"flops": 3.0, "bytes accessed": 5.0, "utilization0{}": 1.0}
    assert cost_analysis(_Compiled(one)) == (3.0, 5.0)
    assert cost_analysis(_Compiled([one, one])) == (6.0, 10.0)
    assert all(math.isnan(v) for v in cost_analysis(_Compiled(None)))


def test_compile_and_time_reports_the_median_of_the_timed_calls():
    calls = []

    def counted(a):
        jax.debug.callback(lambda: calls.append(1))
        return a + 1.0

    out, timing, times = compile_and_time(counted, jnp.zeros(3), repeats=3, warmups=2)
    assert float(out[0]) == 1.0
    assert len(calls) == 5  # warm-ups are called but not timed
    assert len(times.seconds) == 3 and all(s > 0 for s in times.seconds)
    assert timing.run_s == times.median_s and timing.compile_s > 0
    assert times.min_s <= times.median_s <= times.max_s
    assert timing.flops > 0 or math.isnan(timing.flops)


def test_call_times_median_min_max():
    times = CallTimes((3.0, 1.0, 2.0, 10.0))
    assert (times.median_s, times.min_s, times.max_s) == (2.5, 1.0, 10.0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"repeats": 0}, "repeats must be an integer >= 1, got 0"),
    ({"warmups": -1}, "warmups must be an integer >= 0, got -1"),
])  # fmt: skip
def test_compile_and_time_rejects_bad_counts(kwargs, message):
    with pytest.raises(ValueError, match=message):
        compile_and_time(jnp.sin, jnp.zeros(2), **kwargs)


def test_device_and_versions_name_the_backend_and_packages():
    assert device_description().startswith(f"{jax.devices()[0].platform}: ")
    assert {"python", "jax", "mbrl_jax"} <= set(versions())
