"""The protocols: ``cadence-compare``'s grid (the tuning on a tuning seed, equal trials for every arm over its own
search space, then the grid at each arm's best values;
per-task budgets; finished cells that no longer match the grid refused) and ``cadence-demo``'s memory grid."""

import json
import shutil

import pytest

from cadence.comparison import LRSweep, demonstrations_task, resolve_arms, run_compare, run_demo
from cadence.configs import compose
from cadence.datasets.format import STATE

TASK = "invertedpendulum_p"


def tiny_grid(out, *overrides: str) -> list[str]:
    """The overrides of a grid small enough for a test, at ``out``: one MLP seed on TASK, 10 steps, then
    ``overrides`` (a later value of a key wins)."""
    return [f"out={out}", f"tasks=[{TASK}]", "seeds=[0]", "backbones=[mlp]", "param_budget=5000", "robustness={}",
            "collect.episodes=3", "train.steps=10", "train.batch_size=8", "train.window=8", "train.eval_every=0",
            "train.eval_episodes=2", "train.eval_envs=1", *overrides]  # fmt: skip


def test_compare_tunes_each_arm_with_equal_trials_then_runs_the_grid_at_its_best_values(dataset, tmp_path):
    out = tmp_path / "compare"
    shutil.copytree(dataset, out / "datasets" / TASK)
    overrides = tiny_grid(out, "seeds=[0,1]", "backbones=[gru,mlp]", "train.steps=30", f"lr_sweep.task={TASK}",
                          "lr_sweep.lrs=[1e-3,3e-2]", "lr_sweep.max_extensions=1", "lr_sweep.search=null",
                          "lr_sweep.search={common: {dropout: [0.0, 0.1]}, per_arm: {mlp: {n_layers: [1, 2]}}}")
    summary = run_compare(compose("compare", overrides), overrides)
    swept = {p.parent.name: json.loads(p.read_text()) for p in (out / "cells" / TASK).glob("*/seed100.json")}
    scores = {name: r["normalized_score"] for name, r in swept.items()}
    sweep = LRSweep(TASK, [100], [1e-3, 3e-2], 1, {"common": {"dropout": [0.0, 0.1]},
                                                 "per_arm": {"mlp": {"n_layers": [1, 2]}}})  # fmt: skip
    tunings = [s.replay(sweep, swept) for s in sweep.spaces(resolve_arms(["gru", "mlp"], {}), {}, {"lr": 1e-3})]
    # one budget: 2 rates + 1 extension + 2 knob values (mlp: 1 layer, dropout 0.1); gru refines its rate instead
    for t, knobs in zip(tunings, ({"dropout": 2}, {"n_layers": 2, "dropout": 2})):
        mine = {n: s for n, s in scores.items() if n.partition("@")[0] == t.space.arm}
        assert len(mine) == t.trials == 5 and not t.pending
        assert {tag: len(c) for tag, c in t.curves.items() if tag != "lr"} == knobs
        assert mine[t.name] == max(mine.values())  # the tuned arm is the best trial on the tuning seed
    assert len(tunings[0].curves["lr"]) == 4 and len(tunings[1].curves["lr"]) == 3
    tuned = [t.name for t in tunings]
    assert summary["backbones"] == tuned  # the grid trains every arm at its best values, on its evaluation seeds
    assert all(summary["cells"][(TASK, a)]["n"] == 2 for a in tuned)
    one_layer = tunings[1].space.name({"lr": tunings[1].best["lr"], "n_layers": 1})  # at mlp's best rate
    assert swept[one_layer]["overrides"]["policy.backbone_kwargs.n_layers"] == 1
    report = (out / "results.md").read_text()
    assert "| chosen | optimum |" in report and f"| {tuned[0]} |" in report and "| mlp | n_layers | " in report
    assert "| arm | trials | tuned arm |\n|---|---|---|\n| gru | 5 |" in report
    assert report.startswith("# Backbone comparison (full profile)\n\nCommand: `cadence-compare out=")
    assert set(json.loads((out / "summary.json").read_text())) == {f"{TASK}/{a}" for a in tuned}
    assert (out / "scores.png").exists() and (out / "curves.png").exists()
    assert swept["gru"]["train"]["steps"] == 30 and swept["gru@lr0.03"]["overrides"] == {"algo.lr": 0.03}
    reported = run_compare(compose("compare", [*overrides, "finished_only=true"]), overrides)  # the sweep replayed
    assert reported["backbones"] == tuned and reported["cells"] == summary["cells"]
    longer = [*overrides, "train.steps=31"]  # a changed grid setting: the finished cells no longer match it
    with pytest.raises(ValueError, match="trained with train"):
        run_compare(compose("compare", longer), longer)
    (out / "cells" / TASK / "gru" / "seed100.json").write_text(json.dumps(swept["gru"] | {"overrides": {"algo.lr": 1}}))
    with pytest.raises(ValueError, match="delete that JSON"):
        run_compare(compose("compare", overrides), overrides)


def test_a_sweep_on_two_tuning_seeds_runs_every_trial_on_both_and_keeps_the_best_mean(dataset, tmp_path):
    out = tmp_path / "compare"
    shutil.copytree(dataset, out / "datasets" / TASK)
    overrides = tiny_grid(out, f"lr_sweep.task={TASK}", "lr_sweep.seeds=[100,101]", "lr_sweep.lrs=[1e-3,3e-2]",
                          "lr_sweep.max_extensions=0", "lr_sweep.search=null")
    summary = run_compare(compose("compare", overrides), overrides)
    cells = out / "cells" / TASK
    trials = {p.relative_to(cells).as_posix(): json.loads(p.read_text())["normalized_score"]
              for p in cells.glob("*/seed10?.json")}  # fmt: skip
    assert sorted(trials) == ["mlp/seed100.json", "mlp/seed101.json", "mlp@lr0.03/seed100.json",
                              "mlp@lr0.03/seed101.json"]  # fmt: skip
    mean = {a: (trials[f"{a}/seed100.json"] + trials[f"{a}/seed101.json"]) / 2 for a in ("mlp", "mlp@lr0.03")}
    assert summary["backbones"] == [max(mean, key=mean.get)]
    assert f"| mlp | lr | 0.001: {mean['mlp']:.1f} (own)" in (out / "results.md").read_text().replace("**", "")
    assert "Tuning on invertedpendulum_p, seeds [100, 101] (tuning seeds" in (out / "results.md").read_text()


def test_per_task_settings_give_one_task_its_own_budget_for_every_arm(dataset, tmp_path):
    out = tmp_path / "compare"
    shutil.copytree(dataset, out / "datasets" / TASK)
    overrides = tiny_grid(out, "backbones=[gru,mlp]", "lr_sweep=null", "collect.episodes=2",
                          f"+per_task.{TASK}={{train: {{steps: 20}}, collect: {{episodes: 3}}}}")
    run_compare(compose("compare", overrides), overrides)
    for name in ("gru", "mlp"):  # both arms trained on the task's own budget, and recorded it
        cell = json.loads((out / "cells" / TASK / name / "seed0.json").read_text())
        assert cell["history"][-1]["step"] == 20 and cell["train"]["steps"] == 20
    assert f"10 gradient steps (per task, for every arm alike: {TASK}: train.steps=20, collect.episodes=3)" in (
        out / "results.md").read_text()  # fmt: skip
    shutil.rmtree(out / "datasets")  # finished cells need no dataset: a re-run collects nothing
    run_compare(compose("compare", overrides), overrides)
    partial = [o.replace("backbones=[gru,mlp]", "backbones=[gru,mlp,linoss]") for o in overrides] + ["finished_only=true"]
    run_compare(compose("compare", partial), partial)  # a grid in progress: reported, linoss not trained
    assert not (out / "datasets").exists() and not (out / "cells" / TASK / "linoss").exists()
    assert "**A grid in progress: 2 of its 3 cells are finished**" in (out / "results.md").read_text()
    run_compare(compose("compare", overrides + ["finished_only=true"]), overrides)  # every cell done: no banner
    assert "A grid in progress" not in (out / "results.md").read_text()


def test_a_task_trains_on_another_tasks_demonstrations_through_the_features_it_names(dataset, tmp_path):
    out = tmp_path / "compare"
    shutil.copytree(dataset, out / "datasets" / TASK)  # the only dataset: nothing is collected for the control
    state = "[observation.environment_state]"
    overrides = tiny_grid(out, "tasks=[ip_full]", "lr_sweep=null",
                          f"+variants.ip_full={{env: invertedpendulum, demonstrations: {TASK}}}",
                          f"+per_task.ip_full={{train: {{observation_keys: {state}}}}}")
    run_compare(compose("compare", overrides), overrides)
    assert sorted(p.name for p in (out / "datasets").iterdir()) == [TASK]
    run_dir = out / "runs" / "ip_full" / "mlp" / "seed0"
    config = json.loads((run_dir / "checkpoints" / "last" / "config.json").read_text())
    run = config["extra"]["run"]  # what the cell trained on: the borrowed dataset's full state
    assert run["dataset"] == str(out / "datasets" / TASK) and run["observation_keys"] == [STATE]
    assert (out / "cells" / "ip_full" / "mlp" / "seed0.json").exists()


def test_a_chain_of_borrowed_demonstrations_is_refused():
    variants = {"a": {"env": "invertedpendulum", "demonstrations": "b"},
                "b": {"env": "invertedpendulum", "demonstrations": TASK}}  # fmt: skip
    assert demonstrations_task("b", variants).name == TASK
    with pytest.raises(ValueError, match="names b, which trains on the demonstrations of invertedpendulum_p itself"):
        demonstrations_task("a", variants)


def test_demo_runs_the_memory_grid_prints_what_it_shows_and_reads_finished_cells_back(tmp_path, capsys):
    out, task = tmp_path / "demo", "memory_reacher_d16"
    overrides = [f"out={out}", f"tasks=[{task}]", "backbones=[gru,mlp]", "param_budget=5000", "collect.episodes=4",
                 "train.steps=10", "train.batch_size=4", "train.eval_every=0", "train.eval_episodes=2",
                 "train.eval_envs=1", "jobs=1"]  # fmt: skip
    summary = run_demo(compose("demo", overrides), overrides)
    text = (out / "results.md").read_text()
    assert text.startswith(f"# Backbone comparison (demo profile)\n\nCommand: `cadence-demo out={out} ")
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


def test_the_demo_refuses_fewer_than_one_job_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match=r"jobs must be >= 1 \(cells at a time\), got 0"):
        run_demo(compose("demo", [f"out={tmp_path}", "jobs=0"]))
    assert not any(tmp_path.iterdir())


def test_finished_only_refuses_a_grid_whose_tuning_has_not_finished(tmp_path):
    overrides = [f"out={tmp_path}", "finished_only=true"]  # compare.yaml's default grid tunes (lr_sweep)
    with pytest.raises(ValueError, match=r"the tuning on hopper_p has not finished: 25 trial\(s\) of its next round"):
        run_compare(compose("compare", overrides), overrides)
    assert not any(tmp_path.iterdir())  # nothing trained, nothing collected


def test_the_budget_rule_trains_a_task_that_has_not_converged_again_at_a_larger_budget(dataset, tmp_path, monkeypatch):
    from cadence.comparison import protocol

    out = tmp_path / "compare"
    shutil.copytree(dataset, out / "datasets" / TASK)
    overrides = tiny_grid(out, "lr_sweep=null", "train.eval_every=5", "budget.rounds=1")
    seen = []  # the cells each round judged; every round "still rising", so exactly one more round runs

    def rising(runs):
        seen.append(sorted({r["task"] for r in runs}))
        return {"arm": "mlp", "gain": 5.0, "converged": False}

    monkeypatch.setattr(protocol, "task_convergence", rising)
    summary = run_compare(compose("compare", overrides), overrides)
    assert seen == [[TASK], [f"{TASK}@steps20"]]
    longer = json.loads((out / "cells" / f"{TASK}@steps20" / "mlp" / "seed0.json").read_text())
    assert longer["train"]["steps"] == 20 and longer["history"][-1]["step"] == 20
    assert sorted(p.name for p in (out / "datasets").iterdir()) == [TASK]  # the larger budget reuses the task's data
    assert summary["cells"][(TASK, "mlp")]["curve"]["step"][-1] == 20  # the tables report the last round
    assert [r["steps"] for r in summary["budget_rounds"][TASK]] == [10, 20]
    assert f"| {TASK} | 10 (+5.0) → 20 (+5.0) |" in (out / "results.md").read_text()
    monkeypatch.undo()
    again = [*overrides[:-1], "budget.rounds=0"]  # the rule reported only: the first round's cells, as before
    assert run_compare(compose("compare", again), again)["cells"][(TASK, "mlp")]["curve"]["step"][-1] == 10


def test_budget_tags_and_settings_are_checked():
    from cadence.comparison.grid import Budget, budget_task, task_settings

    assert budget_task("hopper_p@steps6000") == ("hopper_p", 6000) and budget_task("hopper_p") == ("hopper_p", None)
    with pytest.raises(ValueError, match="@stepsN with N > 0"):
        budget_task("hopper_p@steps0")
    cfg = compose("compare", ["+per_task.hopper_p={train: {eval_every: 7}}"])
    assert task_settings(cfg, "hopper_p@steps9")[1] | {} == task_settings(cfg, "hopper_p")[1] | {"steps": 9}
    assert demonstrations_task("hopper_p@steps9", cfg.variants).name == "hopper_p"
    for bad, match in (({"rounds": -1}, "budget.rounds"), ({"factor": 1}, "budget.factor")):
        with pytest.raises(ValueError, match=match):
            Budget(**bad)


def test_a_converged_task_is_judged_once_while_another_gets_more_rounds(dataset, tmp_path, monkeypatch):
    from cadence.comparison import protocol

    out = tmp_path / "compare"
    shutil.copytree(dataset, out / "datasets" / TASK)
    overrides = tiny_grid(out, f"tasks=[{TASK},ip2]", "lr_sweep=null", "train.eval_every=5", "budget.rounds=2",
                          f"+variants.ip2={{env: invertedpendulum_p, demonstrations: {TASK}}}")
    monkeypatch.setattr(protocol, "task_convergence",
                        lambda runs: {"arm": "mlp", "gain": 5.0, "converged": runs[0]["task"] == "ip2"})
    summary = run_compare(compose("compare", overrides), overrides)
    assert [r["steps"] for r in summary["budget_rounds"]["ip2"]] == [10]
    assert [r["steps"] for r in summary["budget_rounds"][TASK]] == [10, 20, 40]
