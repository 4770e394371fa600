"""Exploration that improves the model: a bonus from the ensemble's disagreement.

Where the members of an ensemble agree, the data pinned the dynamics down; where they
disagree, an action might improve the model (Sutton & Barto, section 8.3: exploration as
"trying actions that improve the model"). Pathak et
al. 2019 ("Self-supervised exploration via disagreement") and Sekar et al. 2020
(Plan2Explore) reward an agent with the spread of its ensemble's predictions. Here the
spread at (s, a) is

    d(s, a) = (1 / D) sum_j std_e( mu_e(s, a)_j )

the standard deviation over the E members of their predicted mean state change
(the network's mean output, before any sampling noise), averaged over the D state
dimensions. It is measured in the model's normalized target units (each dimension
divided by the standard deviation of its state change in the data), so every state
dimension counts alike whatever its physical scale and one weight means about the same
on every task; the learned reward's output, if any, is left out (it is not the state).
The standard deviation rather than the variance of Pathak et al. keeps d in the units
of the prediction, so the bonus grows linearly, not quadratically, with the spread.

:func:`disagreement_step_fn` adds ``exploration_weight * d(s, a)`` to the reward of the
model's StepFn, so any planner maximizes return plus bonus; ``model.disagreement(state,
obs, action)`` is d itself on a batch. It evaluates every member on every row, E times
the member evaluations of a TSinf step (one member a row): a planned step costs E + 1
member evaluations a row instead of one (the plain step is kept as it is, so weight 0
reproduces it bit for bit).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from mbrl_jax.hyperparameters import traced
from mbrl_jax.models.neural import NeuralModel, NeuralModelState
from mbrl_jax.types import StepFn
from mbrl_jax.validation import check_nonnegative


@traced("exploration_weight")
def disagreement_step_fn(
    model: NeuralModel,
    state: NeuralModelState,
    *,
    exploration_weight: Any = 1.0,
    propagation: str = "tsinf",
) -> StepFn:
    """The model's StepFn (``model.step_fn(state, propagation)``) with the reward
    ``r + exploration_weight * d(s, a)``; next states and termination unchanged. With
    weight 0 its outcome equals the plain StepFn's bit for bit. ``exploration_weight``
    (>= 0) may be traced. Costs E member evaluations a row on top of the plain step."""
    if model.ensemble_size < 2:
        raise ValueError(
            f"the disagreement bonus needs an ensemble of at least 2 members, "
            f"got ensemble_size={model.ensemble_size}"
        )
    check_nonnegative("exploration_weight", exploration_weight)
    step = model.step_fn(state, propagation)
    weight = jnp.asarray(exploration_weight, jnp.float32)

    def explore(obs: jax.Array, action: jax.Array, key: jax.Array):
        next_obs, reward, done = step(obs, action, key)
        return next_obs, reward + weight * model.disagreement(state, obs, action), done

    return explore
