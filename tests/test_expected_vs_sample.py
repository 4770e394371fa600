"""Figure 8.7 (S&B section 8.5): expected vs sample updates against computations."""

import json

import jax
import numpy as np
import pytest

from experiments import expected_vs_sample as evs
from mbrl_jax.results import write_result
from mbrl_jax.sweep import seed_keys

CONTRACT_KEYS = {
    "experiment", "config", "seeds", "device", "versions", "timing", "x_label", "y_label", "curves",
}  # fmt: skip
BRANCHING = (2, 10, 100)
TASKS = 4000


@pytest.fixture(scope="module")
def result():
    return evs.run(evs.Config(runs=TASKS, seed=0, branching=BRANCHING, points=10), progress=False)


def test_analytic_form():
    assert evs.analytic_rms_error(2, 1) == pytest.approx(np.sqrt(0.5))
    assert evs.analytic_rms_error(10, 10) == pytest.approx(0.3)
    expected = [1.0, 0.99**0.5, (0.99 / 100) ** 0.5]
    assert evs.analytic_rms_error(100, [0, 1, 100]) == pytest.approx(expected)
    assert evs.analytic_rms_error(1, 5) == 0.0  # one successor: one sample is exact


def test_sample_error_follows_sqrt_b_minus_1_over_b_t(result):
    """RMS error after t sample updates (alpha = 1/t) is sqrt((b - 1) / (b t)) within 10%."""
    for b in BRANCHING:
        label = f"sample, b={b}"
        c = result["curves"][label]
        t = np.rint(np.asarray(c["x"]) * b).astype(int)
        assert t[0] == 0 and t[-1] == 2 * b and {1, 2, b} <= set(t)
        analytic = evs.analytic_rms_error(b, t)
        np.testing.assert_allclose(result["analytic"][label], analytic)
        np.testing.assert_allclose(c["y"], analytic, rtol=0.1)
        # and within 5 standard errors at t = 1, b, 2b
        for ti in (1, b, 2 * b):
            i = list(t).index(ti)
            assert abs(c["y"][i] - analytic[i]) < 5 * c["y_err"][i]


def test_expected_update_is_exact_after_b_computations_and_unchanged_before():
    b, points, runs = 10, 10, 200
    grid = evs.computation_grid(b, points)
    _, keys = seed_keys(7, runs)
    sample, expected = jax.jit(jax.vmap(evs.make_task(b, grid, points)))(keys)
    sample, expected = np.asarray(sample), np.asarray(expected)
    computations = (np.arange(2 * points + 1) * b) // points
    before, after = computations < b, computations >= b
    assert before.sum() == points and after.sum() == points + 1
    # before completion: the initial estimate, error Q_0 - q (sample curve at t = 0)
    np.testing.assert_array_equal(expected[:, before], np.repeat(sample[:, :1], points, axis=1))
    assert np.sqrt(np.mean(sample[:, 0] ** 2)) == pytest.approx(1.0, rel=0.15)
    assert np.all(expected[:, after] == 0.0)


def test_expected_curve_is_one_then_zero_for_every_b(result):
    c = result["curves"]["expected"]
    x, y = np.asarray(c["x"]), np.asarray(c["y"])
    initial = [result["curves"][f"sample, b={b}"]["y"][0] for b in BRANCHING]
    np.testing.assert_allclose(y[x < 1], np.mean(initial), rtol=1e-5)
    np.testing.assert_allclose(initial, 1.0, rtol=0.05)
    assert np.all(y[x >= 1] == 0.0) and np.all(np.asarray(c["y_err"])[x >= 1] == 0.0)
    assert result["expected_max_difference_between_b"] < 1e-5


def test_result_follows_the_contract(result, tmp_path):
    assert CONTRACT_KEYS <= set(result)
    assert result["experiment"] == evs.NAME
    assert result["seeds"] == list(range(TASKS))
    assert result["config"]["branching"] == list(BRANCHING) and result["config"]["runs"] == TASKS
    assert set(result["curves"]) == {"sample, b=2", "sample, b=10", "sample, b=100", "expected"}
    for c in result["curves"].values():
        assert set(c) == {"x", "y", "y_err"}
        assert len(c["x"]) == len(c["y"]) == len(c["y_err"]) > 2
        assert c["x"][0] == 0.0 and c["x"][-1] == 2.0 and np.all(np.diff(c["x"]) > 0)
        assert all(e >= 0 for e in c["y_err"])
    assert result["timing"]["compile_s"] > 0 and result["timing"]["run_s"] > 0
    paths = write_result(json.loads(json.dumps(result)), tmp_path)
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    assert "sample, b=10" in evs.summary(result) and "compile" in evs.summary(result)


@pytest.mark.slow
def test_same_seed_same_result():
    config = evs.Config(runs=20, seed=3, branching=(10,), points=5)
    first, second = evs.run(config, progress=False), evs.run(config, progress=False)
    assert first["curves"] == second["curves"] and first["seeds"] == list(range(3, 23))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"branching": (10, 0)}, r"branching factor b must be an integer >= 1, got 0"),
        ({"branching": (-3,)}, r"branching factor b must be an integer >= 1, got -3"),
        ({"branching": (2, 2)}, r"distinct branching factors"),
        ({"runs": 0}, r"runs must be an integer >= 1, got 0"),
        ({"runs": -5}, r"runs must be an integer >= 1, got -5"),
        ({"points": 0}, r"points must be an integer >= 1, got 0"),
        ({"initial_error": -1.0}, r"initial_error must be in"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        evs.run(evs.Config(**kwargs), progress=False)


def test_a_non_integer_branching_factor_is_a_type_error():
    with pytest.raises(TypeError, match=r"setting branching must be .* got \(2.5,\)"):
        evs.Config(branching=(2.5,))


def test_bad_task_input_is_a_clear_error():
    with pytest.raises(ValueError, match=r"branching must be an integer >= 1, got 0"):
        evs.make_task(0, np.arange(3), 1)
    with pytest.raises(ValueError, match=r"grid must start at 0"):
        evs.make_task(2, np.array([1, 2]), 1)
