"""Statistics of a comparison (rliable-style) over its cells' results.

Per task and backbone the mean normalized score with a 95% bootstrap confidence interval over seeds; per
backbone the interquartile mean (IQM) over all task × seed runs with a stratified bootstrap CI (seeds
resampled within each task), its performance profile (the fraction of runs above each score threshold) and the
probability that LinOSS improves on each other backbone, the two with stratified bootstrap CIs too (Agarwal et
al. 2021, the ``rliable`` package's quantities). The memory tasks are graded by success instead: per family (an
env with a memory dial) and backbone the success rate at every dial with its bootstrap CI, and the memory horizon
where it ends.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import NamedTuple

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


def stratified_bootstrap_ci(stat: Callable[..., float | np.ndarray], *by_task: dict[str, np.ndarray], n: int = 2000,
                            seed: int = 0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """95% percentile bootstrap interval of ``stat(*by_task)`` (a number or an array ``(K,)``: an interval per
    entry), each ``by_task`` ``{TASK: (runs,)}`` scores: ``n`` resamples of every task's runs within that task,
    independently for each of ``by_task`` (rliable's stratified bootstrap). Returns (lower, upper), each shaped as
    ``stat``'s value."""
    rng = np.random.default_rng(seed)
    samples = [stat(*({t: rng.choice(v, len(v)) for t, v in scores.items()} for scores in by_task)) for _ in range(n)]
    return np.percentile(samples, 2.5, axis=0), np.percentile(samples, 97.5, axis=0)


def stratified_iqm_ci(by_task: dict[str, np.ndarray], n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap CI of the IQM over every task's runs, ``by_task``: ``{TASK: (seeds,)}`` scores, resampling
    seeds within each task."""
    lo, hi = stratified_bootstrap_ci(lambda scores: iqm(np.concatenate(list(scores.values()))), by_task, n=n, seed=seed)
    return float(lo), float(hi)


def score_distribution(by_task: dict[str, np.ndarray], taus: np.ndarray) -> np.ndarray:
    """The fraction of runs whose score is above each threshold of ``taus`` ``(K,)``, per task of ``by_task``
    (``{TASK: (runs,)}`` scores), then averaged over tasks: rliable's score distribution. Returns ``(K,)``."""
    return np.mean([(v[:, None] > np.asarray(taus)[None, :]).mean(axis=0) for v in by_task.values()], axis=0)


class Profile(NamedTuple):
    """A performance profile (:func:`performance_profile`): at each threshold of ``taus`` ``(K,)``, the
    ``fraction`` of runs above it and its 95% CI ``lo``, ``hi``, all ``(K,)``."""

    taus: np.ndarray
    fraction: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def performance_profile(by_task: dict[str, np.ndarray], taus: np.ndarray, n: int = 2000, seed: int = 0) -> Profile:
    """The performance profile of ``by_task`` (``{TASK: (runs,)}`` scores) at the thresholds ``taus`` ``(K,)``:
    :func:`score_distribution` with its stratified bootstrap CI (runs resampled within each task), as rliable's
    ``create_performance_profile``."""
    taus = np.asarray(taus, dtype=float)
    lo, hi = stratified_bootstrap_ci(lambda scores: score_distribution(scores, taus), by_task, n=n, seed=seed)
    return Profile(taus, score_distribution(by_task, taus), lo, hi)


def probability_of_improvement(x: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> float:
    """P(X > Y): the probability that a run of ``x`` scores above a run of ``y`` on the same task, ties counting
    one half (the Mann-Whitney U statistic over the ``runs_x · runs_y`` pairs), averaged over the tasks of ``x``
    (``{TASK: (runs_x,)}`` scores; ``y``: ``{TASK: (runs_y,)}``, at least those tasks), as rliable's
    ``probability_of_improvement``."""
    # (sign(x − y) + 1) / 2 over every pair: 1 where x's run wins, ½ on a tie, 0 where it loses
    return float(np.mean([(np.sign(v[:, None] - y[t][None, :]) + 1).mean() / 2 for t, v in x.items()]))


def improvement_ci(x: dict[str, np.ndarray], y: dict[str, np.ndarray], n: int = 2000,
                   seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """95% stratified bootstrap CI of :func:`probability_of_improvement` of ``x`` over ``y`` (``{TASK: (runs,)}``
    scores each): runs resampled within each task, independently for ``x`` and ``y``."""
    lo, hi = stratified_bootstrap_ci(probability_of_improvement, x, y, n=n, seed=seed)
    return float(lo), float(hi)


def learning_curve(runs: list[dict]) -> dict[str, list[float]]:
    """Mean over seeds of the evaluation history: ``step``, ``train_s`` (gradient-step time so far) and
    ``normalized_score`` at every evaluation the runs share."""
    runs = [r for r in runs if r.get("history")]  # cells written before histories were recorded have none
    n = min((len(r["history"]) for r in runs), default=0)
    return {k: [float(np.mean([r["history"][i][k] for r in runs])) for i in range(n)]
            for k in ("step", "train_s", "normalized_score")}  # fmt: skip


CONVERGED_GAIN, CONVERGED_TAIL = 2.0, 0.2
"""The budget rule (issue 20): a task's step budget has converged when its best arm's learning curve gains less
than CONVERGED_GAIN points of normalized score over the last CONVERGED_TAIL of its gradient steps."""


def convergence(curves: dict[str, dict[str, list[float]]], gain: float = CONVERGED_GAIN,
                tail: float = CONVERGED_TAIL) -> dict | None:  # fmt: skip
    """Whether one task's budget has converged, from its arms' :func:`learning_curve` s ``{ARM: curve}``: the best
    arm (highest final score) and its ``gain``, the last evaluation's score minus the latest one's at or before
    (1 − ``tail``) of its steps; ``{arm, gain, converged}`` (gain < ``gain``), None when no arm has an evaluation
    that early."""
    finals = {b: c["normalized_score"][-1] for b, c in curves.items() if c["step"]}
    if not finals:
        return None
    best = max(finals, key=finals.get)
    steps, scores = curves[best]["step"], curves[best]["normalized_score"]
    early = [i for i, step in enumerate(steps) if step <= (1 - tail) * steps[-1]]
    if not early:
        return None
    rise = scores[-1] - scores[early[-1]]
    return {"arm": best, "gain": float(rise), "converged": bool(rise < gain)}


def task_convergence(runs: list[dict]) -> dict | None:
    """:func:`convergence` of one task's cells (cell JSONs of any arms and seeds)."""
    arms = dict.fromkeys(r["backbone"] for r in runs)
    return convergence({b: learning_curve([r for r in runs if r["backbone"] == b]) for b in arms})


def equal_seconds(runs_by_arm: dict[str, list[dict]], budget_s: float | None = None) -> dict:
    """One task's arms compared at equal training seconds (issue 20's equal-compute view), from their cells'
    evaluation histories ``{ARM: [cell JSON, ...]}``: the budget T is ``budget_s``, by default the median over arms
    of their mean whole-run training time (``train_s``); each run is scored at its last evaluation within T of
    gradient-step time. A run whose whole budget of steps took less than T is scored at its end and counted in
    ``ended``: at equal seconds it would have trained on, so its score is what it reached, not what T would give.
    ``{budget_s, arms: {ARM: {mean, success_rate (None without one), n, ended}}}``; an arm none of whose runs has
    an evaluation within T is left out."""
    runs_by_arm = {b: [r for r in rs if r.get("history")] for b, rs in runs_by_arm.items()}
    runs_by_arm = {b: rs for b, rs in runs_by_arm.items() if rs}
    if budget_s is None:
        if not runs_by_arm:
            return {"budget_s": np.nan, "arms": {}}
        budget_s = float(np.median([np.mean([r["history"][-1]["train_s"] for r in rs]) for rs in runs_by_arm.values()]))
    arms = {}
    for b, rs in runs_by_arm.items():
        at = [[h for h in r["history"] if h["train_s"] <= budget_s] for r in rs]
        at = [(h[-1], r["history"][-1]["train_s"] < budget_s) for h, r in zip(at, rs) if h]
        if not at:
            continue
        success = [h.get("success_rate") for h, _ in at]
        arms[b] = {"mean": float(np.mean([h["normalized_score"] for h, _ in at])), "n": len(at),
                   "success_rate": None if None in success else float(np.mean(success)),
                   "ended": sum(ended for _, ended in at)}  # fmt: skip
    return {"budget_s": budget_s, "arms": arms}


def summarize(results: list[dict], unranked: Collection[str] = (), reference: str = "linoss") -> dict:
    """Per (task, backbone) and per backbone statistics of the normalized score of ``results`` (cell JSONs):
    ``tasks`` (sorted), ``backbones`` (in order of appearance), ``cells`` ``{(TASK, ARM): {mean, ci, n, params,
    latency_ms_p50, train_s, samples_per_s, robustness, success_rate, curve}}``, ``aggregate``
    ``{ARM: {iqm, ci, n}}`` over every task but the ``unranked`` ones (the memory tasks, graded by success:
    :func:`memory_summary`; iqm and ci NaN, n 0, when none is left), ``unranked`` (those of ``tasks``, sorted),
    and over the same ranked tasks: ``profiles`` ``{ARM: Profile}`` (:func:`performance_profile` at 101 thresholds
    spanning 0–100 and every ranked score; arms with a ranked task only) and ``improvement`` ``{(REFERENCE, ARM):
    {p, ci, tasks}}``: :func:`probability_of_improvement` of the ``reference`` arm over every other arm on the
    ranked tasks both have, with :func:`improvement_ci` (empty without the ``reference`` arm); ``convergence``
    ``{TASK: convergence(...)}`` (:func:`convergence`, the budget rule) and ``equal_seconds`` ``{TASK:
    equal_seconds(...)}`` (:func:`equal_seconds`, the equal-compute view). Cells that were out of budget have no
    scores and are left to the memory section."""
    results = [r for r in results if r.get("status") != "out_of_budget"]
    tasks = sorted({r["task"] for r in results})
    backbones = list(dict.fromkeys(r["backbone"] for r in results))
    per_cell, per_backbone, ranked_by = {}, {}, {}
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
        if ranked := {t: v for t, v in by_task.items() if t not in unranked}:
            all_scores = np.concatenate(list(ranked.values()))
            per_backbone[b] = {"iqm": iqm(all_scores), "ci": stratified_iqm_ci(ranked), "n": len(all_scores)}
            ranked_by[b] = ranked
        else:  # every task of this backbone is unranked
            per_backbone[b] = {"iqm": np.nan, "ci": (np.nan, np.nan), "n": 0}
    converged = {t: task_convergence([r for r in results if r["task"] == t]) for t in tasks}
    timed = {t: equal_seconds({b: [r for r in results if r["task"] == t and r["backbone"] == b] for b in backbones})
             for t in tasks}  # fmt: skip
    return {"tasks": tasks, "backbones": backbones, "cells": per_cell, "aggregate": per_backbone,
            "unranked": [t for t in tasks if t in unranked], "profiles": _profiles(ranked_by),
            "improvement": _improvement(ranked_by, reference), "convergence": converged,
            "equal_seconds": timed}  # fmt: skip


def _profiles(ranked_by: dict[str, dict[str, np.ndarray]]) -> dict[str, Profile]:
    """:func:`performance_profile` of every arm of ``ranked_by`` (``{ARM: {TASK: (runs,)}}``) at 101 thresholds
    from the lowest to the highest of 0, 100 and every score."""
    scores = np.concatenate([[0.0, 100.0], *(v for ranked in ranked_by.values() for v in ranked.values())])
    taus = np.linspace(scores.min(), scores.max(), 101)
    return {b: performance_profile(ranked, taus) for b, ranked in ranked_by.items()}


def _improvement(ranked_by: dict[str, dict[str, np.ndarray]], reference: str) -> dict[tuple[str, str], dict]:
    """P(``reference`` > ARM) with its CI, over the tasks both have, for every other arm of ``ranked_by``
    (``{ARM: {TASK: (runs,)}}``) that shares a task with it; {} when ``reference`` has no ranked task."""
    x = ranked_by.get(reference, {})
    improvement = {}
    for b, ranked in ranked_by.items():
        if b != reference and (shared := [t for t in x if t in ranked]):
            xs, ys = {t: x[t] for t in shared}, {t: ranked[t] for t in shared}
            improvement[(reference, b)] = {"p": probability_of_improvement(xs, ys), "ci": improvement_ci(xs, ys),
                                           "tasks": len(shared)}  # fmt: skip
    return improvement


class Horizon(NamedTuple):
    """A memory horizon (:func:`memory_horizon`): ``dial`` itself (``relation`` ``=``, interpolated) or a bound
    (``≥`` the largest dial, never below the threshold; ``<`` the smallest, already below there)."""

    relation: str
    dial: float

    def __str__(self) -> str:
        value = f"{self.dial:.0f}" if self.dial >= 100 else f"{self.dial:.3g}"
        return value if self.relation == "=" else f"{self.relation} {value}"


def memory_horizon(dials, success, chance: float, expert: float) -> Horizon | None:
    """The largest dial at which ``success`` ``(N,)`` at ``dials`` ``(N,)`` stays above the threshold halfway
    between ``chance`` and ``expert``: interpolated in log-dial, linearly in success, between the last dial above
    the threshold and the first at or below it; ``≥`` the largest dial when never below, ``<`` the smallest when
    already below there. Dials without a success (NaN: out of budget) are left out; None when none has one."""
    d, s = np.asarray(dials, dtype=float), np.asarray(success, dtype=float)
    d, s = d[~np.isnan(s)], s[~np.isnan(s)]
    order = np.argsort(d)
    d, s = d[order], s[order]
    if not len(d):
        return None
    threshold = (chance + expert) / 2
    below = np.flatnonzero(s <= threshold)
    if not len(below):
        return Horizon("≥", float(d[-1]))
    if (i := below[0]) == 0:
        return Horizon("<", float(d[0]))
    frac = (s[i - 1] - threshold) / (s[i - 1] - s[i])
    return Horizon("=", float(np.exp(np.log(d[i - 1]) + frac * (np.log(d[i]) - np.log(d[i - 1])))))


def memory_cell(runs: list[dict]) -> dict:
    """Success of one backbone at one dial over its seeds' cells ``runs``: ``mean`` and bootstrap ``ci`` of the
    success rate (NaN without a trained cell), ``n`` trained cells, ``out_of_budget`` cells, and the means of
    ``train_s``, ``s_per_step`` and ``peak_memory_mb`` over the trained cells that have them (over the
    out-of-budget ones when none was trained; NaN when none has them)."""
    trained = [r for r in runs if r.get("status") != "out_of_budget"]
    success = np.array([r["success_rate"] for r in trained], dtype=float)
    costed = trained or runs
    return {"mean": float(success.mean()) if trained else np.nan,
            "ci": bootstrap_ci(success) if trained else (np.nan, np.nan), "n": len(trained),
            "out_of_budget": len(runs) - len(trained),
            **{k: _mean_of(costed, k) for k in ("train_s", "s_per_step", "peak_memory_mb")}}  # fmt: skip


def _mean_of(runs: list[dict], key: str) -> float:
    values = [r[key] for r in runs if r.get(key) is not None]
    return float(np.mean(values)) if values else np.nan


def memory_summary(results: list[dict], memory: dict[str, tuple[str, float]],
                   levels: dict[str, tuple[float, float]]) -> dict:  # fmt: skip
    """Success vs horizon of the memory tasks among ``results`` (cell JSONs, out-of-budget ones included):
    ``memory`` ``{TASK: (FAMILY, DIAL)}`` names them, ``levels`` ``{FAMILY: (chance, expert)}`` gives each
    family's success levels. Per family (in order of appearance): ``{dials (sorted), chance, expert, threshold
    (halfway between them: :func:`memory_horizon`'s), backbones (in order of appearance), cells {(ARM, DIAL):
    memory_cell}, horizon {ARM: Horizon | None}}``."""
    groups: dict[str, dict[tuple[str, float], list[dict]]] = {}
    for r in results:
        if r["task"] in memory:
            family, dial = memory[r["task"]]
            groups.setdefault(family, {}).setdefault((r["backbone"], dial), []).append(r)
    summary = {}
    for family, runs in groups.items():
        dials = sorted({d for _, d in runs})
        backbones = list(dict.fromkeys(b for b, _ in runs))
        cells = {key: memory_cell(rs) for key, rs in runs.items()}
        chance, expert = levels[family]
        horizon = {b: memory_horizon(dials, [cells[(b, d)]["mean"] if (b, d) in cells else np.nan for d in dials],
                                     chance, expert) for b in backbones}  # fmt: skip
        summary[family] = {"dials": dials, "chance": chance, "expert": expert, "threshold": (chance + expert) / 2,
                           "backbones": backbones, "cells": cells, "horizon": horizon}  # fmt: skip
    return summary
