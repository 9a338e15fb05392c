"""The statistics of a comparison: the IQM, bootstrap CIs (plain and stratified by task), performance profiles
and the probability of improvement (rliable's formulas), learning curves, the per-cell / per-backbone summary,
and the memory tasks' success vs horizon."""

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from cadence.comparison import (Horizon, bootstrap_ci, convergence, equal_seconds, improvement_ci, iqm, learning_curve,
                                memory_horizon, memory_summary, performance_profile, probability_of_improvement,
                                score_distribution, stratified_bootstrap_ci, stratified_iqm_ci, summarize)  # fmt: skip


def test_iqm_drops_the_outer_quartiles():
    assert iqm(np.array([0, 1, 2, 3, 4, 5, 6, 1000])) == 3.5  # the mean of 2..5: the outlier is ignored
    assert iqm(np.array([1, 2, 9])) == 4.0  # fewer than 4 values: the plain mean


def test_bootstrap_intervals_bracket_the_statistic():
    assert bootstrap_ci(np.array([7.0])) == (7.0, 7.0)
    lo, hi = bootstrap_ci(np.array([1.0, 2.0, 3.0, 10.0]))
    assert 1.0 <= lo < 4.0 < hi <= 10.0
    assert stratified_iqm_ci({"a": np.array([10.0, 10.0]), "b": np.array([20.0, 20.0])}) == (15.0, 15.0)


def test_stratified_bootstrap_resamples_runs_within_each_task_only():
    # a task's resample only ever holds its own runs: a mean per task has its interval inside that task's range
    by_task = {"a": np.array([0.0, 1.0, 2.0]), "b": np.array([10.0, 11.0])}
    lo, hi = stratified_bootstrap_ci(lambda s: np.array([s["a"].mean(), s["b"].mean()]), by_task, n=500)
    assert lo.shape == hi.shape == (2,) and 0 <= lo[0] < 1 < hi[0] <= 2 and 10 <= lo[1] < 10.5 < hi[1] <= 11
    # two score sets are resampled independently: x's constant runs stay constant whatever y's do
    x, y = {"a": np.array([5.0, 5.0])}, {"a": np.array([0.0, 9.0])}
    lo, hi = stratified_bootstrap_ci(lambda u, v: u["a"].mean() - v["a"].mean(), x, y, n=500)
    assert (lo, hi) == (-4.0, 5.0)
    many = {"a": np.arange(20.0) ** 2}
    assert stratified_iqm_ci(many, seed=1) == stratified_iqm_ci(many, seed=1) != stratified_iqm_ci(many)  # seeded


# rliable's worked inputs, small enough to count by hand: task a, x = 1, 2, 3 against y = 2, 4: of the 6 pairs x
# wins 3 > 2 and ties 2 = 2: (1 + ½) / 6 = 1/4; task b, x = 5, 5 against y = 5, 1, 0: each 5 ties once and wins
# twice: 2 × 2.5 / 6 = 5/6; the mean over tasks: (1/4 + 5/6) / 2 = 13/24
X = {"a": np.array([1.0, 2.0, 3.0]), "b": np.array([5.0, 5.0])}
Y = {"a": np.array([2.0, 4.0]), "b": np.array([5.0, 1.0, 0.0])}


def test_probability_of_improvement_counts_the_pairs_won_with_ties_as_half():
    assert probability_of_improvement(X, Y) == pytest.approx(13 / 24)
    # rliable's per-task value: the Mann-Whitney U statistic over the n·m pairs
    assert probability_of_improvement(X, Y) == pytest.approx(
        np.mean([mannwhitneyu(X[t], Y[t]).statistic / (len(X[t]) * len(Y[t])) for t in X]))  # fmt: skip
    assert probability_of_improvement(Y, X) == pytest.approx(1 - 13 / 24)  # P(Y > X) = 1 − P(X > Y)
    assert probability_of_improvement(X, X) == 0.5  # identical distributions
    assert probability_of_improvement({"a": np.array([3.0, 4.0])}, {"a": np.array([1.0, 2.0, 2.5])}) == 1.0
    assert probability_of_improvement({"a": np.array([7.0])}, {"a": np.array([7.0]), "b": np.array([0.0])}) == 0.5


def test_improvement_ci_holds_the_estimate_narrows_with_runs_and_is_seeded():
    lo, hi = improvement_ci(X, Y)
    assert 0 <= lo < probability_of_improvement(X, Y) < hi <= 1
    more = {t: np.tile(v, 8) for t, v in X.items()}, {t: np.tile(v, 8) for t, v in Y.items()}  # same P, 8× runs
    assert probability_of_improvement(*more) == pytest.approx(13 / 24)
    lo8, hi8 = improvement_ci(*more)
    assert lo < lo8 < 13 / 24 < hi8 < hi
    assert improvement_ci(X, Y, seed=3) == improvement_ci(X, Y, seed=3) != improvement_ci(X, Y, seed=4)
    assert improvement_ci({"a": np.array([2.0, 3.0])}, {"a": np.array([0.0, 1.0])}) == (1.0, 1.0)  # always wins


def test_performance_profile_is_the_fraction_of_runs_above_each_threshold_averaged_over_tasks():
    # τ = 2: a has 1 of its 3 runs above, b both of its 2: (1/3 + 1) / 2 = 2/3 (tasks weighted alike, not runs: 3/5)
    assert score_distribution(X, np.array([0.0, 2.0, 3.0, 5.0])) == pytest.approx([1.0, 2 / 3, 0.5, 0.0])
    profile = performance_profile(X, [-1.0, 2.0, 6.0], n=500)
    assert profile.fraction[0] == 1.0 and profile.fraction[2] == 0.0  # below every score, above every score
    assert profile.lo[[0, 2]].tolist() == profile.hi[[0, 2]].tolist() == [1.0, 0.0]  # so in every resample
    assert profile.fraction[1] == pytest.approx(2 / 3) and profile.lo[1] < profile.fraction[1] < profile.hi[1]
    wide = profile.hi[1] - profile.lo[1]
    tiled = performance_profile({t: np.tile(v, 8) for t, v in X.items()}, [-1.0, 2.0, 6.0], n=500)
    assert tiled.fraction[1] == pytest.approx(2 / 3) and tiled.hi[1] - tiled.lo[1] < wide  # more runs: narrower
    again = performance_profile(X, [-1.0, 2.0, 6.0], n=500)
    assert np.array_equal(again.lo, profile.lo) and np.array_equal(again.hi, profile.hi)  # seeded


def test_learning_curve_averages_the_evaluations_every_run_has():
    runs = [{"history": [{"step": 10, "train_s": 1.0, "normalized_score": 20.0},
                         {"step": 20, "train_s": 3.0, "normalized_score": 40.0}]},
            {"history": [{"step": 10, "train_s": 2.0, "normalized_score": 30.0}]},
            {"history": []}]  # a cell written before histories were recorded  # fmt: skip
    assert learning_curve(runs) == {"step": [10.0], "train_s": [1.5], "normalized_score": [25.0]}


def run(task, backbone, seed, score, success=None):
    return {"task": task, "backbone": backbone, "seed": seed, "normalized_score": score, "latency_ms_p50": 0.5,
            "train_s": 10.0, "params": 1000, "samples_per_s": 100.0, "success_rate": success, "history": []}


def test_summary_aggregates_each_cell_over_seeds_and_each_backbone_over_tasks():
    results = [run("b_task", "gru", 0, 50.0, 0.5), run("b_task", "gru", 1, 70.0, 1.0), run("a_task", "gru", 0, 90.0),
               run("a_task", "mlp", 0, 10.0)]  # fmt: skip
    s = summarize(results)
    assert s["tasks"] == ["a_task", "b_task"] and s["backbones"] == ["gru", "mlp"]
    b_gru = s["cells"][("b_task", "gru")]
    assert b_gru["mean"] == 60.0 and b_gru["n"] == 2 and b_gru["params"] == 1000
    assert b_gru["success_rate"] == 0.75 and s["cells"][("a_task", "gru")]["success_rate"] is None
    assert ("b_task", "mlp") not in s["cells"]
    assert s["aggregate"]["gru"]["n"] == 3 and s["aggregate"]["gru"]["iqm"] == pytest.approx(70.0)
    assert s["aggregate"]["mlp"] == {"iqm": 10.0, "ci": (10.0, 10.0), "n": 1}


def test_summary_ranks_only_the_tasks_that_are_not_unranked():
    results = [run("a_task", "gru", 0, 90.0), run("mem", "gru", 0, 10.0, 0.25), run("mem", "mlp", 0, 80.0, 0.0)]
    s = summarize(results, unranked={"mem", "not_in_the_grid"})
    assert s["unranked"] == ["mem"] and s["cells"][("mem", "gru")]["success_rate"] == 0.25  # still tabulated
    assert s["aggregate"]["gru"] == {"iqm": 90.0, "ci": (90.0, 90.0), "n": 1}  # the memory task's 10 left out
    assert s["aggregate"]["mlp"]["n"] == 0 and np.isnan(s["aggregate"]["mlp"]["iqm"])  # nothing left to rank
    assert summarize(results)["aggregate"]["gru"]["iqm"] == 50.0 and summarize(results)["unranked"] == []


def test_summary_profiles_every_ranked_arm_and_gives_the_probability_that_linoss_improves_on_each_other():
    # on a_task linoss 60, 80 against gru 50, 70: it wins 3 of the 4 pairs; b_task (gru only) and mem (unranked)
    # are not shared; mlp has only the memory task
    results = [run("a_task", "linoss", 0, 60.0), run("a_task", "linoss", 1, 80.0), run("a_task", "gru", 0, 50.0),
               run("a_task", "gru", 1, 70.0), run("b_task", "gru", 0, 0.0), run("mem", "linoss", 0, 0.0),
               run("mem", "gru", 0, 100.0), run("mem", "mlp", 0, 100.0)]  # fmt: skip
    s = summarize(results, unranked={"mem"})
    assert list(s["improvement"]) == [("linoss", "gru")]
    p = s["improvement"][("linoss", "gru")]
    assert p["p"] == 0.75 and p["tasks"] == 1 and p["ci"][0] < 0.75 < p["ci"][1]
    assert set(s["profiles"]) == {"linoss", "gru"}  # mlp has no ranked task
    gru = s["profiles"]["gru"]
    # thresholds span 0 to 100 (no ranked score beyond): 101 of them, one per point; gru at τ = 60: a_task 1 of 2,
    # b_task 0 of 1, (1/2 + 0) / 2
    assert np.array_equal(gru.taus, np.arange(101.0)) and gru.fraction[60] == 0.25
    assert summarize(results, unranked={"mem"}, reference="gru")["improvement"][("gru", "linoss")]["p"] == 0.25
    assert summarize([r for r in results if r["backbone"] != "linoss"])["improvement"] == {}


def test_memory_horizon_interpolates_in_log_dial_between_the_last_dial_above_and_the_first_below():
    # threshold (0.25 + 1) / 2 = 0.625, crossed between 64 (0.9) and 256 (0.5): (0.9 − 0.625) / (0.9 − 0.5) =
    # 0.6875 of the way from log2 64 = 6 to log2 256 = 8, i.e. 2^7.375 = 165.98
    h = memory_horizon([16, 64, 256, 1024], [1.0, 0.9, 0.5, 0.2], chance=0.25, expert=1.0)
    assert h.relation == "=" and h.dial == pytest.approx(2**7.375) and str(h) == "166"
    assert memory_horizon([1024, 16, 256, 64], [0.2, 1.0, 0.5, 0.9], 0.25, 1.0) == h  # dials in any order
    # tracking, chance 0 and expert 1: threshold 0.5, crossed (0.8 − 0.5) / 0.8 = 0.375 of the way from log2 1 = 0
    # to log2 4 = 2: 2^0.75 = 1.68
    tracking = memory_horizon([1, 4, 16], [0.8, 0.0, 0.0], chance=0.0, expert=1.0)
    assert tracking.dial == pytest.approx(2**0.75) and str(tracking) == "1.68"


def test_memory_horizon_bounds_the_first_crossing_and_skips_unmeasured_dials():
    assert memory_horizon([16, 64, 256], [1.0, 0.9, 0.7], 0.25, 1.0) == Horizon("≥", 256.0)  # never below
    assert str(memory_horizon([16, 64, 256], [1.0, 0.9, 0.7], 0.25, 1.0)) == "≥ 256"
    assert memory_horizon([16, 64], [0.6, 1.0], 0.25, 1.0) == Horizon("<", 16.0)  # below at the smallest already
    assert memory_horizon([16, 64, 256], [1.0, 0.625, 1.0], 0.25, 1.0).dial == pytest.approx(64.0)  # at: not above
    # the first crossing counts, not a later recovery; an out-of-budget (NaN) dial is left out: 16 → 256 directly,
    # (1 − 0.625) / (1 − 0.5) = 0.75 of log2 16 = 4 → 8: 2^7 = 128
    assert memory_horizon([16, 64, 256, 1024], [1.0, np.nan, 0.5, 1.0], 0.25, 1.0).dial == pytest.approx(128.0)
    assert memory_horizon([16, 64], [1.0, np.nan], 0.25, 1.0) == Horizon("≥", 16.0)  # the largest dial it trained
    assert memory_horizon([16, 64], [np.nan, np.nan], 0.25, 1.0) is None


def test_memory_summary_groups_cells_by_family_and_dial_and_keeps_out_of_budget_ones():
    def cell(task, backbone, seed, success, **extra):
        return {"task": task, "backbone": backbone, "seed": seed, "success_rate": success, "train_s": 100.0} | extra

    oob = {"status": "out_of_budget", "s_per_step": 2.0, "peak_memory_mb": 9000.0}
    results = [cell("d16", "gru", 0, 1.0, s_per_step=0.1), cell("d16", "gru", 1, 0.5, s_per_step=0.3),
               cell("d256", "gru", 0, 0.25), {"task": "d256", "backbone": "gru", "seed": 1} | oob,
               {"task": "d256", "backbone": "mlp", "seed": 0} | oob, cell("hopper", "gru", 0, None),
               cell("k1", "gru", 0, 0.0)]  # fmt: skip
    memory = {"d16": ("reach", 16), "d256": ("reach", 256), "k1": ("track", 1)}
    m = memory_summary(results, memory, {"reach": (0.25, 1.0), "track": (0.0, 1.0)})
    assert list(m) == ["reach", "track"] and m["reach"]["dials"] == [16, 256]  # hopper is not a memory task
    assert m["reach"]["backbones"] == ["gru", "mlp"] and (m["reach"]["chance"], m["reach"]["expert"]) == (0.25, 1.0)
    gru16, gru256, mlp256 = (m["reach"]["cells"][k] for k in (("gru", 16), ("gru", 256), ("mlp", 256)))
    assert gru16["mean"] == 0.75 and gru16["n"] == 2 and gru16["ci"] == (0.5, 1.0) and gru16["s_per_step"] == 0.2
    assert np.isnan(gru16["peak_memory_mb"])  # no cell recorded it
    assert (gru256["mean"], gru256["n"], gru256["out_of_budget"], gru256["train_s"]) == (0.25, 1, 1, 100.0)
    assert np.isnan(gru256["s_per_step"])  # the cost of the trained cell, not the out-of-budget one's
    assert (mlp256["n"], mlp256["out_of_budget"], mlp256["s_per_step"], mlp256["peak_memory_mb"]) == (0, 1, 2.0, 9000.0)
    assert np.isnan(mlp256["mean"]) and np.isnan(mlp256["train_s"])
    assert ("mlp", 16) not in m["reach"]["cells"]
    # gru: 0.75 at 16 → 0.25 at 256 crosses 0.625 at (0.75 − 0.625) / 0.5 = 1/4 of log2 16 → 256: 2^5 = 32
    assert m["reach"]["horizon"]["gru"].dial == pytest.approx(32.0) and m["reach"]["horizon"]["mlp"] is None
    assert m["track"]["horizon"]["gru"] == Horizon("<", 1.0)


def test_a_budget_has_converged_when_the_best_arms_curve_gains_under_two_points_over_its_last_fifth():
    def curve(scores):
        return {"step": [500, 1000, 1500, 2000, 2500], "train_s": [1.0] * 5, "normalized_score": scores}

    rising, flat = curve([10, 30, 50, 70, 90]), curve([60, 79, 79.5, 80, 80.5])
    # the best arm is the one with the highest final score; its gain is over steps 2000 -> 2500 (the last 20 %)
    assert convergence({"gru": flat, "linoss": rising}) == {"arm": "linoss", "gain": 20.0, "converged": False}
    assert convergence({"gru": flat}) == {"arm": "gru", "gain": 0.5, "converged": True}
    assert convergence({"gru": flat}, gain=0.5)["converged"] is False  # the rule is strict: < gain
    one_eval = {"step": [2500], "train_s": [1.0], "normalized_score": [50.0]}
    assert convergence({"gru": one_eval}) is None and convergence({}) is None


def test_equal_seconds_scores_every_arm_at_its_last_evaluation_within_the_median_arms_time():
    def cell(*evals):  # (train_s, normalized_score, success_rate) per evaluation
        return {"history": [{"train_s": t, "normalized_score": v, "success_rate": s} for t, v, s in evals]}

    fast = [cell((5, 40, 0.0), (10, 60, 0.5)), cell((5, 50, 0.5), (10, 70, 1.0))]  # whole runs: 10 s
    middle = [cell((10, 30, 0.0), (20, 80, 1.0))]  # 20 s: the median of the arms' 10, 20 and 40 s
    slow = [cell((10, 20, 0.0), (20, 45, 0.0), (40, 90, 1.0)), cell((25, 10, 0.0), (40, 95, 1.0))]
    e = equal_seconds({"fast": fast, "middle": middle, "slow": slow, "none": [{"history": []}]})
    assert e["budget_s"] == 20.0
    assert e["arms"]["fast"] == {"mean": 65.0, "n": 2, "success_rate": 0.75, "ended": 2}  # both ended before T
    assert e["arms"]["middle"] == {"mean": 80.0, "n": 1, "success_rate": 1.0, "ended": 0}  # ends at T: not early
    # slow: its first run at 20 s (45), its second has no evaluation within 20 s and is left out
    assert e["arms"]["slow"] == {"mean": 45.0, "n": 1, "success_rate": 0.0, "ended": 0}
    assert "none" not in e["arms"]
    assert equal_seconds({"slow": slow}, budget_s=5.0)["arms"] == {}  # no evaluation within 5 s
    no_success = equal_seconds({"a": [{"history": [{"train_s": 1, "normalized_score": 3.0}]}]})
    assert no_success["arms"]["a"]["success_rate"] is None and no_success["budget_s"] == 1.0
