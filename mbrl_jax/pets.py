"""PETS: probabilistic ensembles with trajectory sampling (Chua et al. 2018).

The loop of the paper (Algorithm 1): collect one trial of random actions; then
repeat: fit the ensemble on all data seen so far, run one trial of fixed length
acting by CEM through the ensemble (TSinf particles by default), and add the
trial's transitions to the data. ``make_pets`` returns two functions over one
seed, each a whole trial, so ``jax.jit(jax.vmap(...))`` runs a trial of many seeds
in one compiled call and the Python loop over trials shows progress between them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from mbrl_jax.hyperparameters import traced
from mbrl_jax.models import (
    NeuralModel,
    NeuralModelState,
    check_propagation,
    check_training,
    disagreement_step_fn,
)
from mbrl_jax.timing import Timing, compile_timed, run_timed
from mbrl_jax.types import Planner, PRNGKey, Transition
from mbrl_jax.validation import check_count, check_nonnegative

#: How a trial acts: policy(policy_state, obs, key) -> (action, policy_state, info)
Policy = Callable[[Any, jax.Array, PRNGKey], tuple[jax.Array, Any, jax.Array]]


class TrialMetrics(NamedTuple):
    episode_return: jax.Array  # () undiscounted return of the trial's episode
    episode_length: jax.Array  # () steps before termination (trial_length if none)
    predicted_return: jax.Array  # () mean over steps of the planner's best predicted return


class PETS(NamedTuple):
    """``init(key) -> model_state`` (fresh model, one random-action trial stored and
    fitted) and ``trial(model_state, key) -> (model_state, TrialMetrics)`` (one
    trial planned through the model, its data stored, the model refitted)."""

    init: Any
    trial: Any
    random_trial: Any


class _Episode(NamedTuple):
    """How a trial's episode runs (static): the environment, its params, the number
    of steps and whether an ended episode restarts (data collection) or not."""

    env: Any
    params: Any
    trial_length: int
    restart: bool


class _EpisodeCarry(NamedTuple):
    obs: jax.Array
    env_state: Any
    policy_state: Any
    first: jax.Array  # () bool, still in the trial's first episode


class _Step(NamedTuple):
    """What one step of a trial records (stacked over the trial's steps)."""

    transition: Transition
    stored: jax.Array  # () bool, added to the model's data
    first: jax.Array  # () bool, a step of the first episode
    reward: jax.Array  # () the step's reward in the first episode, else 0
    info: jax.Array  # () the policy's info (the planner's best predicted return)


def _episode_step(
    episode: _Episode, policy: Policy, carry: _EpisodeCarry, key: PRNGKey
) -> tuple[_EpisodeCarry, _Step]:
    """One environment step by ``policy``. With ``restart`` the environment is reset
    when the episode terminates and every step is stored; otherwise steps after the
    first episode's end are neither stored nor rewarded."""
    env, params = episode.env, episode.params
    k_act, k_env, k_restart = jax.random.split(key, 3)
    action, policy_state, info = policy(carry.policy_state, carry.obs, k_act)
    next_obs, next_state, reward, terminated, _ = env.step_env(
        k_env, carry.env_state, action, params
    )
    transition = Transition(carry.obs, action, reward, next_obs, jnp.asarray(terminated))
    stored = jnp.ones((), bool) if episode.restart else carry.first
    record = _Step(transition, stored, carry.first, jnp.where(carry.first, reward, 0.0), info)
    if episode.restart:
        fresh = env.reset_env(k_restart, params)
        next_obs, next_state = optax.tree.where(terminated, fresh, (next_obs, next_state))
    return _EpisodeCarry(next_obs, next_state, policy_state, carry.first & ~terminated), record


def _run_episode(episode: _Episode, policy: Policy, policy_state: Any, key: PRNGKey) -> _Step:
    """A trial's ``trial_length`` steps from ``env.reset``, one ``lax.scan``."""
    k_reset, k_steps = jax.random.split(key)
    obs, env_state = episode.env.reset_env(k_reset, episode.params)
    start = _EpisodeCarry(obs, env_state, policy_state, jnp.ones((), bool))
    keys = jax.random.split(k_steps, episode.trial_length)
    return jax.lax.scan(functools.partial(_episode_step, episode, policy), start, keys)[1]


def _play(
    episode: _Episode, model: NeuralModel, model_state, policy: Policy, policy_state, key
) -> tuple[NeuralModelState, TrialMetrics]:
    """One trial: run the episode, store its steps in the model and refit it."""
    k_episode, k_fit = jax.random.split(key)
    steps = _run_episode(episode, policy, policy_state, k_episode)
    model_state = model.fit(model.add_batch(model_state, steps.transition, steps.stored), k_fit)
    metrics = TrialMetrics(
        jnp.sum(steps.reward), jnp.sum(steps.first).astype(jnp.int32), jnp.mean(steps.info)
    )
    return model_state, metrics


def _random_policy(space: Any, policy_state, obs, key: PRNGKey):
    del obs
    return space.sample(key), policy_state, jnp.zeros(())


def _planning_policy(planner: Planner, step_fn, planner_state, obs, key: PRNGKey):
    action, planner_state, info = planner.plan(planner_state, step_fn, obs, key)
    return action, planner_state, info.best_return


def _model_step_fn(model: NeuralModel, model_state, propagation: str, exploration_weight):
    """The StepFn a trial plans through: the model's, with the disagreement bonus unless
    its weight is a Python 0 (then the plain StepFn: PETS without exploration)."""
    if isinstance(exploration_weight, int | float) and exploration_weight == 0:
        return model.step_fn(model_state, propagation)
    return disagreement_step_fn(
        model, model_state, exploration_weight=exploration_weight, propagation=propagation
    )


@traced("exploration_weight")
def make_pets(
    env,
    model: NeuralModel,
    planner: Planner,
    *,
    env_params: Any = None,
    trial_length: int = 200,
    propagation: str = "tsinf",
    exploration_weight: Any = 0.0,
) -> PETS:
    """The PETS loop for a gymnax ``env`` with vector observations.

    Each trial starts from ``env.reset`` and runs ``trial_length`` steps without
    auto-reset; steps after the episode terminates are masked (not stored, no
    reward). The model keeps its parameters during a trial and is refitted
    (``model.fit``, early-stopped on held-out data) after it; check the refit with
    :func:`mbrl_jax.models.check_training`.

    ``exploration_weight`` > 0 plans with the ensemble's disagreement bonus added to the
    reward (:func:`mbrl_jax.models.disagreement_step_fn`, E + 1 member evaluations a
    particle step instead of one); it may be traced. At 0 (the default) the trials plan
    through the model's plain StepFn, PETS itself.
    """
    trial_length = check_count("trial_length", trial_length, minimum=1)
    check_nonnegative("exploration_weight", exploration_weight)
    params = env.default_params if env_params is None else env_params
    check_propagation(propagation)
    collect = _Episode(env, params, trial_length, restart=True)
    planned = _Episode(env, params, trial_length, restart=False)
    random_policy = functools.partial(_random_policy, env.action_space(params))

    def random_trial(model_state: NeuralModelState, key: PRNGKey):
        """``trial_length`` steps of uniformly random actions, restarting episodes
        that end (data collection, as PETS's first trial), then a refit. Its metrics
        are those of the first episode."""
        return _play(collect, model, model_state, random_policy, (), key)

    def init(key: PRNGKey):
        k_model, k_trial = jax.random.split(key)
        return random_trial(model.init(k_model), k_trial)

    def trial(model_state: NeuralModelState, key: PRNGKey):
        """A trial planned through the model as it stands at the start of the trial."""
        k_planner, k_play = jax.random.split(key)
        step_fn = _model_step_fn(model, model_state, propagation, exploration_weight)
        policy = functools.partial(_planning_policy, planner, step_fn)
        return _play(planned, model, model_state, policy, planner.init(k_planner), k_play)

    return PETS(init, trial, random_trial)


class PETSRun(NamedTuple):
    """Returns of every seed and trial (trial 0 is the random-action trial), and the
    compile and run seconds and XLA cost analysis of the two compiled calls (the
    random trial and one planned trial; see ``mbrl_jax.timing.Timing``)."""

    returns: Any  # (seeds, trials + 1) numpy array
    predicted: Any  # (seeds, trials + 1): the planner's mean best predicted return
    timing: Timing


def run_pets(pets: PETS, keys: jax.Array, trials: int, progress: bool = True) -> PETSRun:
    """Run PETS for ``trials`` planned trials after the random one, all seeds
    (``keys``, one per seed) vmapped in each compiled trial call; a progress bar
    over trials. Raises FloatingPointError if any refit met a non-finite loss."""
    trials = check_count("trials", trials, minimum=1)
    seeds = keys.shape[0]
    trial_keys = jax.vmap(lambda k: jax.random.split(k, trials + 1))(keys)  # (seeds, T+1)
    init, init_timing = compile_timed(jax.vmap(pets.init), trial_keys[:, 0])
    (state, metrics), run_s = run_timed(init, trial_keys[:, 0])
    check_training(state, "PETS model (after the random trial)")
    returns, predicted = [np.asarray(metrics.episode_return)], [np.full(seeds, np.nan)]
    trial, trial_timing = compile_timed(jax.vmap(pets.trial), state, trial_keys[:, 1])
    bar = tqdm(range(1, trials + 1), desc="PETS trials", unit="trial", disable=not progress)
    for t in bar:
        (state, metrics), seconds = run_timed(trial, state, trial_keys[:, t])
        run_s += seconds
        check_training(state, f"PETS model (after trial {t})")
        returns.append(np.asarray(metrics.episode_return))
        predicted.append(np.asarray(metrics.predicted_return))
        bar.set_postfix(mean_return=f"{returns[-1].mean():.1f}")
    timing = init_timing + replace(trial_timing, run_s=run_s)
    return PETSRun(np.stack(returns, 1), np.stack(predicted, 1), timing)
