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


@pytest.mark.slow
def test_the_blend_beats_each_half_where_the_note_says_it_does():
    spends_the_budget(dtm.OTHERS)
    result = dtm.run(runs=8, seed=3, progress=False)
    table = result["table"]
    dyna = table["dyna maze"]["rows"]
    for half in ("search alone", "search + Q"):
        d = dyna[half]["blend minus this"]
        assert d["mean"] + 3 * d["se"] < 0, (half, d)  # fewer steps than search alone
    blocking = table["blocking maze"]["rows"]["Dyna-Q"]["blend minus this"]
    assert blocking["mean"] - 3 * blocking["se"] > 0, blocking  # more reward after the block
    assert set(result["params"]["budget_split"]) == set(dtm.MAIN)
    assert {c.split(": ")[0] for c in result["curves"]} == set(dtm.SCORES)
