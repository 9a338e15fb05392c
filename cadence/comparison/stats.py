"""Statistics of a comparison (rliable-style) over its cells' results.

Per task and backbone the mean normalized score with a 95% bootstrap confidence interval over seeds; per
backbone the interquartile mean (IQM) over all task × seed runs with a stratified bootstrap CI (seeds
resampled within each task).
"""

from __future__ import annotations

import numpy as np


def bootstrap_ci(values: np.ndarray, stat=np.mean, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of ``stat`` over ``values`` ``(N,)`` (``n`` resamples)."""
    rng = np.random.default_rng(seed)
    if len(values) < 2:
        return float(stat(values)), float(stat(values))
    samples = [stat(rng.choice(values, len(values))) for _ in range(n)]
    return float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5))


def iqm(values: np.ndarray) -> float:
    """Interquartile mean of ``values`` ``(N,)``: the mean of the middle 50% (all of them when N < 4)."""
    v = np.sort(np.asarray(values, dtype=float))
    k = len(v) // 4
    return float(v[k : len(v) - k].mean()) if len(v) >= 4 else float(v.mean())


def stratified_iqm_ci(by_task: dict[str, np.ndarray], n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap CI of the IQM over every task's runs, ``by_task``: ``{TASK: (seeds,)}`` scores, resampling
    seeds within each task."""
    rng = np.random.default_rng(seed)
    samples = [iqm(np.concatenate([rng.choice(v, len(v)) for v in by_task.values()])) for _ in range(n)]
    return float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5))


def learning_curve(runs: list[dict]) -> dict[str, list[float]]:
    """Mean over seeds of the evaluation history: ``step``, ``train_s`` (gradient-step time so far) and
    ``normalized_score`` at every evaluation the runs share."""
    runs = [r for r in runs if r.get("history")]  # cells written before histories were recorded have none
    n = min((len(r["history"]) for r in runs), default=0)
    return {k: [float(np.mean([r["history"][i][k] for r in runs])) for i in range(n)]
            for k in ("step", "train_s", "normalized_score")}  # fmt: skip


def summarize(results: list[dict]) -> dict:
    """Per (task, backbone) and per backbone statistics of the normalized score of ``results`` (cell JSONs):
    ``tasks`` (sorted), ``backbones`` (in order of appearance), ``cells`` ``{(TASK, ARM): {mean, ci, n, params,
    latency_ms_p50, train_s, samples_per_s, robustness, success_rate, curve}}`` and ``aggregate``
    ``{ARM: {iqm, ci, n}}``."""
    tasks = sorted({r["task"] for r in results})
    backbones = list(dict.fromkeys(r["backbone"] for r in results))
    per_cell, per_backbone = {}, {}
    for b in backbones:
        by_task = {}
        for t in tasks:
            rs = [r for r in results if r["task"] == t and r["backbone"] == b]
            if not rs:
                continue
            scores = np.array([r["normalized_score"] for r in rs])
            by_task[t] = scores
            per_cell[(t, b)] = {
                "mean": float(scores.mean()), "ci": bootstrap_ci(scores), "n": len(scores),
                "latency_ms_p50": float(np.mean([r["latency_ms_p50"] for r in rs])),
                "train_s": float(np.mean([r["train_s"] for r in rs])), "params": int(rs[0]["params"]),
                "samples_per_s": float(np.mean([r.get("samples_per_s", np.nan) for r in rs])),
                "robustness": {k: float(np.mean([r["robustness"][k] for r in rs]))
                               for k in rs[0].get("robustness", {})},
                "success_rate": (None if any(r.get("success_rate") is None for r in rs)
                                 else float(np.mean([r["success_rate"] for r in rs]))),
                "curve": learning_curve(rs),
            }  # fmt: skip
        all_scores = np.concatenate(list(by_task.values()))
        per_backbone[b] = {"iqm": iqm(all_scores), "ci": stratified_iqm_ci(by_task), "n": len(all_scores)}
    return {"tasks": tasks, "backbones": backbones, "cells": per_cell, "aggregate": per_backbone}
