"""The decision-time-maze experiment: every variant spends the same budget of model
calls, and the claims its closing note makes hold on a few seeds."""

from __future__ import annotations

import pytest

from experiments import decision_time_maze as dtm
from mbrl_jax.envs import dyna_maze


def test_every_variant_spends_the_budget_and_the_split_is_what_the_planner_reports():
    env = dyna_maze()
    for label, variant in (dtm.MAIN | dtm.OTHERS).items():
        _, split = dtm.build_agent(variant, env, alpha=1.0, epsilon=0.1, gamma=0.95)
        assert split["search_calls"] + split["planning_steps"] == dtm.BUDGET, label
    # depth d on a deterministic model: 4 + 16 + ... calls; rollouts 4 m horizon; MCTS k
    heuristic = [dtm.MAIN[k].settings["depth"] for k in ("search alone", "blend")]
    calls = [
        dtm.search_calls(dtm._planner(dtm.Variant("heuristic", dict(depth=d), 0), env, 0.9), env)
        for d in heuristic
    ]
    assert calls == [20, 4]


@pytest.mark.slow
def test_the_blend_beats_each_half_where_the_note_says_it_does():
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
