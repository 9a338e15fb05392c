"""A tiny dataset with episodes of different lengths (seconds to write), shared by the dataset tests."""

import numpy as np
import pytest

from cadence.datasets import collect_dataset


def weak(full_state: np.ndarray) -> np.ndarray:
    """Too weak to balance: with action noise σ = 1 the pendulum falls after a random number of steps."""
    return np.array([0.5 * full_state[1]], np.float32)


@pytest.fixture(scope="session")
def short_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets") / "short"
    collect_dataset("invertedpendulum_p", weak, episodes=6, root=root, noise=1.0, seed=0, part_episodes=4,
                    reference_episodes=2)  # fmt: skip
    return root
