"""What to update: search controls with the shared ``SearchControl(init, update, propose)``."""

from mbrl_jax.search.uniform import SeenPairs, uniform_over_states, uniform_seen

__all__ = ["SeenPairs", "uniform_over_states", "uniform_seen"]
