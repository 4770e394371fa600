"""Which hyperparameters of a factory may be traced: the one declaration.

Every factory in the library (a learner, a model, a search control, a planner, an agent)
takes its structural arguments (sizes, spaces, other parts) positionally and every
hyperparameter keyword-only after ``*``. A hyperparameter is either

- **static**: a Python value that sets a shape or a code path (network widths,
  ``horizon``, ``population``); runs that differ in it are compiled separately (a sweep
  groups them), or
- **traced**: it enters the computation only as a number (a step size, epsilon, a
  discount, a temperature) or as a run-time loop bound (Dyna's ``planning_steps``), so
  it may be a JAX array and ``jax.vmap`` can sweep it.

A factory declares its traced hyperparameters with :func:`traced`; everything else
keyword-only is static. ``tests/test_hyperparameters.py`` vmaps every declared traced
hyperparameter of every factory, so a declaration cannot drift from the code::

    @traced("alpha", "epsilon", "gamma")
    def q_learning(num_states, num_actions, *, alpha=0.1, epsilon=0.1, gamma=0.95): ...

    traced_hyperparameters(q_learning)   # frozenset({'alpha', 'epsilon', 'gamma'})
    static_hyperparameters(q_learning)   # frozenset({'initial_value'})
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

_ATTRIBUTE = "__traced_hyperparameters__"


def _keyword_only(factory: Callable) -> list[str]:
    parameters = inspect.signature(factory).parameters.values()
    return [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]


def traced(*names: str) -> Callable[[F], F]:
    """Declare the keyword-only hyperparameters ``names`` of the decorated factory traced
    (vmappable). Raises TypeError at import time for a name that is not keyword-only."""

    def declare(factory: F) -> F:
        keyword_only = _keyword_only(factory)
        unknown = [n for n in names if n not in keyword_only]
        if unknown:
            raise TypeError(
                f"{factory.__qualname__}: traced hyperparameters {unknown} are not keyword-only "
                f"parameters; keyword-only are {keyword_only}"
            )
        setattr(factory, _ATTRIBUTE, frozenset(names))
        return factory

    return declare


def traced_hyperparameters(factory: Callable) -> frozenset[str]:
    """The hyperparameters of ``factory`` that may be traced arrays (see :func:`traced`)."""
    return getattr(factory, _ATTRIBUTE, frozenset())


def static_hyperparameters(factory: Callable) -> frozenset[str]:
    """The keyword-only hyperparameters of ``factory`` that must be Python values."""
    return frozenset(_keyword_only(factory)) - traced_hyperparameters(factory)
