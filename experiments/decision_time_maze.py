"""Background planning, decision-time planning and their blend on the book's mazes, at an
equal number of model calls per real step (S&B sections 8.8-8.9).

Every agent is Dyna-Q (alpha 1, gamma 0.95: the mazes are deterministic, so the
sample model is exact) wrapped by :func:`mbrl_jax.blend.decision_time`, acting
epsilon-greedily (0.1) on the values its decision finally rests on, and spends the same
budget of model calls per real step (default 20), split between a heuristic search
from the current state (:func:`mbrl_jax.planners.heuristic_search`; depth 1 costs 4
calls, depth 2 costs 20) and background planning updates (``planning_steps``):

- **Dyna-Q**: 20 background updates, no search (``planner=None``: plain Dyna-Q);
- **search alone**: a depth-2 search, leaves valued 0, nothing stored, no background
  planning (the Q-table still learns from real transitions);
- **search + Q**: the same search with the learned Q at its leaves, nothing stored;
- **blend**: a depth-1 search bootstrapped from Q, its backed-up values stored into
  Q(s, .) (step size 1), and 16 background updates that propagate them.

Measured: steps per episode on the Dyna maze (10 episodes; the claim is about the total
over episodes 2-10) and cumulative reward on the blocking maze (change at step 1000,
3000 steps) and the shortcut maze (change at step 3000, 6000 steps). The same seeds run
every variant, so differences between variants are paired. The ``variants`` preset adds
the other splits tried (a depth-2 blend, MCTS and rollout planners, the blend without
its store); see the module's table in ``result.json``. ``Config.variants`` and
``Config.tasks`` choose the variants (by the ids of :data:`IDS`) and the mazes run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache, partial
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mbrl_jax.agents import dyna_q
from mbrl_jax.blend import decision_time
from mbrl_jax.config import ExperimentConfig, setting
from mbrl_jax.envs import Maze, blocking_maze, dyna_maze, shortcut_maze
from mbrl_jax.models import tabular_sample_model
from mbrl_jax.planners import heuristic_search, rollout_planner, tabular_mcts
from mbrl_jax.results import curve, make_result
from mbrl_jax.sweep import run_seeds, seed_keys
from mbrl_jax.train import TrainConfig, make_train
from mbrl_jax.types import Agent, Planner

NAME = "decision-time-maze"
DESCRIPTION = "Dyna-Q, decision-time search and their blend at equal model calls, three mazes"
SCORE_LABEL = "Steps (Dyna maze, episodes 2-10) or reward after the change"

BUDGET = 20  # model calls per real step, for every variant
PLANNERS = {"heuristic": heuristic_search, "rollout": rollout_planner, "mcts": tabular_mcts}


class Variant(NamedTuple):
    """One way of spending the budget: a planner (None: no search), its settings, the
    background ``planning_steps``, whether the search bootstraps from Q and the store's
    step size."""

    planner: str | None
    settings: dict
    planning_steps: int
    bootstrap: bool = True
    store_step_size: float = 1.0


MAIN = {
    "Dyna-Q": Variant(None, {}, 20, store_step_size=0.0),
    "search alone": Variant("heuristic", dict(depth=2), 0, bootstrap=False, store_step_size=0.0),
    "search + Q": Variant("heuristic", dict(depth=2), 0, store_step_size=0.0),
    "blend": Variant("heuristic", dict(depth=1), 16),
}
OTHERS = {
    "blend, depth 2": Variant("heuristic", dict(depth=2), 0),
    "search + Q, depth 1 (no store)": Variant("heuristic", dict(depth=1), 16, store_step_size=0.0),
    "blend, MCTS 10": Variant("mcts", dict(num_simulations=10), 10),
    "blend, greedy rollouts": Variant(
        "rollout", dict(rollouts=1, horizon=2, rollout_policy="greedy"), 12
    ),
}
VARIANTS = MAIN | OTHERS
#: the variants' ids in ``Config.variants`` (command-line friendly) -> their labels
IDS = {
    "dyna-q": "Dyna-Q",
    "search-alone": "search alone",
    "search+q": "search + Q",
    "blend": "blend",
    "blend-depth-2": "blend, depth 2",
    "search+q-depth-1-no-store": "search + Q, depth 1 (no store)",
    "blend-mcts-10": "blend, MCTS 10",
    "blend-greedy-rollouts": "blend, greedy rollouts",
}
VariantId = Literal[
    "dyna-q",
    "search-alone",
    "search+q",
    "blend",
    "blend-depth-2",
    "search+q-depth-1-no-store",
    "blend-mcts-10",
    "blend-greedy-rollouts",
]
TaskName = Literal["dyna maze", "blocking maze", "shortcut maze"]


@dataclass(frozen=True)
class Config(ExperimentConfig):
    runs: int = setting(30, "independent runs; run i uses seed + i")
    seed: int = setting(0, "the first run's seed")
    variants: tuple[VariantId, ...] = setting(
        ("dyna-q", "search-alone", "search+q", "blend"), "the variants run (ids of IDS)"
    )
    tasks: tuple[TaskName, ...] = setting(
        ("dyna maze", "blocking maze", "shortcut maze"), "the mazes run"
    )
    alpha: float = setting(1.0, "step size of the Q-learning updates", traced=True)
    epsilon: float = setting(0.1, "exploration rate of the epsilon-greedy policy", traced=True)
    gamma: float = setting(0.95, "discount rate (Q-learning and the search)", traced=True)


PRESETS = {
    "cpu": Config(),
    "variants": dataclasses.replace(Config(), variants=tuple(IDS)),
}


class Task(NamedTuple):
    env: Maze
    config: TrainConfig
    change_step: int | None


def _tasks() -> dict[str, Task]:
    return {
        "dyna maze": Task(dyna_maze(), TrainConfig(num_episodes=10), None),
        "blocking maze": Task(blocking_maze(1000), TrainConfig(num_steps=3000, log_every=10), 1000),
        "shortcut maze": Task(shortcut_maze(3000), TrainConfig(num_steps=6000, log_every=10), 3000),
    }


def _planner(variant: Variant, env: Maze, gamma: float) -> Planner | None:
    if variant.planner is None:
        return None
    factory = PLANNERS[variant.planner]
    return factory(env.num_states, env.num_actions, gamma=gamma, **variant.settings)


def search_calls(planner: Planner | None, env: Maze) -> int:
    """Model calls of one decision of ``planner`` through a sample model of ``env``."""
    if planner is None:
        return 0
    model = tabular_sample_model(env.num_states, env.num_actions)
    model_fn = lambda o, a, k: model.sample(model.init(k), o, a, k)  # noqa: E731
    key = jax.random.key(0)
    _, _, info = planner.plan(planner.init(key), model_fn, jnp.int32(0), key)
    return int(info.model_calls)


def _agent(variant: Variant, env: Maze, alpha, epsilon, gamma) -> tuple[Agent, Planner | None]:
    """One variant's agent on ``env`` and its planner (the settings may be tracers)."""
    num_states, num_actions = env.num_states, env.num_actions
    base = dyna_q(
        num_states,
        num_actions,
        planning_steps=variant.planning_steps,
        alpha=alpha,
        epsilon=epsilon,
        gamma=gamma,
    )
    planner = _planner(variant, env, gamma)
    agent = decision_time(
        base,
        tabular_sample_model(num_states, num_actions),
        planner,
        epsilon=epsilon,
        store_step_size=variant.store_step_size,
        bootstrap=variant.bootstrap,
    )
    return agent, planner


def build_agent(variant: Variant, env: Maze, *, alpha: float, epsilon: float, gamma: float):
    """``(agent, budget split)`` for one variant on ``env``."""
    agent, planner = _agent(variant, env, alpha, epsilon, gamma)
    calls = search_calls(planner, env)
    split = dict(search_calls=calls, planning_steps=variant.planning_steps)
    return agent, split


def _labels(config: Config) -> list[str]:
    return [IDS[i] for i in config.variants]


def check(config: Config) -> dict[str, dict[str, int]]:
    """Raise ValueError for settings the experiment cannot run, before anything runs
    (the constructors check the numbers; every variant must spend the budget); return
    each variant's budget split."""
    for name, values in (("variants", config.variants), ("tasks", config.tasks)):
        if not values or len(set(values)) < len(values):
            raise ValueError(f"{name} must name each of one or more items once, got {values}")
    splits = {}
    env = dyna_maze()  # the same actions and calls on every maze
    for label in _labels(config):
        _agent(VARIANTS[label], env, config.alpha, config.epsilon, config.gamma)
        split = _split(label)
        if split["search_calls"] + split["planning_steps"] != BUDGET:
            raise ValueError(
                f"variant {label!r} spends {split} model calls per real step, not the "
                f"budget of {BUDGET}"
            )
        splits[label] = dict(split)
    return splits


@cache
def _split(label: str) -> dict[str, int]:
    """A variant's model calls per real step, search and planning (counted once: they
    depend on the variant alone, not on the numbers of the config)."""
    return build_agent(VARIANTS[label], dyna_maze(), alpha=1.0, epsilon=0.1, gamma=0.95)[1]


def train(config: Config, key: jax.Array) -> dict[str, dict[str, Any]]:
    """One run of every variant on every task from ``key``: ``{task: {label: metrics}}``
    (the traced settings may be tracers)."""
    tasks = _tasks()
    out = {}
    for task_name in config.tasks:
        task = tasks[task_name]
        out[task_name] = {}
        for label in _labels(config):
            agent, _ = _agent(VARIANTS[label], task.env, config.alpha, config.epsilon, config.gamma)
            out[task_name][label] = make_train(task.env, agent, task.config)(key)[1]
    return out


def task_score(task: Task, metrics) -> np.ndarray:
    """Per run (any leading axes): the total steps over episodes 2-10 on the Dyna maze
    (NaN if one is unfinished), the reward gained after the change on a changing maze."""
    if task.change_step is None:
        lengths = np.asarray(metrics.episode_length, float)
        lengths[lengths < 0] = np.nan
        return lengths[..., 1:10].sum(axis=-1)
    cumulative = np.asarray(metrics.cumulative_reward, float)
    before = cumulative[..., task.change_step // task.config.log_every - 1]
    return cumulative[..., -1] - before


def score(config: Config, metrics: dict[str, dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per run: each task's score (:data:`SCORES`) for each variant, named ``TASK: LABEL``
    (``TASK`` alone when one variant runs)."""
    tasks = _tasks()
    single = len(config.variants) == 1
    return {
        task_name if single else f"{task_name}: {label}": task_score(tasks[task_name], m)
        for task_name, by_label in metrics.items()
        for label, m in by_label.items()
    }


def _curve(task: Task, metrics) -> dict:
    """Steps per episode on the Dyna maze, cumulative reward on a changing maze."""
    if task.change_step is None:
        lengths = np.asarray(metrics.episode_length, float)
        lengths[lengths < 0] = np.nan
        return curve(np.arange(1, lengths.shape[1] + 1), lengths)
    cumulative = np.asarray(metrics.cumulative_reward, float)
    steps = np.arange(1, cumulative.shape[1] + 1) * task.config.log_every
    return curve(steps, cumulative)


def run(config: Config = Config(), *, progress: bool = True) -> dict:
    splits = check(config)
    seeds, _ = seed_keys(config.seed, config.runs)
    metrics, timing = run_seeds(partial(train, config), seeds, progress=progress)
    tasks = _tasks()
    curves, scores = {}, {}
    for task_name, by_label in metrics.items():
        for label, m in by_label.items():
            curves[f"{task_name}: {label}"] = _curve(tasks[task_name], m)
            scores.setdefault(task_name, {})[label] = task_score(tasks[task_name], m)
    labels = _labels(config)
    return make_result(
        NAME,
        config=config,
        seeds=seeds,
        timing=timing,
        x_label="Episodes",
        y_label="Steps per episode",
        curves=curves,
        budget_model_calls_per_step=BUDGET,
        budget_split=splits,
        variant_settings={label: VARIANTS[label]._asdict() for label in labels},
        table=_table(scores),
        plot_style={
            "title": f"Equal model calls per real step ({BUDGET}): Dyna-Q, search, blend",
            "panels": [
                {**PANELS[task_name], "labels": [f"{task_name}: {v}" for v in labels]}
                for task_name in config.tasks
            ],
        },
    )


PANELS = {
    "dyna maze": {"title": "Dyna maze", "log_y": True},
    "blocking maze": {
        "title": "Blocking maze (blocked at step 1000)",
        "x_label": "Time steps",
        "y_label": "Cumulative reward",
    },
    "shortcut maze": {
        "title": "Shortcut maze (shortcut at step 3000)",
        "x_label": "Time steps",
        "y_label": "Cumulative reward",
    },
}


def _paired(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean of a - b over runs, and its standard error (the runs share seeds)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    return {"mean": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(d.size))}


SCORES = {
    "dyna maze": "total steps, episodes 2-10",
    "blocking maze": "reward after the change",
    "shortcut maze": "reward after the change",
}


def _table(scores: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """Per task and variant: the score's mean and standard error over runs, and the
    blend's paired difference from it (when the blend is run)."""
    table = {}
    for task_name, by_variant in scores.items():
        rows = {}
        for label, values in by_variant.items():
            rows[label] = {
                "mean": float(np.mean(values)),
                "se": float(np.std(values, ddof=1) / np.sqrt(len(values))),
            }
            if "blend" in by_variant:
                rows[label]["blend minus this"] = _paired(by_variant["blend"], values)
        table[task_name] = {"score": SCORES[task_name], "rows": rows}
    return table


def summary(result: dict) -> str:
    lines = []
    split = result["budget_split"]
    for task_name, entry in result["table"].items():
        lines.append(f"{task_name} ({entry['score']}; mean +- s.e., blend - variant paired):")
        for label, row in entry["rows"].items():
            d = row.get("blend minus this")
            paired = f"blend - this {d['mean']:+8.1f} +- {d['se']:5.1f}   " if d else ""
            calls = split[label]
            lines.append(
                f"  {label:32s} {row['mean']:8.1f} +- {row['se']:5.1f}   {paired}"
                f"(search {calls['search_calls']}, planning {calls['planning_steps']})"
            )
    t = result["timing"]
    lines.append(f"compile {t['compile_s']:.1f} s, run {t['run_s']:.1f} s")
    return "\n".join(lines)
