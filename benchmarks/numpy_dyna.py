"""A plain NumPy/Python Tabular Dyna-Q on the Dyna maze: the baseline the JAX
version is compared with (one run at a time, as a textbook implementation does).
"""

from __future__ import annotations

import numpy as np

from mbrl_jax.envs import dyna_maze

MOVES = [(-1, 0), (1, 0), (0, -1), (0, 1)]


def run_dyna_q(
    planning_steps: int,
    seed: int,
    num_episodes: int = 50,
    alpha: float = 0.1,
    epsilon: float = 0.1,
    gamma: float = 0.95,
) -> tuple[list[int], int]:
    """Steps per episode and total Q-updates (real + planning) of one run."""
    grid = dyna_maze().grids[0]  # the layout as a 2-D array of characters
    height, width = grid.shape
    start = tuple(np.argwhere(grid == "S")[0])
    rng = np.random.default_rng(seed)
    q = np.zeros((height, width, 4))
    model: dict[tuple, tuple] = {}
    seen: list[tuple] = []
    lengths, updates = [], 0
    for _ in range(num_episodes):
        state, steps = start, 0
        while True:
            if rng.random() < epsilon:
                action = int(rng.integers(4))
            else:
                values = q[state]
                action = int(rng.choice(np.flatnonzero(values == values.max())))
            r, c = state[0] + MOVES[action][0], state[1] + MOVES[action][1]
            r, c = min(max(r, 0), height - 1), min(max(c, 0), width - 1)
            nxt = state if grid[r, c] == "#" else (r, c)
            done = grid[nxt] == "G"
            reward = 1.0 if done else 0.0
            target = reward + (0.0 if done else gamma * q[nxt].max())
            q[state][action] += alpha * (target - q[state][action])
            if (state, action) not in model:
                seen.append((state, action))
            model[(state, action)] = (nxt, reward, done)
            for _ in range(planning_steps):
                s, a = seen[rng.integers(len(seen))]
                s2, rw, dn = model[(s, a)]
                q[s][a] += alpha * (rw + (0.0 if dn else gamma * q[s2].max()) - q[s][a])
            updates += 1 + planning_steps
            steps += 1
            state = nxt
            if done:
                break
        lengths.append(steps)
    return lengths, updates
