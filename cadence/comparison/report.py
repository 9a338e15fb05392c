"""The report of a comparison: Markdown tables, figures, provenance, and the one writer of ``results.md``,
``summary.json`` and the PNGs that ``cadence-compare`` and ``cadence-demo`` both use."""

from __future__ import annotations

import logging
import math
import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from ..atomic import atomic_path, write_text
from ..configs import compose
from ..datasets.format import write_json
from .grid import LRSweep, Tuning, format_value, resolve_task
from .stats import CONVERGED_GAIN, CONVERGED_TAIL

log = logging.getLogger(__name__)


def provenance(argv: list[str]) -> str:
    """The command (``argv``: its name and arguments), git commit, date and machine that produced a report."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    cpu = platform.processor() or platform.machine()
    return (f"Command: `{' '.join(argv)}`  \n"
            f"Commit: {commit or 'unknown'}, {time.strftime('%Y-%m-%d')}  \n"
            f"Machine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__}")  # fmt: skip


def per_task_text(cfg: DictConfig, tasks: list[str]) -> str:
    """The ``per_task`` settings of ``tasks`` for the report's budget line ('' when there are none)."""
    own = {t: cfg.per_task[t] for t in tasks if cfg.per_task.get(t)}
    text = "; ".join(f"{t}: " + ", ".join(f"{part}.{k}={v}" for part, kv in s.items() for k, v in kv.items())
                     for t, s in own.items())  # fmt: skip
    return f" (per task, for every arm alike: {text})" if text else ""


def markdown(summary: dict) -> str:
    """Per-task table (mean [95% CI] of the normalized score), the success rates, the IQM aggregate (with a
    note naming the ``unranked`` memory tasks it leaves out), whether each task's budget converged (the budget
    rule, :func:`~cadence.comparison.stats.convergence`), the scores at equal training seconds
    (:func:`~cadence.comparison.stats.equal_seconds`), the probability that the reference arm improves on each
    other arm (when :func:`~cadence.comparison.stats.summarize` found one), and the robustness table."""
    tasks, backbones = summary["tasks"], summary["backbones"]
    lines = ["| task | " + " | ".join(backbones) + " |", "|---" * (len(backbones) + 1) + "|"]
    for t in tasks:
        row = []
        for b in backbones:
            c = summary["cells"].get((t, b))
            row.append("–" if c is None else f"{c['mean']:.1f} [{c['ci'][0]:.1f}, {c['ci'][1]:.1f}]")
        lines.append(f"| {t} | " + " | ".join(row) + " |")
    if converged := {t: c for t, c in summary.get("convergence", {}).items() if c is not None}:
        lines += ["", f"Budget to convergence (the best arm's learning curve gains < {CONVERGED_GAIN:g} points over "
                  f"the last {100 * CONVERGED_TAIL:.0f} % of its steps):", "", "| task | best arm | gain | converged |",
                  "|---|---|---|---|"]  # fmt: skip
        lines += [f"| {t} | {c['arm']} | {c['gain']:+.1f} | {'yes' if c['converged'] else 'no: curves still rise'} |"
                  for t, c in converged.items()]  # fmt: skip
    if rounds := {t: r for t, r in summary.get("budget_rounds", {}).items() if len(r) > 1}:
        lines += ["", "The budget rule's rounds (`budget.rounds`: a task that had not converged was trained again, every "
                  "arm and seed, at a larger budget; the tables above are its last round's): steps, then the best arm's "
                  "gain over the last 20 % of them:", "", "| task | rounds |", "|---|---|"]  # fmt: skip
        lines += [f"| {t} | " + " → ".join(f"{x['steps']} ({x['gain']:+.1f})" if x.get("gain") is not None
                                           else f"{x['steps']} (–)" for x in r) + " |" for t, r in rounds.items()]  # fmt: skip
    with_success = [t for t in tasks if any(c["success_rate"] is not None for (ct, _), c in summary["cells"].items()
                                            if ct == t)]  # fmt: skip
    if with_success:  # the normalized score can credit a policy that never completes the task
        lines += ["", "Success rate (tasks that define success; mean over seeds of the evaluation episodes' final "
                  "`is_success`):", "", lines[0], lines[1]]  # fmt: skip
        for t in with_success:
            cs = [summary["cells"].get((t, b)) for b in backbones]
            lines.append(f"| {t} | " + " | ".join("–" if c is None or c["success_rate"] is None else
                                                   f"{100 * c['success_rate']:.0f}%" for c in cs) + " |")  # fmt: skip
    if timed := {t: e for t, e in summary.get("equal_seconds", {}).items() if e["arms"]}:
        lines += ["", "Equal seconds (the equal-compute view): every arm scored at its last evaluation within the same "
                  "training time T, the median arm's whole-run time per task (gradient steps only, the cells' own "
                  "clocks, compilation left out); mean normalized score over seeds (success rate). † k: k runs finished all their steps "
                  "before T, so they show their end, not what T seconds would give; –: no evaluation within T:", "",
                  "| task | T (s) | " + " | ".join(backbones) + " |", "|---" * (len(backbones) + 2) + "|"]  # fmt: skip
        for t, e in timed.items():
            row = []
            for b in backbones:
                a = e["arms"].get(b)
                success = "" if a is None or a["success_rate"] is None else f" ({100 * a['success_rate']:.0f}%)"
                row.append("–" if a is None else f"{a['mean']:.1f}{success}" + (f" † {a['ended']}" if a["ended"] else ""))
            lines.append(f"| {t} | {e['budget_s']:.0f} | " + " | ".join(row) + " |")
    if unranked := summary.get("unranked"):  # a return-based score can credit holding still through the delay
        lines += ["", f"The IQM leaves out the memory tasks ({', '.join(unranked)}): they are graded by success in the "
                  "memory section, never by return."]  # fmt: skip
    lines += ["", "| backbone | IQM normalized score [95% CI] | runs | params | latency p50 (ms/step) | "
              "training samples/s | cell time (s) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for b in backbones:
        a = summary["aggregate"][b]
        cells = [summary["cells"][(t, b)] for t in tasks if (t, b) in summary["cells"]]
        score = f"{a['iqm']:.1f} [{a['ci'][0]:.1f}, {a['ci'][1]:.1f}]" if a["n"] else "–"
        lines.append(f"| {b} | {score} | {a['n']} | "
                     f"{cells[0]['params']:,} | {np.mean([c['latency_ms_p50'] for c in cells]):.3f} | "
                     f"{np.mean([c['samples_per_s'] for c in cells]):,.0f} | "
                     f"{np.mean([c['train_s'] for c in cells]):.0f} |")  # fmt: skip
    if improvement := summary["improvement"]:
        reference = next(iter(improvement))[0]
        lines += ["", f"Probability of improvement: the chance that a run of {reference} scores above a run of the "
                  "other arm on the same task (ties count ½), mean over the ranked tasks both have, with a 95% "
                  "stratified bootstrap CI (seeds resampled within each task, for each arm apart):", "",
                  f"| arm | P({reference} > arm) [95% CI] | tasks |", "|---|---|---|"]  # fmt: skip
        for (_, b), p in improvement.items():
            lines.append(f"| {b} | {p['p']:.2f} [{p['ci'][0]:.2f}, {p['ci'][1]:.2f}] | {p['tasks']} |")
    stressors = list(dict.fromkeys(k for c in summary["cells"].values() for k in c["robustness"]))
    if stressors:
        lines += ["", "Robustness at evaluation (best checkpoint; normalized score, mean over tasks and seeds):", "",
                  "| backbone | clean | " + " | ".join(stressors) + " |",
                  "|---" * (len(stressors) + 2) + "|"]  # fmt: skip
        for b in backbones:
            cells = [summary["cells"][(t, b)] for t in tasks if (t, b) in summary["cells"]]
            row = [np.mean([c["mean"] for c in cells])]
            row += [np.mean([c["robustness"][k] for c in cells]) for k in stressors]
            lines.append(f"| {b} | " + " | ".join(f"{v:.1f}" for v in row) + " |")
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> Path:
    """Score bars with CIs per task and backbone, saved as PNG (atomically)."""
    plt = _pyplot()
    tasks, backbones = summary["tasks"], summary["backbones"]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(tasks) * len(backbones) / 3), 4))
    width = 0.8 / len(backbones)
    for j, b in enumerate(backbones):
        xs, ys, lo, hi = [], [], [], []
        for i, t in enumerate(tasks):
            c = summary["cells"].get((t, b))
            if c:
                xs.append(i + j * width)
                ys.append(c["mean"])
                lo.append(c["mean"] - c["ci"][0])
                hi.append(c["ci"][1] - c["mean"])
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=b)
    ax.axhline(100, color="k", lw=0.8, ls="--")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(tasks))], tasks)
    ax.set_ylabel("normalized score (expert = 100)")
    ax.legend(ncols=len(backbones), fontsize=8, loc="lower right")
    return _save(fig, path)


def plot_curves(summary: dict, path: Path) -> Path:
    """Learning curves (mean normalized score over seeds) per task, against gradient steps (top row) and
    against training wall-clock (bottom row), saved as PNG (atomically)."""
    plt = _pyplot()
    tasks, backbones = summary["tasks"], summary["backbones"]
    fig, axes = plt.subplots(2, len(tasks), figsize=(3.2 * len(tasks), 5.5), squeeze=False)
    for j, t in enumerate(tasks):
        for b in backbones:
            c = summary["cells"].get((t, b))
            if c:
                axes[0, j].plot(c["curve"]["step"], c["curve"]["normalized_score"], marker=".", label=b)
                axes[1, j].plot(c["curve"]["train_s"], c["curve"]["normalized_score"], marker=".", label=b)
        axes[0, j].set_title(t, fontsize=9)
        axes[0, j].set_xlabel("gradient steps")
        axes[1, j].set_xlabel("training time (s)")
    for ax in axes[:, 0]:
        ax.set_ylabel("normalized score")
    axes[0, -1].legend(fontsize=7)
    return _save(fig, path)


def plot_profiles(summary: dict, path: Path) -> Path:
    """Performance profiles over the ranked tasks (``summary["profiles"]``:
    :func:`~cadence.comparison.stats.performance_profile` per backbone): the fraction of runs whose normalized
    score is above each threshold τ, with its 95% stratified bootstrap CI band; saved as PNG (atomically)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for b, profile in summary["profiles"].items():
        (line,) = ax.plot(profile.taus, profile.fraction, label=b)
        ax.fill_between(profile.taus, profile.lo, profile.hi, color=line.get_color(), alpha=0.15)
    ax.axvline(100, color="k", lw=0.8, ls="--")
    ax.set(xlabel="normalized score τ (expert = 100)", ylabel="fraction of runs with score > τ", ylim=(-0.02, 1.02))
    if summary["profiles"]:
        ax.legend(fontsize=8)
    else:  # only memory tasks, graded by success
        ax.text(0.5, 0.5, "no ranked task", transform=ax.transAxes, ha="center")
    return _save(fig, path)


def _pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def _optimum(values: list[float], best: float) -> str:
    """Where ``best`` lies among the ``values`` tried: interior, or the lowest or highest value."""
    if min(values) < best < max(values):
        return "interior"
    return "lowest value" if best == min(values) else "highest value"


def _curve_row(t: Tuning, tag: str) -> str:
    """One row of the tuning section: arm, tag, every value tried with its normalized score (the best in bold, the
    arm's own value marked), the best value and where it lies among the values tried (:func:`_optimum`)."""
    curve, best = t.curves[tag], t.best[tag]

    def score(v: float) -> str:
        text = f"{format_value(v)}: {curve[v]:.1f}"
        return (f"**{text}**" if v == best else text) + (" (own)" if math.isclose(v, t.space.own[tag]) else "")

    scores = " · ".join(map(score, sorted(curve)))
    return f"| {t.space.arm} | {tag} | {scores} | {format_value(best)} | {_optimum(list(curve), best)} |"


def sweep_text(sweep: LRSweep, tunings: list[Tuning]) -> str:
    """The tuning's section of the report, from every arm's finished :class:`~cadence.comparison.grid.Tuning`:
    how the arms were tuned (:meth:`~cadence.comparison.grid.LRSweep.spaces`), then a row per arm and tag searched
    (the learning rate ``lr`` at the arm's own other values, then each knob at the best values before it): its
    curve (the normalized score of every value tried), the best value and where it lies among the values tried
    (interior or at an edge), and each arm's number of trials and tuned name."""
    rows = [_curve_row(t, tag) for t in tunings for tag in t.curves]
    trials = [f"| {t.space.arm} | {t.trials} | {t.name} |" for t in tunings]
    seeds = (f"seed {sweep.seeds[0]} (a tuning seed, never an evaluation seed; normalized score)" if len(sweep.seeds) == 1
             else f"seeds {sweep.seeds} (tuning seeds, never evaluation seeds; the mean normalized score over them)")
    return (f"Tuning on {sweep.task}, {seeds}, "
            f"the same number of trials for every arm, by coordinate search: first the learning rate at the arm's own "
            f"other values, from {[float(x) for x in sweep.lrs]}, extended by one log step beyond an edge optimum "
            f"until it is interior (at most {sweep.max_extensions} rates per arm beyond the grid: a rate still at an "
            f"edge reached that cap); then each knob of the arm's search space in turn (rlr: "
            f"algo.recurrence_lr_factor, any other: policy.backbone_kwargs), every value once at the best values so "
            f"far. The budget is the learning rate's full allowance plus the most knob values any arm has beyond its "
            f"own; an arm with fewer spends the rest refining its learning rate (the geometric mean of its best rate "
            f"and its better-scoring neighbour). The best values are then frozen for every task and seed.\n\n"
            "| arm | knob | normalized score per value (own: the arm's own value) | chosen | optimum |\n"
            "|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n| arm | trials | tuned arm |\n|---|---|---|\n"
            + "\n".join(trials))  # fmt: skip


MEMORY_ENVS: dict[str, tuple[str, Callable[[dict], tuple[float, float]]]] = {
    # a policy without the cue reaches one of K targets: 1/K (tests/envs/test_cue_delay.py); the expert: every episode
    "Cadence/CueDelayReacher-v0": ("delay_steps", lambda kwargs: (1 / kwargs["num_targets"], 1.0)),
    # the best memory-less policy (TrackingFloor) fails and the expert succeeds on every episode at every lag
    # (tests/envs/test_delayed_tracking.py)
    "Cadence/DelayedTracking-v0": ("lag_steps", lambda kwargs: (0.0, 1.0)),
}
"""The memory tasks by Gymnasium id: the env kwarg that is their dial, and their ``(chance, expert)`` success
from the env's kwargs."""


def memory_tasks(cfg: DictConfig) -> tuple[dict[str, tuple[str, float]], dict[str, tuple[float, float]]]:
    """The memory tasks among ``cfg.tasks`` (``cfg``: a composed ``compare.yaml``), those whose env is one of
    :data:`MEMORY_ENVS`, as ``{TASK: (FAMILY, DIAL)}`` (family: the task's env config; dial: its composed env's
    dial kwarg, e.g. ``variants.memory_reacher_d256: {env: memory_reacher, kwargs: {delay_steps: 256}}`` is
    ``(memory_reacher, 256)``), and ``{FAMILY: (chance, expert)}`` from the composed env configs. Two tasks of one
    family at one dial, or with other success levels, are refused."""
    memory, levels = {}, {}
    for name in cfg.tasks:
        task = resolve_task(name, cfg.get("variants"))
        env = OmegaConf.to_container(compose("train", task.overrides()).env, resolve=True)
        if env["id"] not in MEMORY_ENVS:
            continue
        dial, level = MEMORY_ENVS[env["id"]]
        family, value, task_levels = task.env, env["kwargs"][dial], level(env["kwargs"])
        if twin := [t for t, k in memory.items() if k == (family, value)]:
            raise ValueError(f"tasks {twin[0]} and {name} are both {family} at {dial}={value}: a memory family varies "
                             f"{dial} only; give the other variant its own env config")  # fmt: skip
        if levels.setdefault(family, task_levels) != task_levels:
            raise ValueError(f"task {name} gives {family} other (chance, expert) success levels, {task_levels}, than "
                             f"{levels[family]}: a memory family varies {dial} only; give it its own env "
                             "config")  # fmt: skip
        memory[name] = (family, value)
    return memory, levels


MEMORY_TEXT = ("Memory horizon: the largest dial (interpolated in log-dial) at which the mean success over seeds stays "
               "above halfway between chance and the expert (≥ D: never below up to the largest dial trained; < D: "
               "already below at the smallest). Chance: the success of the best policy without memory (1/K for the "
               "cue task with K targets, the memory-less floor's for delayed tracking); expert: the privileged "
               "expert's. Success: the evaluation episodes' final `is_success`, mean [95% bootstrap CI] over "
               "seeds.")  # fmt: skip


def memory_markdown(memory: dict) -> str:
    """The memory section of a report on ``memory`` (:func:`~cadence.comparison.stats.memory_summary`): per
    family a table of success % [95% CI] (n seeds) per backbone (rows) and dial (columns), with each backbone's
    memory horizon, and a table of its training cost per cell; out-of-budget cells show their measured cost."""
    lines = ["## Memory: success vs horizon", "", MEMORY_TEXT, "", f"In short: {memory_reading(memory)}"]
    for family, m in memory.items():
        head, rule = " | ".join(f"{d:g}" for d in m["dials"]), "|---" * (len(m["dials"]) + 1) + "|"
        lines += ["", f"### {family}", "", f"Success rate at each dial (chance {100 * m['chance']:.3g}%, expert "
                  f"{100 * m['expert']:.3g}%, threshold {100 * m['threshold']:.3g}%):", "",
                  f"| backbone | {head} | memory horizon |", rule + "---|"]  # fmt: skip
        for b in m["backbones"]:
            row = [_success_text(m["cells"].get((b, d))) for d in m["dials"]]
            lines.append(f"| {b} | " + " | ".join(row) + f" | {m['horizon'][b] or '–'} |")
        lines += ["", "Training cost per cell (mean over seeds): cell time, seconds per gradient step, peak memory:",
                  "", f"| backbone | {head} |", rule]  # fmt: skip
        for b in m["backbones"]:
            lines.append(f"| {b} | " + " | ".join(_cost_text(m["cells"].get((b, d))) for d in m["dials"]) + " |")
    return "\n".join(lines)


def memory_reading(memory: dict) -> str:
    """One sentence per family of ``memory`` (:func:`~cadence.comparison.stats.memory_summary`) on what it shows:
    which backbones stay above the threshold halfway between chance and the expert at the shortest and at the
    longest dial, and which fall below it there, with their success."""

    def at(m: dict, d: float, above: bool) -> str:
        means = {b: m["cells"][(b, d)]["mean"] for b in m["backbones"] if (b, d) in m["cells"]}
        return ", ".join(f"{b} {100 * s:.0f}%" for b, s in means.items()
                         if not np.isnan(s) and (s > m["threshold"]) == above) or "none"  # fmt: skip

    sentences = []
    for family, m in memory.items():
        low, high = m["dials"][0], m["dials"][-1]
        shortest = "" if low == high else f"at {low:g} steps {at(m, low, True)}; "
        oob = [b for b in m["backbones"] if (b, high) in m["cells"] and not m["cells"][(b, high)]["n"]]
        sentences.append(f"{family}, success above halfway between chance ({100 * m['chance']:.3g}%) and the expert "
                         f"({100 * m['expert']:.3g}%): {shortest}at {high:g} steps {at(m, high, True)} "
                         f"(below: {at(m, high, False)}" + (f"; out of budget: {', '.join(oob)}" if oob else "") +
                         ").")  # fmt: skip
    return " ".join(sentences)


def _success_text(c: dict | None) -> str:
    if c is None:
        return "–"
    if not c["n"]:
        return f"out of budget ({_measured(c)})"
    oob = f", {c['out_of_budget']} out of budget" if c["out_of_budget"] else ""
    return f"{100 * c['mean']:.0f}% [{100 * c['ci'][0]:.0f}, {100 * c['ci'][1]:.0f}] (n={c['n']}{oob})"


def _cost_text(c: dict | None) -> str:
    if c is None:
        return "–"
    return _measured(c) if c["n"] else f"out of budget: {_measured(c)}"


def _measured(c: dict) -> str:
    """The measured cost of a memory cell: cell time, s/step and peak memory, those that were recorded."""
    units = {"train_s": "{:.0f} s", "s_per_step": "{:.3g} s/step", "peak_memory_mb": "{:,.0f} MB"}
    return ", ".join(f.format(c[k]) for k, f in units.items() if not np.isnan(c[k])) or "not measured"


def plot_memory(memory: dict, path: Path) -> Path:
    """Success vs dial (log axis) of :func:`~cadence.comparison.stats.memory_summary`'s ``memory``, one panel
    per family: a line per backbone with its 95% CI band, × on the axis where it was out of budget, chance and
    expert dashed; saved as PNG (atomically)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(memory), figsize=(4.5 * len(memory), 3.8), squeeze=False)
    for ax, (family, m) in zip(axes[0], memory.items()):
        for b in m["backbones"]:
            cs = [m["cells"].get((b, d)) or {"mean": np.nan, "ci": (np.nan, np.nan), "n": 0} for d in m["dials"]]
            (line,) = ax.plot(m["dials"], [100 * c["mean"] for c in cs], marker="o", label=b)
            ax.fill_between(m["dials"], [100 * c["ci"][0] for c in cs], [100 * c["ci"][1] for c in cs],
                            color=line.get_color(), alpha=0.15)  # fmt: skip
            if oob := [d for d, c in zip(m["dials"], cs) if c.get("out_of_budget") and not c["n"]]:
                ax.plot(oob, [0] * len(oob), "x", ms=9, color=line.get_color(), label=f"{b}: out of budget")
        ax.axhline(100 * m["chance"], color="gray", ls="--", lw=1, label="chance")
        ax.axhline(100 * m["expert"], color="k", ls="--", lw=1, label="expert")
        ax.set_xscale("log")
        ax.set_xticks(m["dials"], [f"{d:g}" for d in m["dials"]])
        ax.minorticks_off()
        ax.set(title=family, xlabel="dial (steps of memory)", ylim=(-5, 105))
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("success (%)")
    return _save(fig, path)


STEP_UNITS = {"bc": "gradient steps", "ppo": "environment steps (recurrent PPO)"}
"""What a grid's ``train.steps`` count, by its ``algo``."""


def grid_text(cfg: DictConfig, summary: dict, argv: list[str], profile: str, tasks: list[str], wall_s: float,
              sweep: str = "", memory: dict | None = None, results: list[dict] = (),
              progress: tuple[int, int] | None = None) -> str:  # fmt: skip
    """The whole report of ``summary`` (``argv``: the command's name and arguments): provenance, budget, the
    compute of its cells ``results`` (the sum of their training seconds), the tables of :func:`markdown`, the
    ``sweep`` section (:func:`sweep_text`, '' without a sweep), the figures of :func:`grid_plots` and, when the
    grid has memory tasks, the memory section of ``memory`` (:func:`memory_markdown`); ``tasks`` are every task
    the run trained on (the sweep's included), ``wall_s`` its duration; ``progress`` (finished, all) marks a
    report of the finished cells of a grid in progress."""
    sweep_section = f"{sweep}\n\n" if sweep else ""
    profiles = ("\nPerformance profiles over the ranked tasks: the fraction of runs (task × seed, tasks weighted "
                "alike) whose normalized score is above τ, with 95% stratified bootstrap CI bands:\n\n"
                "![profiles](profiles.png)\n") if summary["profiles"] else ""  # fmt: skip
    memory_section = f"\n{memory_markdown(memory)}\n\n![memory](memory.png)\n" if memory else ""
    compute = sum(r.get("train_s", 0.0) for r in results) / 3600
    partial = (f"**A grid in progress: {progress[0]} of its {progress[1]} cells are finished**; the tables below "
               "hold those only.  \n") if progress else ""  # fmt: skip
    return (f"# Backbone comparison ({profile} profile)\n\n{partial}{provenance(argv)}  \n"
            f"Compute: {compute:.1f} h of cell training (the sum of the reported cells' training seconds, one "
            f"process per cell).  \n"
            f"Budget: {cfg.param_budget:,} parameters per policy, {cfg.train.steps} {STEP_UNITS[cfg.get('algorithm', 'bc')]}"
            f"{per_task_text(cfg, tasks)}, "
            f"{len(cfg.seeds)} seed(s); this run took {wall_s / 60:.0f} min (finished cells are reused).\n\n"
            f"Normalized score 100·(R − R_random)/(R_expert − R_random), mean [95% bootstrap CI] over seeds:\n\n"
            f"{markdown(summary)}\n\n{sweep_section}![scores](scores.png)\n\n"
            f"Learning curves (mean over seeds) against {STEP_UNITS[cfg.get('algorithm', 'bc')]} and training time:\n\n"
            f"![curves](curves.png)\n{profiles}{memory_section}")  # fmt: skip


GRID_PLOTS: dict[str, Callable[[dict, Path], Path]] = {"scores.png": plot, "curves.png": plot_curves,
                                                        "profiles.png": plot_profiles}  # fmt: skip
"""The figures of a ``cadence-compare`` report, by file name."""


def grid_plots(memory: dict | None = None) -> dict[str, Callable[[dict, Path], Path]]:
    """The figures of a ``cadence-compare`` report: :data:`GRID_PLOTS`, and ``memory.png`` (:func:`plot_memory`
    of ``memory``) when the grid has memory tasks."""
    return GRID_PLOTS | ({"memory.png": lambda _, path: plot_memory(memory, path)} if memory else {})


def write_report(out: Path, text: str, summary: dict, plots: dict[str, Callable[[dict, Path], Path]],
                 copy: str | Path | None = None) -> None:  # fmt: skip
    """Write the report of ``summary`` under ``out``: ``results.md`` (``text``), ``summary.json`` (the
    statistics of every ``TASK/ARM`` cell) and the figures ``plots`` (``{FILE_NAME: plot function}``), every
    file atomically; ``copy`` (a Markdown path, e.g. ``docs/comparison/bc/report.md``) gets the text too
    and the figures beside it. Without a scored cell (every cell out of budget) the score figures
    (:data:`GRID_PLOTS`) are skipped: they would be empty."""
    out.mkdir(parents=True, exist_ok=True)
    if not summary["cells"]:
        log.info("no cell has a score (every one is out of budget): no %s", ", ".join(GRID_PLOTS))
        plots = {name: draw for name, draw in plots.items() if name not in GRID_PLOTS}
    write_text(out / "results.md", text)
    write_json(out / "summary.json", {f"{t}/{b}": v for (t, b), v in summary["cells"].items()})
    for folder in [out] + ([Path(copy).parent] if copy else []):
        folder.mkdir(parents=True, exist_ok=True)
        for name, draw in plots.items():
            draw(summary, folder / name)
    if copy:
        write_text(Path(copy), text)

