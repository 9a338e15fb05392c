"""The grid spec: the shipped grid config (profiles, ablation arms), arm names with learning rates, the
learning-rate sweep's choice, the cell ids of a multirun and per-task settings."""

import pytest

from cadence.comparison import Cell, LRSweep, arm_at_lr, grid_cells, resolve_arms, resolve_task, task_settings
from cadence.comparison.grid import SweepStep, interior_step
from cadence.configs import compose

TASK = "invertedpendulum_p"


def test_quick_profile_and_command_line_overrides():
    quick = compose("compare", ["profile=quick"])
    mine = compose("compare", ["profile=quick", "seeds=[3,4]", "train.steps=7"])
    full = compose("compare")
    assert list(quick.seeds) == [0] and quick.train.steps == 1000 and quick.train.batch_size == full.train.batch_size
    assert list(mine.seeds) == [3, 4] and mine.train.steps == 7  # the command line wins over the profile
    assert len(full.seeds) >= 5 and len(full.tasks) > len(quick.tasks)


def test_every_shipped_arm_composes_into_a_train_config():
    """A typo in an ablation arm's override key fails here, not hours into a grid."""
    cfg = compose("compare", [f"backbones=[{','.join(['linoss', 'gru'])}]"])
    arms = resolve_arms(list(cfg.arms), cfg.arms)
    assert {a.name for a in arms} >= {"linoss_uniform", "linoss_ring", "linoss_data", "linoss_im", "linoss_imex"}
    for arm in arms:
        train = compose("train", ["algo=bc", f"env={TASK}"] + arm.train_overrides())
        for key, value in arm.overrides.items():
            node = train
            for part in key.split("."):
                node = node[part]
            assert node == value, (arm.name, key)
    cells, _ = grid_cells(cfg)
    assert len(cells) == len(cfg.tasks) * len(cfg.seeds) * 2


def test_lr_names_set_the_rate():
    assert arm_at_lr("gru", 1e-3, 1e-3) == "gru" and arm_at_lr("gru", 3e-4, 1e-3) == "gru@lr0.0003"
    with pytest.raises(ValueError, match=r"'fast' after '@lr' is not a learning rate, e\.g\. gru@lr0\.003"):
        resolve_arms(["gru@lrfast"], {})


def test_sweep_picks_the_best_rate_per_arm_and_breaks_ties_toward_the_default():
    sweep = LRSweep(task=TASK, seed=100, lrs=[3e-4, 1e-3, 3e-3])
    assert [c.backbone for c in sweep.cells({"gru": sweep.lrs}, 1e-3)] == ["gru@lr0.0003", "gru", "gru@lr0.003"]
    scores = {"gru@lr0.0003": 50, "gru": 70, "gru@lr0.003": 90, "mlp@lr0.0003": 100, "mlp": 100, "mlp@lr0.003": 100}
    chosen = sweep.choose(["gru", "mlp"], {k: {"normalized_score": v} for k, v in scores.items()}, 1e-3)
    assert chosen == {"gru": 3e-3, "mlp": 1e-3}


def test_an_edge_optimum_extends_the_grid_one_log_step_beyond_that_edge():
    grid = {1e-4: 0.0, 1e-3: 0.0, 1e-2: 0.0}
    assert interior_step(grid | {1e-4: 90.0}, 1e-3, 3) == SweepStep(1e-4, 1e-5)  # edge low: one decade lower
    assert interior_step(grid | {1e-2: 90.0}, 1e-3, 3) == SweepStep(1e-2, 0.1)  # edge high
    assert interior_step(grid | {1e-3: 90.0}, 1e-3, 3) == SweepStep(1e-3, None)  # interior: done
    assert interior_step(grid | {1e-2: 90.0}, 1e-3, 0) == SweepStep(1e-2, None)  # the cap: the edge stays
    assert interior_step({3e-4: 50.0, 1e-3: 70.0, 3e-3: 90.0}, 1e-3, 1) == SweepStep(3e-3, 0.009)  # ×3: its own step
    # ties go to the rate nearest the default: a plateau reaching an edge is interior when the default is inside it
    assert interior_step({1e-4: 90.0, 1e-3: 90.0, 1e-2: 10.0}, 1e-3, 3) == SweepStep(1e-3, None)
    assert interior_step({1e-4: 90.0, 1e-3: 90.0, 1e-2: 10.0}, 1e-4, 3) == SweepStep(1e-4, 1e-5)
    assert interior_step({1e-3: 90.0}, 1e-3, 3) == SweepStep(1e-3, None)  # one rate: no step to extend by


def test_sweep_steps_count_the_extensions_each_arm_has_left():
    sweep = LRSweep(TASK, 100, [1e-4, 1e-3, 1e-2], max_extensions=2)
    scores = {"gru@lr0.0001": 10, "gru": 20, "gru@lr0.01": 30, "gru@lr0.1": 40, "gru@lr1": 50}
    results = {k: {"normalized_score": v} for k, v in scores.items()}
    assert sweep.step("gru", [1e-4, 1e-3, 1e-2], results, 1e-3) == SweepStep(1e-2, 0.1)
    assert sweep.step("gru", [1e-4, 1e-3, 1e-2, 0.1], results, 1e-3) == SweepStep(0.1, 1.0)
    assert sweep.step("gru", [1e-4, 1e-3, 1e-2, 0.1, 1.0], results, 1e-3) == SweepStep(1.0, None)  # capped at 2
    assert sweep.choose(["gru"], results, 1e-3, {"gru": [1e-4, 1e-3, 1e-2, 0.1]}) == {"gru": 0.1}


def test_a_cell_id_names_its_json_and_parses_back(tmp_path):
    cell = Cell.parse("hopper_p/gru@lr0.003/2")
    assert cell == Cell("hopper_p", "gru@lr0.003", 2) and cell.id == "hopper_p/gru@lr0.003/2"
    assert cell.path(tmp_path) == tmp_path / "cells" / "hopper_p" / "gru@lr0.003" / "seed2.json"
    with pytest.raises(ValueError, match="is not TASK/ARM/SEED"):
        Cell.parse("hopper_p/gru")


def test_per_task_settings_merge_over_the_grids_and_unknown_keys_are_refused():
    base = ["train.steps=10", "train.window=8", "collect.episodes=2"]
    cfg = compose("compare", [*base, f"+per_task.{TASK}={{train: {{steps: 20}}, collect: {{episodes: 3}}}}"])
    collect, train = task_settings(cfg, TASK)
    assert (collect.episodes, train["steps"], train["window"]) == (3, 20, 8)
    assert task_settings(cfg, "hopper_p")[1]["steps"] == 10  # the other tasks keep the grid's settings
    for bad, named in ((f"+per_task.{TASK}={{train: {{stepz: 5}}}}", r"per_task.\S+.train has unknown key\(s\) "
                        r"\['stepz'\]: the grid's train has \['batch_size'"),
                       (f"+per_task.{TASK}={{eval: {{steps: 5}}}}", "takes collect and train")):  # fmt: skip
        with pytest.raises(ValueError, match=named):
            task_settings(compose("compare", [bad]), TASK)


def test_tasks_are_env_configs_or_variants_of_them():
    grid = compose("compare")
    variant = resolve_task("memory_reacher_d256", grid.variants)
    assert variant.overrides() == ["env=memory_reacher", "env.kwargs.delay_steps=256"]
    assert resolve_task("hopper_p", grid.variants).overrides() == ["env=hopper_p"]
    with pytest.raises(ValueError, match=r"task 'nope': env 'nope' is not one of .* define a variant as variants.nope="):
        resolve_task("nope", grid.variants)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['kwarg'\] in variants.bad"):
        resolve_task("bad", {"bad": {"env": "memory_reacher", "kwarg": {"delay_steps": 1}}})
