"""The statistics of a comparison: the IQM, bootstrap CIs (plain and stratified by task), learning curves and
the per-cell / per-backbone summary."""

import numpy as np
import pytest

from cadence.comparison import bootstrap_ci, iqm, learning_curve, stratified_iqm_ci, summarize


def test_iqm_drops_the_outer_quartiles():
    assert iqm(np.array([0, 1, 2, 3, 4, 5, 6, 1000])) == 3.5  # the mean of 2..5: the outlier is ignored
    assert iqm(np.array([1, 2, 9])) == 4.0  # fewer than 4 values: the plain mean


def test_bootstrap_intervals_bracket_the_statistic():
    assert bootstrap_ci(np.array([7.0])) == (7.0, 7.0)
    lo, hi = bootstrap_ci(np.array([1.0, 2.0, 3.0, 10.0]))
    assert 1.0 <= lo < 4.0 < hi <= 10.0
    assert stratified_iqm_ci({"a": np.array([10.0, 10.0]), "b": np.array([20.0, 20.0])}) == (15.0, 15.0)


def test_learning_curve_averages_the_evaluations_every_run_has():
    runs = [{"history": [{"step": 10, "train_s": 1.0, "normalized_score": 20.0},
                         {"step": 20, "train_s": 3.0, "normalized_score": 40.0}]},
            {"history": [{"step": 10, "train_s": 2.0, "normalized_score": 30.0}]},
            {"history": []}]  # a cell written before histories were recorded  # fmt: skip
    assert learning_curve(runs) == {"step": [10.0], "train_s": [1.5], "normalized_score": [25.0]}


def test_summary_per_cell_and_per_backbone():
    def run(task, backbone, seed, score, success=None):
        return {"task": task, "backbone": backbone, "seed": seed, "normalized_score": score, "latency_ms_p50": 0.5,
                "train_s": 10.0, "params": 1000, "samples_per_s": 100.0, "success_rate": success, "history": []}

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
