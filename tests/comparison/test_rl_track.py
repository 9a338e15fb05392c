"""The RL track of ``cadence-compare`` (``algorithm=ppo``, ``profile=rl``): PPO cells on the task itself, scored
against reference returns measured once per task, the same protocol pieces as the BC grid (tuning on a tuning seed,
learning curves with training seconds), and the settings that cannot mean anything under PPO refused."""

import json

import numpy as np
import pytest

from cadence.comparison import check_algo, read_reference, resolve_arms, run_compare
from cadence.comparison.grid import check_grid, own_values, task_settings
from cadence.configs import compose
from cadence.training.run import check_config

TASK = "invertedpendulum_p"
TINY_PPO = ["train.steps=96", "train.num_envs=2", "train.num_steps=24", "train.window=12", "+train.num_minibatches=2",
            "+train.update_epochs=1", "train.eval_every=48", "train.eval_episodes=2", "train.eval_envs=1"]  # fmt: skip


def test_the_rl_track_trains_ppo_cells_scored_against_the_tasks_measured_references(tmp_path):
    out = tmp_path / "rl"
    overrides = ["profile=rl", f"out={out}", f"tasks=[{TASK}]", "seeds=[0]", "backbones=[gru,mlp]",
                 "param_budget=3000", "lr_sweep=null", *TINY_PPO]  # fmt: skip
    summary = run_compare(compose("compare", overrides), overrides)
    assert not (out / "datasets").exists()  # no demonstrations: the references are measured instead
    references = json.loads((out / "references" / f"{TASK}.json").read_text())
    expert, floor = read_reference(out / "references" / f"{TASK}.json")
    assert references["expert"] == "lqr" and expert == pytest.approx(1000.0) and 0 < floor < 100
    for arm in ("gru", "mlp"):
        cell = json.loads((out / "cells" / TASK / arm / "seed0.json").read_text())
        assert cell["status"] == "done" and cell["train"]["steps"] == 96 and "batch_size" not in cell["train"]
        assert cell["normalized_score"] == pytest.approx(100 * (cell["mean_return"] - floor) / (expert - floor))
        assert cell["score"] == cell["normalized_score"]  # checkpoints were ranked by it
        assert [h["step"] for h in cell["history"]] == [48, 96]
        assert 0 < cell["history"][0]["train_s"] < cell["history"][1]["train_s"] < cell["train_s"]
        assert all(np.isfinite(h["normalized_score"]) for h in cell["history"])
        assert cell["samples_per_s"] == pytest.approx(96 / cell["history"][-1]["train_s"])  # environment steps/s
        run = json.loads((out / "runs" / TASK / arm / "seed0" / "checkpoints" / "best" / "config.json").read_text())
        assert run["extra"]["run"]["reference"] == [expert, floor]  # cadence-eval of the checkpoint normalizes too
        assert run["policy"]["head"] == "gaussian"
    assert summary["cells"][(TASK, "gru")]["n"] == 1
    assert "100,000" not in (text := (out / "results.md").read_text())
    assert "3,000 parameters per policy, 96 environment steps (recurrent PPO)" in text
    before = (out / "cells" / TASK / "gru" / "seed0.json").read_text()
    run_compare(compose("compare", overrides), overrides)  # finished cells are read back
    assert (out / "cells" / TASK / "gru" / "seed0.json").read_text() == before


def test_the_rl_profile_composes_ppo_settings_and_tunes_the_ppo_learning_rate():
    cfg = compose("compare", ["profile=rl"])
    assert check_algo(cfg) == "ppo" and check_grid(cfg) == ["invertedpendulum_p", "halfcheetah_p", "delayed_tracking_k4"]
    assert task_settings(cfg, "halfcheetah_p")[1] == {"lr": 3e-4, "steps": 300_000, "num_envs": 8, "num_steps": 256,
                                                      "window": 64, "eval_every": 50_000, "eval_episodes": 10,
                                                      "eval_envs": 5}  # fmt: skip
    (linoss,) = resolve_arms(["linoss"], cfg.arms)
    # the sweep's own values come from PPO's config: its learning rate and recurrence factor, not BC's
    assert own_values(linoss, {"steps": 2048}, ["lr", "rlr"], "ppo") == {"lr": 3e-4, "rlr": 1.0}
    assert own_values(linoss, {"lr": 0.01}, ["lr"], "ppo") == {"lr": 0.01}


@pytest.mark.parametrize("overrides, message", [
    (["profile=rl", "train.batch_size=32"], r"train has key\(s\) \['batch_size'\] that algorithm=ppo does not take"),
    (["profile=rl", "+per_task.invertedpendulum_p={train: {image_size: 64}}"],
     r"per_task.invertedpendulum_p.train has unknown key\(s\) \['image_size'\].*\(algorithm=ppo\)"),
    (["algorithm=dqn"], r"algorithm='dqn' is not a training algorithm of the grid: choose one of \['bc', 'ppo'\]"),
])  # fmt: skip
def test_settings_the_grids_algorithm_does_not_take_are_refused_before_anything_runs(tmp_path, overrides, message):
    overrides = [*overrides, f"out={tmp_path}"]
    with pytest.raises(ValueError, match=message):
        run_compare(compose("compare", overrides), overrides)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("reference, message", [
    ("[1000,2000]", r"the expert's return must be above the floor's"),
    ("[1000]", r"reference=\[1000\] is not \[EXPERT_RETURN, FLOOR_RETURN\]"),
    ("high", r"reference='high' is not \[EXPERT_RETURN, FLOOR_RETURN\]"),
])  # fmt: skip
def test_reference_returns_that_cannot_normalize_are_refused_before_a_run_starts(tmp_path, reference, message):
    cfg = compose("train", ["algo=ppo", "policy=mlp", "policy.head=gaussian", f"reference={reference}",
                            f"run_dir={tmp_path / 'run'}"])  # fmt: skip
    with pytest.raises(ValueError, match=message):
        check_config(cfg)
    assert not (tmp_path / "run").exists()
