"""The protocols: ``cadence-compare``'s grid (the learning-rate sweep on a tuning seed, extended beyond an edge
optimum, then the grid at each arm's rate;
per-task budgets; finished cells that no longer match the grid refused) and ``cadence-demo``'s memory grid."""

import json
import shutil

import pytest

from cadence.comparison import LRSweep, arm_at_lr, run_compare, run_demo
from cadence.configs import compose

TASK = "invertedpendulum_p"


def test_compare_tunes_each_arm_then_runs_the_grid_at_its_rate(dataset, tmp_path):
    out = tmp_path / "compare"
    shutil.copytree(dataset, out / "datasets" / TASK)
    overrides = [f"out={out}", f"tasks=[{TASK}]", "seeds=[0,1]", "backbones=[gru,mlp]", "param_budget=5000",
                 "train.steps=30", "train.batch_size=8", "train.window=8", "train.eval_every=0",
                 "train.eval_episodes=2", "train.eval_envs=1", "robustness={}", f"lr_sweep.task={TASK}",
                 "lr_sweep.lrs=[1e-3,3e-2]", "lr_sweep.max_extensions=1", "collect.episodes=3"]  # fmt: skip
    summary = run_compare(compose("compare", overrides), overrides)
    swept = {p.parent.name: json.loads(p.read_text()) for p in (out / "cells" / TASK).glob("*/seed100.json")}
    # with two rates the best is at an edge: one log step (×30) beyond it, then the cap of one extension
    tried = {a: sorted([1e-3, 3e-2, 3.33e-5 if swept[a]["normalized_score"] >= swept[f"{a}@lr0.03"]["normalized_score"]
                        else 0.9]) for a in ("gru", "mlp")}  # fmt: skip
    assert set(swept) == {arm_at_lr(a, lr, 1e-3) for a, lrs in tried.items() for lr in lrs}
    assert swept["gru@lr0.03"]["overrides"] == {"algo.lr": 0.03} and swept["gru"]["overrides"] == {}
    chosen = LRSweep(TASK, 100, [1e-3, 3e-2], 1).choose(["gru", "mlp"], swept, 1e-3, tried)
    tuned = [arm_at_lr(a, chosen[a], 1e-3) for a in ("gru", "mlp")]
    assert summary["backbones"] == tuned  # the grid trains every arm at its chosen rate, on its evaluation seeds
    assert all(summary["cells"][(TASK, a)]["n"] == 2 for a in tuned)
    report = (out / "results.md").read_text()
    assert "| chosen | optimum |" in report and f"| {tuned[0]} |" in report
    assert report.startswith("# Backbone comparison (full profile)\n\nCommand: `cadence-compare out=")
    assert set(json.loads((out / "summary.json").read_text())) == {f"{TASK}/{a}" for a in tuned}
    assert (out / "scores.png").exists() and (out / "curves.png").exists()
    assert swept["gru"]["train"]["steps"] == 30
    longer = [*overrides, "train.steps=31"]  # a changed grid setting: the finished cells no longer match it
    with pytest.raises(ValueError, match="trained with train"):
        run_compare(compose("compare", longer), longer)
    (out / "cells" / TASK / "gru" / "seed100.json").write_text(json.dumps(swept["gru"] | {"overrides": {"algo.lr": 1}}))
    with pytest.raises(ValueError, match="delete that JSON"):
        run_compare(compose("compare", overrides), overrides)


def test_per_task_settings_give_one_task_its_own_budget_for_every_arm(dataset, tmp_path):
    out = tmp_path / "compare"
    shutil.copytree(dataset, out / "datasets" / TASK)
    overrides = [f"out={out}", f"tasks=[{TASK}]", "seeds=[0]", "backbones=[gru,mlp]", "param_budget=5000",
                 "lr_sweep=null", "robustness={}", "collect.episodes=2", "train.steps=10", "train.batch_size=8",
                 "train.window=8", "train.eval_every=0", "train.eval_episodes=2", "train.eval_envs=1",
                 f"+per_task.{TASK}={{train: {{steps: 20}}, collect: {{episodes: 3}}}}"]  # fmt: skip
    run_compare(compose("compare", overrides), overrides)
    for name in ("gru", "mlp"):  # both arms trained on the task's own budget, and recorded it
        cell = json.loads((out / "cells" / TASK / name / "seed0.json").read_text())
        assert cell["history"][-1]["step"] == 20 and cell["train"]["steps"] == 20
    assert f"10 gradient steps (per task, for every arm alike: {TASK}: train.steps=20, collect.episodes=3)" in (
        out / "results.md").read_text()  # fmt: skip


def test_demo_runs_the_memory_grid_prints_what_it_shows_and_reads_finished_cells_back(tmp_path, capsys):
    out, task = tmp_path / "demo", "memory_reacher_d16"
    overrides = [f"out={out}", f"tasks=[{task}]", "backbones=[gru,mlp]", "param_budget=5000", "collect.episodes=4",
                 "train.steps=10", "train.batch_size=4", "train.eval_every=0", "train.eval_episodes=2",
                 "train.eval_envs=1", "jobs=1"]  # fmt: skip
    summary = run_demo(compose("demo", overrides), overrides)
    text = (out / "results.md").read_text()
    assert text.startswith(f"# Backbone comparison (demo profile)\n\nCommand: `cadence-demo profile=demo out={out} ")
    assert f"In short: {summary['reading']}" in text and (out / "memory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert summary["reading"].startswith("memory_reacher, success above halfway between chance (25%) and the expert "
                                         "(100%): at 16 steps ")  # fmt: skip
    assert f"\nWhat it shows: {summary['reading']}\nplots: {out / 'memory.png'}" in capsys.readouterr().out

    def finished() -> dict[str, float]:
        return {b: json.loads((out / "cells" / task / b / "seed0.json").read_text())["finished"]
                for b in ("gru", "mlp")}  # fmt: skip

    before = finished()
    run_demo(compose("demo", overrides), overrides)  # a re-run reads every cell back
    assert finished() == before
