"""The decision-time-maze experiment: every variant spends the same budget of model
calls, and the claims its closing note makes hold on a few seeds."""

from __future__ import annotations

import pytest

from experiments import decision_time_maze as dtm
from mbrl_jax.envs import dyna_maze


def spends_the_budget(variants: dict) -> None:
    env = dyna_maze()
    for label, variant in variants.items():
        _, split = dtm.build_agent(variant, env, alpha=1.0, epsilon=0.1, gamma=0.95)
        assert split["search_calls"] + split["planning_steps"] == dtm.BUDGET, label


def test_the_main_variants_spend_the_budget_as_the_planner_counts_it():
    spends_the_budget(dtm.MAIN)  # heuristic search on a maze: 4 calls at depth 1, 20 at 2
    env = dyna_maze()
    depth = {label: v.settings.get("depth") for label, v in dtm.MAIN.items()}
    assert depth == {"Dyna-Q": None, "search alone": 2, "search + Q": 2, "blend": 1}
    calls = [
        dtm.search_calls(dtm._planner(dtm.MAIN[k], env, 0.9), env)
        for k in ("search alone", "blend")
    ]
    assert calls == [20, 4]


def test_the_configs_name_the_variants_by_id_and_check_them():
    assert set(dtm.IDS.values()) == set(dtm.VARIANTS) and len(dtm.IDS) == len(dtm.VARIANTS)
    assert [dtm.IDS[i] for i in dtm.Config().variants] == list(dtm.MAIN)
    assert [dtm.IDS[i] for i in dtm.PRESETS["variants"].variants] == list(dtm.VARIANTS)
    assert dtm.PRESETS["cpu"] == dtm.Config()
    split = {"Dyna-Q": {"search_calls": 0, "planning_steps": 20}}
    assert dtm.check(dtm.Config(variants=("dyna-q",))) == split
    with pytest.raises(ValueError, match="variants must name each"):
        dtm.check(dtm.Config(variants=("blend", "blend")))
    with pytest.raises(ValueError, match="tasks must name each"):
        dtm.check(dtm.Config(tasks=()))
    with pytest.raises(TypeError, match="setting variants"):
        dtm.Config(variants=("blend, depth 2",))  # a label, not an id
    with pytest.raises(ValueError, match="epsilon"):
        dtm.check(dtm.Config(epsilon=1.5))


@pytest.mark.slow
def test_the_blend_beats_each_half_where_the_note_says_it_does():
    spends_the_budget(dtm.OTHERS)
    result = dtm.run(dtm.Config(runs=8, seed=3), progress=False)
    table = result["table"]
    dyna = table["dyna maze"]["rows"]
    for half in ("search alone", "search + Q"):
        d = dyna[half]["blend minus this"]
        assert d["mean"] + 3 * d["se"] < 0, (half, d)  # fewer steps than search alone
    blocking = table["blocking maze"]["rows"]["Dyna-Q"]["blend minus this"]
    assert blocking["mean"] - 3 * blocking["se"] > 0, blocking  # more reward after the block
    assert set(result["budget_split"]) == set(dtm.MAIN)
    assert result["config"]["variants"] == list(dtm.Config().variants)
    assert {c.split(": ")[0] for c in result["curves"]} == set(dtm.SCORES)
