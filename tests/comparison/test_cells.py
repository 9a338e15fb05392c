"""One cell: its train config (from plain Python, no Hydra app), its result (learning curve, throughput,
robustness), resumability, and the refusal of a dataset collected with other settings."""

import json

import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from cadence.comparison import Cell, dataset_for, resolve_arms, run_cell, summarize, train_config
from cadence.configs import compose
from cadence.policies import SequencePolicy

TASK = "invertedpendulum_p"


def test_cell_records_curve_throughput_and_robustness(cells):
    for r in cells:
        assert [h["step"] for h in r["history"]] == [10, 20]
        assert 0 < r["history"][0]["train_s"] < r["history"][1]["train_s"] < r["train_s"]
        assert r["samples_per_s"] == pytest.approx(20 * 8 * 8 / r["history"][1]["train_s"])
        assert set(r["robustness"]) == {"delay3", "noise"}
        assert all(np.isfinite(v) for v in r["robustness"].values())


def test_a_finished_cell_is_read_back_and_one_trained_otherwise_is_refused(cells, dataset):
    out, (gru,) = dataset.parent.parent, resolve_arms(["gru"], {})
    again = run_cell(Cell(TASK, "gru", 0), gru, out, dataset, 20_000, dict(cells[0]["train"]))
    assert again == json.loads((out / "cells" / TASK / "gru" / "seed0.json").read_text())
    assert again["finished"] == cells[0]["finished"]  # read back, not trained again
    with pytest.raises(ValueError, match=r"was trained with train .* delete that JSON"):
        run_cell(Cell(TASK, "gru", 0), gru, out, dataset, 20_000, cells[0]["train"] | {"steps": 21})


def test_arm_overrides_win_over_the_grid_settings_and_lr_names_set_the_rate(tmp_path):
    """linoss_l64 must train on 64-step independent windows even though the grid's train.window is 16,
    and ``ARM@lrX`` is the arm at learning rate X, its other overrides kept; the config composes from plain
    Python, with no Hydra app or ``initialize_config_dir`` around it."""
    grid = compose("compare")
    assert not GlobalHydra.instance().is_initialized()
    arms = {a.name: a for a in resolve_arms(["linoss_l64", "linoss_ring@lr0.003", "gru"], grid.arms)}
    cfg = {name: train_config(Cell(TASK, name, 0), arm, tmp_path, tmp_path, 1000, grid.train)
           for name, arm in arms.items()}  # fmt: skip
    assert not GlobalHydra.instance().is_initialized()
    assert grid.train.window == 16 and cfg["linoss_l64"].algo.window == 64 and cfg["linoss_l64"].algo.batches == "windows"
    assert cfg["linoss_ring@lr0.003"].algo.lr == 0.003 and cfg["gru"].algo.lr == grid.train.lr == 1e-3
    assert cfg["linoss_ring@lr0.003"].policy.backbone_kwargs.init.kind == "ring"
    assert cfg["gru"].run_dir == str(tmp_path / "runs" / TASK / "gru" / "seed0") and cfg["gru"].resume is True


def test_a_dataset_collected_with_other_settings_is_refused(dataset):
    out = dataset.parent.parent
    assert dataset_for(TASK, out, OmegaConf.create({"episodes": 3, "noise": None}), 0) == dataset  # demo_noise 0.5
    with pytest.raises(ValueError, match="collected with noise 0.5, but the grid asks for 3 with noise 0.2"):
        dataset_for(TASK, out, OmegaConf.create({"episodes": 3, "noise": 0.2}), 0)


def test_a_cell_that_cannot_fit_its_budget_is_recorded_with_its_cost(dataset, tmp_path):
    """A cell whose measured s/step × steps exceeds ``train.time_budget_s`` is written as out of budget, with its
    cost per step and peak memory, after the probe steps only; a re-run reads it back."""
    out, (gru,) = dataset.parent.parent, resolve_arms(["gru"], {})
    train = {"steps": 1000, "batch_size": 8, "window": 8, "eval_episodes": 2, "eval_envs": 1, "time_budget_s": 1e-3}
    cell = Cell(TASK, "gru", 7)
    r = run_cell(cell, gru, out, dataset, 20_000, train)
    assert r["status"] == "out_of_budget" and r["s_per_step"] > 0 and r["peak_memory_mb"] >= 0
    assert "normalized_score" not in r and "over the 0 s budget" in r["message"]
    ckpts = out / "runs" / TASK / "gru" / "seed7" / "checkpoints"
    assert SequencePolicy.from_pretrained(ckpts / "init").cfg.backbone == "gru" and not (ckpts / "last").exists()
    assert run_cell(cell, gru, out, dataset, 20_000, train) == r
    assert summarize([r])["cells"] == {}  # no score to aggregate
