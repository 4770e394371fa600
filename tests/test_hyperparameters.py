"""Every traced hyperparameter of every factory really may be traced (vmapped).

Each factory declares its traced hyperparameters with
:func:`mbrl_jax.hyperparameters.traced`. For every factory, one vmapped call runs the
part with all of them as arrays: row 0 at their first values, row i with the i-th
hyperparameter moved to its second value. Row 0 must equal the same run with plain
Python values (tracing changes nothing), and every other row must differ from row 0
(the traced value is used, not dropped). A factory that declares traced hyperparameters
must have an exercise here: adding one is one line of ``EXERCISES``.
"""

from __future__ import annotations

import functools
import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces as gymnax_spaces

import mbrl_jax.agents as agents
from mbrl_jax import blend, dyna, learners, models, planners, search
from mbrl_jax.hyperparameters import static_hyperparameters, traced, traced_hyperparameters
from mbrl_jax.types import Transition
from tests import test_contract_models as contract_models
from tests import test_contract_planners as contract_planners
from tests import test_tabular_planners as tabular_planners

S, A, OBS = 6, 3, 4
BOX = gymnax_spaces.Box(-2.0, 2.0, (1,), jnp.float32)

# Two valid values of each traced hyperparameter: (first, second).
VALUES = {
    "alpha": (0.1, 0.5),
    "epsilon": (0.1, 0.9),
    "gamma": (0.9, 0.5),
    "kappa": (1e-3, 0.5),
    "theta": (0.0, 2.0),
    "start_state": (0, 2),
    "learning_rate": (1e-3, 1e-2),
    "learning_rate_end": (1e-4, 5e-2),
    "advantage_alpha": (0.0, 0.5),
    "average_tau": (1.0, 0.5),
    "target_tau": (1.0, 0.5),
    "epsilon_start": (1.0, 0.2),
    "epsilon_end": (0.05, 0.9),
    "smoothing": (0.1, 0.5),
    "init_std": (0.3, 0.6),
    "temperature": (1.0, 0.1),
    "noise_std": (0.2, 0.4),
    "beta": (2.0, 0.0),
    "gumbel_scale": (1.0, 0.0),
    "weight_decay": (0.0, 0.1),
    "logvar_bound_weight": (0.01, 1.0),
    "store_step_size": (1.0, 0.5),
    "exploration_weight": (0.5, 2.0),
    "tau": (0.005, 0.5),
    "init_temperature": (1.0, 0.2),
    "target_entropy": (-1.0, 1.0),
    "real_ratio": (0.05, 0.5),
    "planning_steps": (2, 0),
}


def chain_transitions():
    """0 -(a=1, r=0)-> 1 -(a=0, r=1)-> 2 (terminal), twice: values reach state 0."""
    t1 = Transition(jnp.int32(1), jnp.int32(0), jnp.float32(1.0), jnp.int32(2), jnp.bool_(True))
    t2 = Transition(jnp.int32(0), jnp.int32(1), jnp.float32(0.0), jnp.int32(1), jnp.bool_(False))
    return [t1, t2, t1, t2]


def run_tabular(agent):
    """Four updates along :func:`chain_transitions`, then 16 actions from state 0."""
    key = jax.random.key(0)
    state = agent.init(key)
    for i, t in enumerate(chain_transitions()):
        state = agent.update(state, t, jax.random.fold_in(key, i))
    actions = jax.vmap(lambda k: agent.act(state, jnp.int32(0), k))(jax.random.split(key, 16))
    return state, actions


def run_dqn(learner):
    """Three real transitions (learning from the first), then 16 actions."""
    key = jax.random.key(0)
    state = learner.init(key)
    for i in range(3):
        k = jax.random.fold_in(key, i)
        obs, next_obs = jax.random.normal(k, (2, OBS))
        # the actions the initial network would not take, so every TD rule sees a gap
        t = Transition(obs, jnp.int32((i + 1) % 2), jnp.float32(1.0), next_obs, jnp.bool_(False))
        state = learner.update(state, t, k)
    actions = jax.vmap(lambda k: learner.act(state, jnp.ones(OBS), k))(jax.random.split(key, 16))
    return state, actions


def run_sac(learner):
    """A real transition (learned from), a simulated batch, then 16 actions."""
    key = jax.random.key(0)
    obs, next_obs = jax.random.normal(jax.random.fold_in(key, 1), (2, OBS))
    real = Transition(obs, jnp.full((1,), 0.5), jnp.float32(1.0), next_obs, jnp.bool_(False))
    state = learner.update(learner.init(key), real, key)
    obs, next_obs = jax.random.normal(key, (2, 4, OBS))
    batch = Transition(obs, jnp.zeros((4, 1)), jnp.zeros(4), next_obs, jnp.zeros(4, bool))
    state = learner.update(state, batch, jax.random.fold_in(key, 3))
    actions = jax.vmap(lambda k: learner.act(state, jnp.ones(OBS), k))(jax.random.split(key, 16))
    return state, actions


def tabular_dyna(search_control_of, planning_steps: int = 3):
    learner = learners.q_learning(S, A, alpha=0.5, gamma=0.9)
    model = models.tabular_sample_model(S, A)
    return dyna(learner, model, search_control_of(learner, model), planning_steps=planning_steps)


# factory: exercise(**hyperparameters) -> a pytree that depends on them
EXERCISES = {
    learners.q_learning: lambda **h: run_tabular(learners.q_learning(S, A, **h)),
    learners.expected_q_learning: lambda **h: run_tabular(learners.expected_q_learning(S, A, **h)),
    learners.q_table_learner: lambda **h: run_tabular(
        learners.q_table_learner(S, A, learners.q_learning(S, A).update, **h)
    ),
    learners.dqn: lambda **h: run_dqn(
        learners.dqn(
            OBS,
            2,
            hidden=(8,),
            capacity=16,
            batch_size=4,
            learning_starts=1,
            target_period=1,
            epsilon_steps=10,
            decay_steps=2,
            **h,
        )
    ),  # fmt: skip
    learners.sac: lambda **h: run_sac(
        learners.sac(OBS, BOX, hidden=(8,), capacity=16, batch_size=4, learning_starts=1, **h)
    ),
    search.prioritized: lambda **h: run_tabular(
        # no planning: the priorities stay queued, where gamma and theta show
        tabular_dyna(lambda learner, model: search.prioritized(S, A, model, **h), 0)
    ),
    search.trajectory_sampling: lambda **h: run_tabular(
        tabular_dyna(lambda learner, model: search.trajectory_sampling(learner, **h))
    ),
    agents.dyna_q: lambda **h: run_tabular(agents.dyna_q(S, A, **h)),
    agents.dyna_q_plus: lambda **h: run_tabular(agents.dyna_q_plus(S, A, **h)),
    agents.prioritized_sweeping: lambda **h: run_tabular(agents.prioritized_sweeping(S, A, **h)),
}


def planner_exercise(name: str, **overrides):
    """``exercise(**h)``: one plan of the contract test's tiny planner ``name`` through
    its analytic StepFn."""

    def exercise(**hyperparameters):
        planner = contract_planners.make(name, **overrides, **hyperparameters)
        key = jax.random.key(0)
        return planner.plan(planner.init(key), contract_planners.analytic_step, jnp.int32(0), key)

    return exercise


EXERCISES |= {
    case.factory: planner_exercise(name)
    for name, case in contract_planners._PLANNERS_UNDER_TEST.items()
}
# At horizon 3 colored noise has two frequencies, which beta scales alike: use 5.
EXERCISES[planners.icem] = planner_exercise("icem", horizon=5)


def tabular_planner_exercise(factory, **settings):
    """``exercise(**h)``: one plan from the root of the hand-built tree MDP of
    tests/test_tabular_planners.py, its leaves valued with that test's Q."""

    def exercise(**hyperparameters):
        planner = factory(5, 2, **settings, **hyperparameters)
        q, key = tabular_planners.LEAF_Q, jax.random.key(0)
        return planner.plan(q, tabular_planners.tree_model_fn, jnp.int32(0), key)

    return exercise


EXERCISES[planners.heuristic_search] = tabular_planner_exercise(planners.heuristic_search)
EXERCISES[planners.rollout_planner] = tabular_planner_exercise(planners.rollout_planner, horizon=3)
EXERCISES[planners.tabular_mcts] = tabular_planner_exercise(
    planners.tabular_mcts, num_simulations=4
)


def run_blend(**hyperparameters):
    """Dyna-Q searching at decision time: the chain's updates, then four searched
    (and stored) decisions from state 0."""
    model = models.tabular_sample_model(S, A)
    base = tabular_dyna(lambda learner, model: search.uniform_seen(S, A))
    agent = blend.decision_time(base, model, planners.heuristic_search(S, A), **hyperparameters)
    state, _ = run_tabular(agent)
    actions = []
    for i in range(4):
        action, state = agent.act_stateful(state, jnp.int32(i % 2), jax.random.key(i))
        actions.append(action)
    return state, jnp.stack(actions)


EXERCISES[blend.decision_time] = run_blend


def model_exercise(name: str):
    """``exercise(**h)``: the contract test's model case ``name`` after one real
    transition (one online training step for a neural model), and its samples."""
    case = contract_models._MODELS_UNDER_TEST[name]
    return lambda **h: contract_models._run(case, case.settings | h)


EXERCISES[models.tabular_sample_model] = model_exercise("Dyna-Q+ model")
EXERCISES[models.neural_model] = model_exercise("neural_model, ensemble")


@functools.cache
def disagreement_model():
    """The contract test's tiny ensemble and its initial state (random members)."""
    model = contract_models._MODELS_UNDER_TEST["neural_model, ensemble"].factory(hidden=(8,))
    with jax.ensure_compile_time_eval():  # concrete even when first asked inside a trace
        return model, jax.jit(model.init)(jax.random.key(0))


def run_disagreement(**hyperparameters):
    """One step of a tiny ensemble with the disagreement bonus, on the batch of pairs
    of the contract test's vector inputs."""
    model, state = disagreement_model()
    step = models.disagreement_step_fn(model, state, **hyperparameters)
    inputs = contract_models.VECTOR
    return step(inputs.obs, inputs.action, jax.random.key(1))


EXERCISES[models.disagreement_step_fn] = run_disagreement


def public_factories():
    """Every public callable of the library's packages that declares traced
    hyperparameters."""
    found = {}
    for package in (learners, models, search, planners, agents, blend):
        names = getattr(package, "__all__", None) or [
            n for n in vars(package) if not n.startswith("_")
        ]
        for name in names:
            value = getattr(package, name)
            if callable(value) and traced_hyperparameters(value):
                found[f"{package.__name__}.{name}"] = value
    return found


def test_every_factory_with_traced_hyperparameters_has_an_exercise():
    missing = [name for name, f in public_factories().items() if f not in EXERCISES]
    assert not missing, f"add an exercise to EXERCISES for {missing}"
    for factory in EXERCISES:
        assert set(traced_hyperparameters(factory)) <= set(VALUES), factory.__name__


def settings_rows(names):
    """Row 0: every name at its first value; row i: name i - 1 at its second value."""
    rows = [{n: VALUES[n][0] for n in names}]
    rows += [{**rows[0], n: VALUES[n][1]} for n in names]
    return {n: jnp.asarray([row[n] for row in rows]) for n in names}


# mctx compiles again, SAC's step compiles for about 40 s, a batched planning_steps
# makes the tabular agents' planning a masked while loop (13 s each; dyna_q stays fast):
# make test-slow runs them
SLOW_EXERCISES = {
    planners.tabular_mcts,
    learners.sac,
    models.disagreement_step_fn,
    agents.dyna_q_plus,
    agents.prioritized_sweeping,
    models.neural_model,  # 21 s
}


@pytest.mark.parametrize(
    "factory",
    [pytest.param(f, marks=pytest.mark.slow) if f in SLOW_EXERCISES else f for f in EXERCISES],
    ids=lambda f: f.__name__,
)
def test_traced_hyperparameters_vmap(factory):
    names = sorted(traced_hyperparameters(factory))
    exercise = EXERCISES[factory]
    batched = jax.jit(jax.vmap(lambda h: exercise(**h)))(settings_rows(names))
    alone = jax.jit(lambda: exercise(**{n: VALUES[n][0] for n in names}))()
    row = lambda i: jax.tree.map(lambda x: x[i], batched)  # noqa: E731
    chex.assert_trees_all_close(row(0), alone, rtol=1e-5, atol=1e-6)
    for i, name in enumerate(names, start=1):
        changed = any(
            not np.allclose(a, b)
            for a, b in zip(jax.tree.leaves(row(i)), jax.tree.leaves(row(0)), strict=True)
        )
        assert changed, f"{factory.__name__}: {name} traced to a new value changed nothing"


def test_the_declaration_rejects_names_that_are_not_keyword_only():
    def factory(size, *, rate=0.1, width=4):
        return size, rate, width

    assert traced("rate")(factory) is factory
    assert traced_hyperparameters(factory) == {"rate"}
    assert static_hyperparameters(factory) == {"width"}
    with pytest.raises(TypeError, match=r"\['size'\] are not keyword-only"):
        traced("size")(factory)


PARTS = {
    "Agent",
    "Learner",
    "Model",
    "SearchControl",
    "Planner",
    "DQN",
    "NeuralModel",
    "NeuralDyna",
}


def test_every_factory_takes_its_hyperparameters_keyword_only():
    """Structural arguments positional, hyperparameters after ``*``: no public factory
    (a function returning a part) has a positional parameter with a default (a
    hyperparameter in disguise)."""
    offenders = []
    for package in (learners, models, search, planners, agents, blend):
        for name in getattr(package, "__all__", []):
            value = getattr(package, name)
            if (
                not inspect.isfunction(value)
                or inspect.signature(value).return_annotation not in PARTS
            ):
                continue
            for p in inspect.signature(value).parameters.values():
                if p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty:
                    offenders.append(f"{package.__name__}.{name}({p.name}=...)")
    assert not offenders, offenders
