"""A tiny InvertedPendulum-P dataset and two tiny trained cells (gru, linoss), shared by the comparison tests."""

import pytest

from cadence.comparison import Cell, resolve_arms, run_cell
from cadence.datasets import collect_dataset

TRAIN = {"steps": 20, "batch_size": 8, "window": 8, "eval_every": 10, "eval_episodes": 2, "eval_envs": 1}


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """``OUT/datasets/invertedpendulum_p`` of a grid: 3 LQR episodes with DART noise 0.5 (the task's demo_noise)."""
    root = tmp_path_factory.mktemp("compare") / "datasets" / "invertedpendulum_p"
    collect_dataset("invertedpendulum_p", "lqr", episodes=3, root=root, noise=0.5, seed=0, reference_episodes=2)
    return root


@pytest.fixture(scope="session")
def cells(dataset):
    """Two tiny cells (gru, linoss) with a stressor evaluation each, run from plain Python (no Hydra app)."""
    out = dataset.parent.parent
    stressors = {"delay3": {"obs_delay": 3}, "noise": {"obs_noise": 0.5}}
    return [run_cell(Cell(dataset.name, arm.name, 0), arm, out, dataset, 20_000, TRAIN, stressors=stressors)
            for arm in resolve_arms(["gru", "linoss"], {})]  # fmt: skip
