"""The comparison harness: a cell's result (learning curve, throughput, robustness), the report built
from cells, and the shipped grid config (profiles, ablation arms)."""

import json

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from cadence.comparison import Cell, grid_cells, markdown, plot_curves, resolve_arms, run_cell, summarize
from cadence.configs import CONFIG_DIR
from cadence.datasets import collect_dataset

TASK = "invertedpendulum_p"
TRAIN = {"steps": 20, "batch_size": 8, "window": 8, "eval_every": 10, "eval_episodes": 2, "eval_envs": 1}


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    """Two tiny cells (gru, linoss) with a stressor evaluation each."""
    out = tmp_path_factory.mktemp("compare")
    dataset = out / "datasets" / TASK
    collect_dataset(TASK, "lqr", episodes=3, root=dataset, noise=0.5, seed=0, reference_episodes=2)
    stressors = {"delay3": {"obs_delay": 3}, "noise": {"obs_noise": 0.5}}
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        return [run_cell(Cell(TASK, arm.name, 0), arm, out, dataset, 20_000, TRAIN, stressors=stressors)
                for arm in resolve_arms(["gru", "linoss"], {})]  # fmt: skip


def test_cell_records_curve_throughput_and_robustness(cells):
    for r in cells:
        assert [h["step"] for h in r["history"]] == [10, 20]
        assert 0 < r["history"][0]["train_s"] < r["history"][1]["train_s"] < r["train_s"]
        assert r["samples_per_s"] == pytest.approx(20 * 8 * 8 / r["history"][1]["train_s"])
        assert set(r["robustness"]) == {"delay3", "noise"}
        assert all(np.isfinite(v) for v in r["robustness"].values())


def test_report_has_robustness_table_and_curves(cells, tmp_path):
    summary = summarize(cells)
    text = markdown(summary)
    assert "| backbone | clean | delay3 | noise |" in text
    assert text.count("\n| gru |") == 2 and text.count("\n| linoss |") == 2  # aggregate and robustness rows
    assert summary["cells"][(TASK, "gru")]["curve"]["step"] == [10.0, 20.0]
    png = plot_curves(summary, tmp_path / "curves.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quick_profile_and_command_line_overrides():
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        quick = compose("compare", overrides=["profile=quick"])
        mine = compose("compare", overrides=["profile=quick", "seeds=[3,4]", "train.steps=7"])
        full = compose("compare")
    assert list(quick.seeds) == [0] and quick.train.steps == 1000 and quick.train.batch_size == full.train.batch_size
    assert list(mine.seeds) == [3, 4] and mine.train.steps == 7  # the command line wins over the profile
    assert len(full.seeds) >= 5 and len(full.tasks) > len(quick.tasks)


def test_every_shipped_arm_composes_into_a_train_config():
    """A typo in an ablation arm's override key fails here, not hours into a grid."""
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        cfg = compose("compare", overrides=[f"backbones=[{','.join(['linoss', 'gru'])}]"])
        arms = resolve_arms(list(cfg.arms), cfg.arms)
        assert {a.name for a in arms} >= {"linoss_paper", "linoss_ring", "linoss_data", "linoss_im", "linoss_imex"}
        for arm in arms:
            train = compose("train", overrides=["algo=bc", f"env={TASK}"] + arm.train_overrides())
            for key, value in arm.overrides.items():
                node = train
                for part in key.split("."):
                    node = node[part]
                assert node == value, (arm.name, key)
    cells, _ = grid_cells(cfg)
    assert len(cells) == len(cfg.tasks) * len(cfg.seeds) * 2
