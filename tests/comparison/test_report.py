"""The report built from cells: its tables (robustness, success rate, probability of improvement), figures
(performance profiles among them), the tuning section (every arm's curve per knob), the memory section (success vs
horizon, cost, memory horizon; its tasks read from the grid config), and the one writer of ``results.md``,
``summary.json`` and the PNGs."""

import json

import pytest

from cadence.comparison import (GRID_PLOTS, MEMORY_ENVS, LRSweep, SearchSpace, Tuning, grid_plots, grid_text, markdown,
                                memory_markdown, memory_reading, memory_summary, memory_tasks, plot_curves, plot_memory,
                                plot_profiles, summarize, sweep_text, write_report)  # fmt: skip
from cadence.configs import compose
from cadence.envs.registration import MEMORY_TASKS

TASK = "invertedpendulum_p"
PNG = b"\x89PNG\r\n\x1a\n"


def test_report_has_robustness_table_and_curves(cells, tmp_path):
    summary = summarize(cells)
    text = markdown(summary)
    assert "| backbone | clean | delay3 | noise |" in text
    assert text.count("\n| gru |") == 3 and text.count("\n| linoss |") == 2  # aggregate, P(linoss > gru), robustness
    assert summary["cells"][(TASK, "gru")]["curve"]["step"] == [10.0, 20.0]
    conv = summary["convergence"][TASK]  # the budget rule over the last 20 % of the steps: 10 -> 20
    curve = summary["cells"][(TASK, conv["arm"])]["curve"]["normalized_score"]
    assert conv["gain"] == curve[1] - curve[0] and f"| {TASK} | {conv['arm']} | {conv['gain']:+.1f} |" in text
    png = plot_curves(summary, tmp_path / "curves.png")
    assert png.read_bytes()[:8] == PNG
    assert "Success rate" not in text  # InvertedPendulum defines no success


def test_report_gives_the_success_rate_of_tasks_that_define_one(cells):
    reach = [r | {"task": "memory_reacher", "success_rate": s} for r, s in zip(cells, (0.25, 0.0))]
    text = markdown(summarize([*cells, *reach]))
    success = text.split("Success rate")[1].split("\n\n")[1].splitlines()
    assert success[0] == "| task | gru | linoss |"
    assert success[2:] == ["| memory_reacher | 25% | 0% |"]  # only the task with a success signal


def test_report_tables_the_scores_at_equal_seconds_and_marks_runs_that_ended_before_them(cells):
    """The real cells' histories, their clocks set by hand: gru's run ends at 4 s, linoss's evaluates at 3 and 9 s;
    T is the median of 4 and 9 s: 6.5 s, where linoss is at its first evaluation and gru at its end."""
    clocks = {"gru": (2.0, 4.0), "linoss": (3.0, 9.0)}
    timed = [c | {"history": [h | {"train_s": s} for h, s in zip(c["history"], clocks[c["backbone"]])]} for c in cells]
    summary = summarize(timed)
    text = markdown(summary)
    table = text.split("Equal seconds")[1].split("\n\n")[1].splitlines()
    score = {c["backbone"]: [h["normalized_score"] for h in c["history"]] for c in timed}
    assert table[0] == "| task | T (s) | gru | linoss |"
    assert table[2] == f"| {TASK} | 6 | {score['gru'][1]:.1f} † 1 | {score['linoss'][0]:.1f} |"


def test_write_report_writes_text_statistics_and_figures_and_a_copy(cells, tmp_path):
    summary = summarize(cells)
    out, copy = tmp_path / "out", tmp_path / "docs" / "report.md"
    write_report(out, "# title\n", summary, GRID_PLOTS, copy)
    assert (out / "results.md").read_text() == copy.read_text() == "# title\n"
    stats = json.loads((out / "summary.json").read_text())
    assert set(stats) == {f"{TASK}/gru", f"{TASK}/linoss"} and stats[f"{TASK}/gru"]["n"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["curves.png", "profiles.png", "results.md", "scores.png",
                                                     "summary.json"]  # fmt: skip
    assert sorted(p.name for p in copy.parent.iterdir()) == ["curves.png", "profiles.png", "report.md", "scores.png"]
    assert all((folder / "scores.png").read_bytes()[:8] == PNG for folder in (out, copy.parent))


def memory_cell(task, backbone, seed, success, **extra):
    """A finished cell as ``run_cell`` writes it (the keys the report reads)."""
    return {"task": task, "backbone": backbone, "seed": seed, "success_rate": success, "normalized_score": 50.0,
            "train_s": 100.0, "latency_ms_p50": 0.5, "params": 1000, "samples_per_s": 10.0, "history": []} | extra


def test_report_gives_the_probability_that_linoss_improves_on_each_arm_and_their_performance_profiles(tmp_path):
    # on task t linoss 60, 80 against gru 50, 70: 3 of the 4 pairs won; against mlp 90, 95: none; the transformer
    # has only the memory task, so no ranked task in common with linoss
    scores = {"linoss": (60.0, 80.0), "gru": (50.0, 70.0), "mlp": (90.0, 95.0)}
    results = [memory_cell("t", b, s, None, normalized_score=x) for b, xs in scores.items() for s, x in enumerate(xs)]
    results.append(memory_cell("mr_d16", "transformer", 0, 1.0))
    summary = summarize(results, unranked=MEMORY)
    table = markdown(summary).split("Probability of improvement")[1].split("\n\n")[1].splitlines()
    lo, hi = summary["improvement"][("linoss", "gru")]["ci"]
    assert table == ["| arm | P(linoss > arm) [95% CI] | tasks |", "|---|---|---|",
                     f"| gru | 0.75 [{lo:.2f}, {hi:.2f}] | 1 |", "| mlp | 0.00 [0.00, 0.00] | 1 |"]  # fmt: skip
    assert "Probability of improvement" not in markdown(summarize([r for r in results if r["backbone"] != "linoss"]))
    text = grid_text(compose("compare"), summary, [], "full", summary["tasks"], 60.0)
    assert "![profiles](profiles.png)" in text
    assert "profiles.png" not in grid_text(compose("compare"), summarize(results[-1:], unranked=MEMORY), [], "full",
                                           [], 60.0)  # only memory tasks: nothing ranked to profile  # fmt: skip
    assert GRID_PLOTS["profiles.png"] is plot_profiles
    assert plot_profiles(summary, tmp_path / "profiles.png").read_bytes()[:8] == PNG
    assert plot_profiles(summarize(results[-1:], unranked=MEMORY), tmp_path / "none.png").read_bytes()[:8] == PNG


OUT_OF_BUDGET = {"status": "out_of_budget", "s_per_step": 2.5, "peak_memory_mb": 12000.0}
MEMORY = {f"mr_d{d}": ("memory_reacher", d) for d in (16, 256, 4096)} | {f"dt_k{k}": ("delayed_tracking", k)
                                                                          for k in (1, 4)}  # fmt: skip
LEVELS = {"memory_reacher": (0.25, 1.0), "delayed_tracking": (0.0, 1.0)}


def memory_results() -> list[dict]:
    """linoss falls from 100% at D = 16 to 50% at 256 and chance at 4096; the transformer holds 90% at 256 and is
    out of budget at 4096; on tracking, gru is below the threshold at k = 1 and one of its k = 4 seeds is out of
    budget; and one cell of a task that is not a memory task."""
    linoss = [memory_cell(f"mr_d{d}", "linoss", s, x, s_per_step=0.05, peak_memory_mb=300.0)
              for d, x in ((16, 1.0), (256, 0.5), (4096, 0.25)) for s in (0, 1)]  # fmt: skip
    transformer = [memory_cell("mr_d16", "transformer", s, 1.0) for s in (0, 1)] + [
        memory_cell("mr_d256", "transformer", 0, 1.0), memory_cell("mr_d256", "transformer", 1, 0.8),
        *({"task": "mr_d4096", "backbone": "transformer", "seed": s} | OUT_OF_BUDGET for s in (0, 1))]  # fmt: skip
    gru = [memory_cell("dt_k1", "gru", 0, 0.4), memory_cell("dt_k4", "gru", 0, 0.2),
           {"task": "dt_k4", "backbone": "gru", "seed": 1} | OUT_OF_BUDGET]  # fmt: skip
    return [*linoss, *transformer, *gru, memory_cell(TASK, "linoss", 0, None)]


def test_the_memory_reading_names_who_stays_above_the_threshold_at_the_shortest_and_longest_dial():
    reading = memory_reading(memory_summary(memory_results(), MEMORY, LEVELS))
    assert reading == ("memory_reacher, success above halfway between chance (25%) and the expert (100%): at 16 steps "
                       "linoss 100%, transformer 100%; at 4096 steps none (below: linoss 25%; out of budget: "
                       "transformer). delayed_tracking, success above halfway between chance (0%) and the expert "
                       "(100%): at 1 steps none; at 4 steps none (below: gru 20%).")  # fmt: skip


def test_memory_section_tables_success_horizon_and_cost_with_out_of_budget_cells_shown():
    text = memory_markdown(memory_summary(memory_results(), MEMORY, LEVELS))
    reach, tracking = text.split("### memory_reacher")[1].split("### delayed_tracking")
    assert "Memory horizon: the largest dial" in text and "Chance: the success of the best policy" in text
    assert "(chance 25%, expert 100%, threshold 62.5%)" in reach
    assert "(chance 0%, expert 100%, threshold 50%)" in tracking
    assert "| backbone | 16 | 256 | 4096 | memory horizon |" in reach
    # linoss: 100% at 16, 50% at 256 crosses 62.5% at (1 − 0.625) / 0.5 = 3/4 of log2 16 = 4 → 8: 2^7 = 128
    assert "| linoss | 100% [100, 100] (n=2) | 50% [50, 50] (n=2) | 25% [25, 25] (n=2) | 128 |" in reach
    assert ("| transformer | 100% [100, 100] (n=2) | 90% [80, 100] (n=2) | out of budget (2.5 s/step, 12,000 MB) | "
            "≥ 256 |") in reach  # fmt: skip
    assert "| linoss | 100 s, 0.05 s/step, 300 MB | 100 s, 0.05 s/step, 300 MB | 100 s, 0.05 s/step, 300 MB |" in reach
    assert "| transformer | 100 s | 100 s | out of budget: 2.5 s/step, 12,000 MB |" in reach
    assert "| gru | 40% [40, 40] (n=1) | 20% [20, 20] (n=1, 1 out of budget) | < 1 |" in tracking
    assert "| gru | 100 s | 100 s |" in tracking and TASK not in text


def test_memory_plot_and_grid_plots_write_memory_png_only_for_a_grid_with_memory_tasks(tmp_path):
    memory = memory_summary(memory_results(), MEMORY, LEVELS)
    assert plot_memory(memory, tmp_path / "memory.png").read_bytes()[:8] == PNG
    assert [p.name for p in tmp_path.iterdir()] == ["memory.png"]  # written atomically: no temporary file left
    assert grid_plots({}) == GRID_PLOTS and set(grid_plots(memory)) == {*GRID_PLOTS, "memory.png"}
    grid_plots(memory)["memory.png"]({}, tmp_path / "again.png")
    assert (tmp_path / "again.png").read_bytes()[:8] == PNG


def test_a_report_of_out_of_budget_cells_only_writes_its_text_and_the_memory_figure(tmp_path):
    # the memory grid's D = 4096 task, run for mamba alone: every cell out of budget, nothing to draw bars of
    results = [r for r in memory_results() if r["task"] == "mr_d4096" and r["backbone"] == "transformer"]
    summary = summarize(results)
    assert summary["cells"] == {}
    write_report(tmp_path, "# title\n", summary, grid_plots(memory_summary(results, MEMORY, LEVELS)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memory.png", "results.md", "summary.json"]


def test_grid_report_appends_the_memory_section_and_ranks_without_the_memory_tasks():
    results = memory_results()
    summary = summarize(results, unranked=MEMORY)
    text = grid_text(compose("compare"), summary, [], "full", summary["tasks"], 60.0, "",
                     memory_summary(results, MEMORY, LEVELS))  # fmt: skip
    head, section = text.split("## Memory: success vs horizon")
    assert "The IQM leaves out the memory tasks (dt_k1, dt_k4, mr_d16, mr_d256, mr_d4096)" in head
    assert "| linoss | 50.0 [50.0, 50.0] | 1 |" in head  # the IQM of its one non-memory cell only
    assert "| gru | – | 0 |" in head  # only memory tasks: not ranked
    assert "| linoss | 100% [100, 100] (n=2) |" in section and section.endswith("![memory](memory.png)\n")
    assert "Memory" not in grid_text(compose("compare"), summarize(results), [], "full", [], 60.0)


def test_memory_tasks_come_from_the_composed_env_configs_of_the_grid():
    variants = ["+variants.mr_d16={env: memory_reacher, kwargs: {delay_steps: 16}}",
                "+variants.dt_k4={env: delayed_tracking, kwargs: {lag_steps: 4}}"]  # fmt: skip
    cfg = compose("compare", ["tasks=[invertedpendulum_p,mr_d16,memory_reacher,dt_k4]", *variants])
    memory, levels = memory_tasks(cfg)
    assert memory == {"mr_d16": ("memory_reacher", 16), "memory_reacher": ("memory_reacher", 64),  # the default D
                      "dt_k4": ("delayed_tracking", 4)}  # fmt: skip
    assert levels == {"memory_reacher": (0.25, 1.0), "delayed_tracking": (0.0, 1.0)}
    eight = "+variants.k8={env: memory_reacher, kwargs: {num_targets: 8, delay_steps: 16}}"
    assert memory_tasks(compose("compare", ["tasks=[k8]", eight]))[1] == {"memory_reacher": (0.125, 1.0)}  # 1/K
    with pytest.raises(ValueError, match="k8 gives memory_reacher other .* success levels"):
        memory_tasks(compose("compare", ["tasks=[memory_reacher,k8]", eight]))
    with pytest.raises(ValueError, match="memory_reacher and mr_d64 are both memory_reacher at delay_steps=64"):
        memory_tasks(compose("compare", ["tasks=[memory_reacher,mr_d64]",
                                         "+variants.mr_d64={env: memory_reacher, kwargs: {delay_steps: 64}}"]))


def test_every_memory_task_id_has_its_dial_and_levels():
    assert set(MEMORY_ENVS) == set(MEMORY_TASKS)


def test_sweep_section_gives_every_arms_curve_per_knob_and_where_its_optimum_lies():
    sweep = LRSweep(TASK, [100], [1e-4, 1e-3, 1e-2], 1)
    linoss = SearchSpace("linoss", {"lr": 1e-3, "rlr": 1.0, "dropout": 0.0}, {"rlr": [0.1, 0.3, 1.0],
                                                                              "dropout": [0.0, 0.1]}, 4)  # fmt: skip
    gru = SearchSpace("gru", {"lr": 1e-3}, {}, 7)
    tunings = [Tuning(linoss, {"lr": {1e-4: 50.0, 3.16e-4: 80.0, 1e-3: 70.0, 1e-2: 60.0},
                               "rlr": {1.0: 80.0, 0.1: 85.0, 0.3: 90.0}, "dropout": {0.0: 90.0, 0.1: 95.0}},
                      {"lr": 3.16e-4, "rlr": 0.3, "dropout": 0.1}, []),
               Tuning(gru, {"lr": {1e-5: 80.0, 1e-4: 60.0, 1e-3: 50.0, 1e-2: 40.0}}, {"lr": 1e-5}, [])]  # fmt: skip
    text = sweep_text(sweep, tunings)
    assert text.startswith(f"Tuning on {TASK}, seed 100 (a tuning seed, never an evaluation seed")
    rows = text.split("| chosen | optimum |\n|---|---|---|---|---|\n")[1].split("\n\n")
    assert rows[0].splitlines() == [
        "| linoss | lr | 0.0001: 50.0 · **0.000316: 80.0** · 0.001: 70.0 (own) · 0.01: 60.0 | 0.000316 | interior |",
        "| linoss | rlr | 0.1: 85.0 · **0.3: 90.0** · 1: 80.0 (own) | 0.3 | interior |",
        "| linoss | dropout | 0: 90.0 (own) · **0.1: 95.0** | 0.1 | highest value |",
        "| gru | lr | **1e-05: 80.0** · 0.0001: 60.0 · 0.001: 50.0 (own) · 0.01: 40.0 | 1e-05 | lowest value |"]
    assert rows[1].splitlines() == ["| arm | trials | tuned arm |", "|---|---|---|",
                                    "| linoss | 7 | linoss@lr0.000316@rlr0.3@dropout0.1 |", "| gru | 4 | gru@lr1e-05 |"]
