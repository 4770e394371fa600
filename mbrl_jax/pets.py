"""PETS: probabilistic ensembles with trajectory sampling (Chua et al. 2018).

The loop of the paper (Algorithm 1): collect one trial of random actions; then
repeat: fit the ensemble on all data seen so far, run one trial of fixed length
acting by CEM through the ensemble (TSinf particles by default), and add the
trial's transitions to the data. ``make_pets`` returns two functions over one
seed, each a whole trial, so ``jax.jit(jax.vmap(...))`` runs a trial of many seeds
in one compiled call and the Python loop over trials shows progress between them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from mbrl_jax.models.neural import (
    NeuralModel,
    NeuralModelState,
    check_propagation,
    check_training,
)
from mbrl_jax.results import Timing, compile_timed, run_timed
from mbrl_jax.types import Planner, PRNGKey, Transition
from mbrl_jax.validation import check_count


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


def make_pets(
    env,
    model: NeuralModel,
    planner: Planner,
    *,
    env_params: Any = None,
    trial_length: int = 200,
    propagation: str = "tsinf",
) -> PETS:
    """The PETS loop for a gymnax ``env`` with vector observations.

    Each trial starts from ``env.reset`` and runs ``trial_length`` steps without
    auto-reset; steps after the episode terminates are masked (not stored, no
    reward). The model keeps its parameters during a trial and is refitted
    (``model.fit``, early-stopped on held-out data) after it; check the refit with
    :func:`mbrl_jax.models.neural.check_training`.
    """
    trial_length = check_count("trial_length", trial_length, minimum=1)
    params = env.default_params if env_params is None else env_params
    space = env.action_space(params)
    check_propagation(propagation)

    def run_episode(policy, policy_state, key: PRNGKey, restart: bool):
        """(transitions, stored, in_first_episode, rewards, policy infos), stacked over
        the trial's steps. With ``restart`` the environment is reset whenever an
        episode terminates and every step is stored (data collection); otherwise
        steps after the first episode's end are neither stored nor rewarded."""
        k_reset, k_steps = jax.random.split(key)
        obs, env_state = env.reset_env(k_reset, params)

        def step(carry, k):
            obs, env_state, policy_state, first = carry
            k_act, k_env, k_restart = jax.random.split(k, 3)
            action, policy_state, info = policy(policy_state, obs, k_act)
            next_obs, next_state, reward, terminated, _ = env.step_env(
                k_env, env_state, action, params
            )
            transition = Transition(obs, action, reward, next_obs, jnp.asarray(terminated))
            stored = jnp.ones((), bool) if restart else first
            out = (transition, stored, first, jnp.where(first, reward, 0.0), info)
            if restart:
                fresh = env.reset_env(k_restart, params)
                next_obs, next_state = jax.tree.map(
                    lambda r, n: jnp.where(terminated, r, n), fresh, (next_obs, next_state)
                )
            return (next_obs, next_state, policy_state, first & ~terminated), out

        init = (obs, env_state, policy_state, jnp.ones((), bool))
        return jax.lax.scan(step, init, jax.random.split(k_steps, trial_length))[1]

    def store_and_fit(model_state: NeuralModelState, transitions, stored, key):
        model_state = model.add_batch(model_state, transitions, stored)
        return model.fit(model_state, key)

    def play(model_state, policy, policy_state, key, restart=False):
        k_episode, k_fit = jax.random.split(key)
        transitions, stored, first, rewards, infos = run_episode(
            policy, policy_state, k_episode, restart
        )
        model_state = store_and_fit(model_state, transitions, stored, k_fit)
        metrics = TrialMetrics(jnp.sum(rewards), jnp.sum(first).astype(jnp.int32), jnp.mean(infos))
        return model_state, metrics

    def random_policy(policy_state, obs, key):
        return space.sample(key), policy_state, jnp.zeros(())

    def random_trial(model_state: NeuralModelState, key: PRNGKey):
        """``trial_length`` steps of uniformly random actions, restarting episodes
        that end (data collection, as PETS's first trial), then a refit. Its metrics
        are those of the first episode."""
        return play(model_state, random_policy, (), key, restart=True)

    def init(key: PRNGKey):
        k_model, k_trial = jax.random.split(key)
        return random_trial(model.init(k_model), k_trial)

    def trial(model_state: NeuralModelState, key: PRNGKey):
        """A trial planned through the model as it stands at the start of the trial."""
        k_planner, k_play = jax.random.split(key)
        step_fn = model.step_fn(model_state, propagation)

        def planning_policy(planner_state, obs, k):
            action, planner_state, info = planner.plan(planner_state, step_fn, obs, k)
            return action, planner_state, info.best_return

        return play(model_state, planning_policy, planner.init(k_planner), k_play)

    return PETS(init, trial, random_trial)


class PETSRun(NamedTuple):
    """Returns of every seed and trial (trial 0 is the random-action trial), and the
    compile and run seconds and XLA cost analysis of the two compiled calls (the
    random trial and one planned trial; see ``mbrl_jax.results.Timing``)."""

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
