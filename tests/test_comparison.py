"""The comparison harness: a cell's result (learning curve, throughput, robustness), the report built
from cells, the shipped grid config (profiles, ablation arms) and the learning-rate sweep."""

import json
import shutil

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from cadence.comparison import (Cell, LRSweep, arm_at_lr, grid_cells, markdown, plot_curves, resolve_arms, run_cell,
                                summarize, train_config)
from cadence.configs import CONFIG_DIR
from cadence.datasets import collect_dataset
from cadence.scripts.compare import run_compare

TASK = "invertedpendulum_p"
TRAIN = {"steps": 20, "batch_size": 8, "window": 8, "eval_every": 10, "eval_episodes": 2, "eval_envs": 1}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare") / "datasets" / TASK
    collect_dataset(TASK, "lqr", episodes=3, root=root, noise=0.5, seed=0, reference_episodes=2)
    return root


@pytest.fixture(scope="module")
def cells(dataset):
    """Two tiny cells (gru, linoss) with a stressor evaluation each."""
    out = dataset.parent.parent
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
    assert "Success rate" not in text  # InvertedPendulum defines no success


def test_report_gives_the_success_rate_of_tasks_that_define_one(cells):
    reach = [r | {"task": "memory_reacher", "success_rate": s} for r, s in zip(cells, (0.25, 0.0))]
    text = markdown(summarize([*cells, *reach]))
    success = text.split("Success rate")[1].split("\n\n")[1].splitlines()
    assert success[0] == "| task | gru | linoss |"
    assert success[2:] == ["| memory_reacher | 25% | 0% |"]  # only the task with a success signal


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
        assert {a.name for a in arms} >= {"linoss_uniform", "linoss_ring", "linoss_data", "linoss_im", "linoss_imex"}
        for arm in arms:
            train = compose("train", overrides=["algo=bc", f"env={TASK}"] + arm.train_overrides())
            for key, value in arm.overrides.items():
                node = train
                for part in key.split("."):
                    node = node[part]
                assert node == value, (arm.name, key)
    cells, _ = grid_cells(cfg)
    assert len(cells) == len(cfg.tasks) * len(cfg.seeds) * 2


def test_arm_overrides_win_over_the_grid_settings_and_lr_names_set_the_rate(tmp_path):
    """linoss_l64 must train on 64-step independent windows even though the grid's train.window is 16,
    and ``ARM@lrX`` is the arm at learning rate X, its other overrides kept."""
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        grid = compose("compare")
        arms = {a.name: a for a in resolve_arms(["linoss_l64", "linoss_ring@lr0.003", "gru"], grid.arms)}
        cfg = {name: train_config(Cell(TASK, name, 0), arm, tmp_path, tmp_path, 1000, grid.train)
               for name, arm in arms.items()}  # fmt: skip
    assert grid.train.window == 16 and cfg["linoss_l64"].algo.window == 64 and cfg["linoss_l64"].algo.tbptt is False
    assert cfg["linoss_ring@lr0.003"].algo.lr == 0.003 and cfg["gru"].algo.lr == grid.train.lr == 1e-3
    assert cfg["linoss_ring@lr0.003"].policy.backbone_kwargs.init.kind == "ring"
    assert arm_at_lr("gru", 1e-3, 1e-3) == "gru" and arm_at_lr("gru", 3e-4, 1e-3) == "gru@lr0.0003"
    with pytest.raises(ValueError, match=r"'fast' after '@lr' is not a learning rate, e\.g\. gru@lr0\.003"):
        resolve_arms(["gru@lrfast"], {})


def test_sweep_picks_the_best_rate_per_arm_and_breaks_ties_toward_the_default():
    sweep = LRSweep(task=TASK, seed=0, lrs=[3e-4, 1e-3, 3e-3])
    assert [c.backbone for c in sweep.cells(["gru"], 1e-3)] == ["gru@lr0.0003", "gru", "gru@lr0.003"]
    scores = {"gru@lr0.0003": 50, "gru": 70, "gru@lr0.003": 90, "mlp@lr0.0003": 100, "mlp": 100, "mlp@lr0.003": 100}
    chosen = sweep.choose(["gru", "mlp"], {k: {"normalized_score": v} for k, v in scores.items()}, 1e-3)
    assert chosen == {"gru": 3e-3, "mlp": 1e-3}


def test_compare_tunes_each_arm_then_runs_the_grid_at_its_rate(dataset, tmp_path):
    out = tmp_path / "compare"
    shutil.copytree(dataset, out / "datasets" / TASK)
    overrides = [f"out={out}", f"tasks=[{TASK}]", "seeds=[0,1]", "backbones=[gru,mlp]", "param_budget=5000",
                 "train.steps=30", "train.batch_size=8", "train.window=8", "train.eval_every=0", "train.eval_episodes=2",
                 "train.eval_envs=1", "robustness={}", f"lr_sweep.task={TASK}", "lr_sweep.lrs=[1e-3,3e-2]",
                 "collect.episodes=3"]  # the fixture's dataset  # fmt: skip
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        summary = run_compare(compose("compare", overrides=overrides), overrides)
    swept = {p.parent.name: json.loads(p.read_text()) for p in (out / "cells" / TASK).glob("*/seed0.json")}
    assert {"gru", "gru@lr0.03", "mlp", "mlp@lr0.03"} <= set(swept)
    assert swept["gru@lr0.03"]["overrides"] == {"algo.lr": 0.03} and swept["gru"]["overrides"] == {}
    chosen = LRSweep(TASK, 0, [1e-3, 3e-2]).choose(["gru", "mlp"], swept, 1e-3)
    tuned = [arm_at_lr(a, chosen[a], 1e-3) for a in ("gru", "mlp")]
    assert summary["backbones"] == tuned  # the grid trains every arm at its chosen rate, seed 0 reused from the sweep
    assert all(summary["cells"][(TASK, a)]["n"] == 2 for a in tuned)
    report = (out / "results.md").read_text()
    assert "| arm | lr 0.001 | lr 0.03 | chosen |" in report and f"| {tuned[0]} |" in report
    assert swept["gru"]["train"]["steps"] == 30
    longer = [*overrides, "train.steps=31"]  # a changed grid setting: the finished cells no longer match it
    with initialize_config_dir(str(CONFIG_DIR), version_base=None), pytest.raises(ValueError, match="trained with train"):
        run_compare(compose("compare", overrides=longer), longer)
    (out / "cells" / TASK / "gru" / "seed0.json").write_text(json.dumps(swept["gru"] | {"overrides": {"algo.lr": 1}}))
    with initialize_config_dir(str(CONFIG_DIR), version_base=None), pytest.raises(ValueError, match="delete that JSON"):
        run_compare(compose("compare", overrides=overrides), overrides)


def test_a_dataset_collected_with_other_settings_is_refused(dataset):
    from omegaconf import OmegaConf

    from cadence.comparison import dataset_for

    out = dataset.parent.parent
    assert dataset_for(TASK, out, OmegaConf.create({"episodes": 3, "noise": None}), 0) == dataset  # demo_noise 0.5
    with pytest.raises(ValueError, match="collected with noise 0.5, but the grid asks for 3 with noise 0.2"):
        dataset_for(TASK, out, OmegaConf.create({"episodes": 3, "noise": 0.2}), 0)


def test_per_task_settings_give_one_task_its_own_budget_for_every_arm(dataset, tmp_path):
    from cadence.comparison import task_settings

    out = tmp_path / "compare"
    shutil.copytree(dataset, out / "datasets" / TASK)
    overrides = [f"out={out}", f"tasks=[{TASK}]", "seeds=[0]", "backbones=[gru,mlp]", "param_budget=5000",
                 "lr_sweep=null", "robustness={}", "collect.episodes=2", "train.steps=10", "train.batch_size=8",
                 "train.window=8", "train.eval_every=0", "train.eval_episodes=2", "train.eval_envs=1",
                 f"+per_task.{TASK}={{train: {{steps: 20}}, collect: {{episodes: 3}}}}"]  # fmt: skip
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        cfg = compose("compare", overrides=overrides)
        collect, train = task_settings(cfg, TASK)
        assert (collect.episodes, train["steps"], train["window"]) == (3, 20, 8)
        assert task_settings(cfg, "hopper_p")[1]["steps"] == 10  # the other tasks keep the grid's settings
        run_compare(cfg, overrides)
        for name in ("gru", "mlp"):  # both arms trained on the task's own budget, and recorded it
            cell = json.loads((out / "cells" / TASK / name / "seed0.json").read_text())
            assert cell["history"][-1]["step"] == 20 and cell["train"]["steps"] == 20
        assert f"10 gradient steps (per task, for every arm alike: {TASK}: train.steps=20, collect.episodes=3)" in (
            out / "results.md").read_text()  # fmt: skip
        for bad, named in ((f"+per_task.{TASK}={{train: {{stepz: 5}}}}", r"per_task.\S+.train has unknown key\(s\) "
                            r"\['stepz'\]: the grid's train has \['batch_size'"),
                           (f"+per_task.{TASK}={{eval: {{steps: 5}}}}", "takes collect and train")):  # fmt: skip
            with pytest.raises(ValueError, match=named):
                task_settings(compose("compare", overrides=[bad]), TASK)
