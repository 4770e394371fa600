"""Typed experiment configs: fields, kinds, overrides from text, type checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax
import pytest

import experiments
from mbrl_jax.config import (
    ExperimentConfig,
    describe,
    format_value,
    override,
    parse_value,
    replace,
    setting,
    settings,
    to_dict,
    traced_names,
)


@dataclass(frozen=True)
class Planner(ExperimentConfig):
    horizon: int = setting(30, "planning horizon")
    smoothing: float = setting(0.1, "CEM smoothing", traced=True)


@dataclass(frozen=True)
class Example(ExperimentConfig):
    runs: int = setting(4, "runs")
    seed: int = setting(0, "first seed")
    alpha: float = setting(0.1, "step size", traced=True)
    planning_steps: tuple[int, ...] = setting((0, 5), "n per curve")
    resolutions: tuple[tuple[int, int], ...] = setting(((1, 1),), "maze resolutions")
    env: Literal["CartPole-v1", "Acrobot-v1"] = setting("CartPole-v1", "task")
    chunk: int | None = setting(None, "runs per call")
    greedy: bool = setting(False, "act greedily")
    planner: Planner = setting(Planner(), "the planner")


def test_settings_flatten_nested_fields_with_their_kind():
    infos = settings(Example())
    assert list(infos)[-2:] == ["planner.horizon", "planner.smoothing"]
    assert traced_names(Example()) == ["alpha", "planner.smoothing"]
    assert infos["planner.horizon"].kind == "static" and infos["alpha"].kind == "traced"
    assert infos["alpha"].doc == "step size"


@pytest.mark.parametrize(
    "assignment, field, expected",
    [
        ("alpha=0.2", "alpha", 0.2),
        ("alpha=1", "alpha", 1.0),
        ("planning_steps=10", "planning_steps", (10,)),
        ("planning_steps=0,5,50", "planning_steps", (0, 5, 50)),
        ("resolutions=1,2;3,4", "resolutions", ((1, 2), (3, 4))),
        ("env=Acrobot-v1", "env", "Acrobot-v1"),
        ("chunk=none", "chunk", None),
        ("chunk=8", "chunk", 8),
        ("greedy=true", "greedy", True),
        ("planner.horizon=5", "planner", Planner(horizon=5)),
    ],
)
def test_override_parses_text_as_the_field_type(assignment, field, expected):
    assert getattr(override(Example(), [assignment]), field) == expected


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("alpha=x", "alpha must be a number, got 'x'"),
        ("runs=1.5", "runs must be an integer, got '1.5'"),
        ("greedy=maybe", "greedy must be true or false, got 'maybe'"),
        ("env=Pong", "env must be one of CartPole-v1, Acrobot-v1, got 'Pong'"),
        ("planning_steps=", "planning_steps must be a comma-separated list, got ''"),
        ("resolutions=1,2,3", "resolutions must be 2 comma-separated values, got '1,2,3'"),
        ("alpha", "a setting must be written name=value, got 'alpha'"),
        ("runs=0", "runs must be an integer >= 1, got 0"),
        ("seed=-1", "seeds must be in [0, 2**32 - 1]"),
        ("seed=4294967295", "seed=4294967295 with runs=4 gives seeds 4294967295..4294967298"),
    ],
)
def test_override_rejects_bad_text_naming_the_field(assignment, message):
    with pytest.raises(ValueError) as error:
        override(Example(), [assignment])
    assert message in str(error.value)


def test_an_unknown_field_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown setting 'planner.depth'") as error:
        override(Example(), ["planner.depth=3"])
    assert "planner.horizon, planner.smoothing" in str(error.value)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"alpha": "0.1"}, "setting alpha must be a number, got '0.1' (str)"),
        ({"runs": True}, "setting runs must be an integer, got True (bool)"),
        ({"planning_steps": [0, 5]}, "setting planning_steps must be tuple[int, ...]"),
        ({"planner.horizon": 2.5}, "setting horizon must be an integer, got 2.5"),
        ({"resolutions": ((1, 2, 3),)}, "setting resolutions must be tuple[tuple[int, int], ...]"),
    ],
)
def test_python_values_are_type_checked(values, message):
    with pytest.raises(TypeError) as error:
        replace(Example(), values)
    assert message in str(error.value)


def test_a_traced_field_accepts_a_tracer_and_a_static_one_does_not():
    alphas = jax.vmap(lambda a: replace(Example(), {"alpha": a}).alpha)(jax.numpy.ones(3))
    assert alphas.shape == (3,)
    with pytest.raises(TypeError, match="setting runs must be an integer"):
        jax.vmap(lambda r: replace(Example(), {"runs": r}))(jax.numpy.ones(3, int))


def test_to_dict_is_json_ready_and_round_trips_through_override():
    config = override(Example(), ["planning_steps=3,4", "planner.horizon=7"])
    data = to_dict(config)
    assert data["planning_steps"] == [3, 4] and data["planner"] == {"horizon": 7, "smoothing": 0.1}
    assert data["resolutions"] == [[1, 1]]
    text = [f"{name}={format_value(info.value)}" for name, info in settings(config).items()]
    assert override(Example(), text) == config


def test_describe_lists_every_field_with_type_kind_value_and_doc():
    text = describe(Example(), "example")
    assert text.splitlines()[0] == "example"
    row = next(line for line in text.splitlines() if line.startswith("planner.smoothing"))
    assert row.split()[1:4] == ["float", "traced", "0.1"] and row.endswith("CEM smoothing")


def test_parse_value_of_a_number_rejects_words():
    with pytest.raises(ValueError, match="must be an integer"):
        parse_value("runs", int, "ten")


def test_a_mutable_default_is_refused():
    with pytest.raises(TypeError, match="immutable"):
        setting([0, 5], "n")


@pytest.mark.parametrize("name", list(experiments.EXPERIMENTS))
def test_every_experiment_has_a_documented_config_with_runs_and_seed(name):
    module = experiments.load(name)
    infos = settings(module.Config())
    assert {"runs", "seed"} <= set(infos)
    assert all(info.doc for info in infos.values()), f"{name}: a field without a doc"
    for preset in getattr(module, "PRESETS", {}).values():
        assert isinstance(preset, module.Config)
    assert callable(module.check) and callable(module.run)
