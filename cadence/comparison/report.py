"""The report of a comparison: Markdown tables, figures, provenance, and the one writer of ``results.md``,
``summary.json`` and the PNGs that ``cadence-compare`` and ``cadence-demo`` both use."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from ..datasets.format import write_json
from .grid import LRSweep, arm_at_lr


def provenance(argv: list[str]) -> str:
    """The command (``cadence-compare ARGV``), git commit, date and machine that produced a report."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    cpu = platform.processor() or platform.machine()
    return (f"Command: `cadence-compare {' '.join(argv)}`  \n"
            f"Commit: {commit or 'unknown'}, {time.strftime('%Y-%m-%d')}  \n"
            f"Machine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__}")  # fmt: skip


def per_task_text(cfg: DictConfig, tasks: list[str]) -> str:
    """The ``per_task`` settings of ``tasks`` for the report's budget line ('' when there are none)."""
    own = {t: cfg.per_task[t] for t in tasks if cfg.per_task.get(t)}
    text = "; ".join(f"{t}: " + ", ".join(f"{part}.{k}={v}" for part, kv in s.items() for k, v in kv.items())
                     for t, s in own.items())  # fmt: skip
    return f" (per task, for every arm alike: {text})" if text else ""


def markdown(summary: dict) -> str:
    """Per-task table (mean [95% CI] of the normalized score) and the IQM aggregate."""
    tasks, backbones = summary["tasks"], summary["backbones"]
    lines = ["| task | " + " | ".join(backbones) + " |", "|---" * (len(backbones) + 1) + "|"]
    for t in tasks:
        row = []
        for b in backbones:
            c = summary["cells"].get((t, b))
            row.append("–" if c is None else f"{c['mean']:.1f} [{c['ci'][0]:.1f}, {c['ci'][1]:.1f}]")
        lines.append(f"| {t} | " + " | ".join(row) + " |")
    with_success = [t for t in tasks if any(c["success_rate"] is not None for (ct, _), c in summary["cells"].items()
                                            if ct == t)]  # fmt: skip
    if with_success:  # the normalized score can credit a policy that never completes the task
        lines += ["", "Success rate (tasks that define success; mean over seeds of the evaluation episodes' final "
                  "`is_success`):", "", lines[0], lines[1]]  # fmt: skip
        for t in with_success:
            cs = [summary["cells"].get((t, b)) for b in backbones]
            lines.append(f"| {t} | " + " | ".join("–" if c is None or c["success_rate"] is None else
                                                   f"{100 * c['success_rate']:.0f}%" for c in cs) + " |")  # fmt: skip
    lines += ["", "| backbone | IQM normalized score [95% CI] | runs | params | latency p50 (ms/step) | "
              "training samples/s | cell time (s) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for b in backbones:
        a = summary["aggregate"][b]
        cells = [summary["cells"][(t, b)] for t in tasks if (t, b) in summary["cells"]]
        lines.append(f"| {b} | {a['iqm']:.1f} [{a['ci'][0]:.1f}, {a['ci'][1]:.1f}] | {a['n']} | "
                     f"{cells[0]['params']:,} | {np.mean([c['latency_ms_p50'] for c in cells]):.3f} | "
                     f"{np.mean([c['samples_per_s'] for c in cells]):,.0f} | "
                     f"{np.mean([c['train_s'] for c in cells]):.0f} |")  # fmt: skip
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = path.with_name(f".{path.name}")
    fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    tmp.replace(path)
    return path


def sweep_text(sweep: LRSweep, arms: list[str], results: dict[str, dict], chosen: dict[str, float],
               default_lr: float) -> str:  # fmt: skip
    """The learning-rate sweep's section of the report: every arm's normalized score at every rate of
    ``sweep`` (``results``: cell JSONs by arm name, ``ARM@lrX``) and the rate ``chosen`` for it."""
    table = ["| arm | " + " | ".join(f"lr {lr:g}" for lr in sweep.lrs) + " | chosen |",
             "|---" * (len(sweep.lrs) + 2) + "|"]  # fmt: skip
    for a in arms:
        row = [f"{results[arm_at_lr(a, lr, default_lr)]['normalized_score']:.1f}" for lr in sweep.lrs]
        table.append(f"| {a} | " + " | ".join(row) + f" | {chosen[a]:g} |")
    return (f"Learning rate per arm: the best of {[float(x) for x in sweep.lrs]} on {sweep.task}, seed {sweep.seed} "
            f"(normalized score), then frozen for every task and seed:\n\n" + "\n".join(table))  # fmt: skip


def grid_text(cfg: DictConfig, summary: dict, argv: list[str], profile: str, tasks: list[str], wall_s: float,
              sweep: str = "") -> str:  # fmt: skip
    """The whole ``cadence-compare`` report of ``summary``: provenance, budget, the tables of :func:`markdown`,
    the ``sweep`` section (:func:`sweep_text`, '' without a sweep) and the figures of :data:`GRID_PLOTS`;
    ``tasks`` are every task the run trained on (the sweep's included), ``wall_s`` its duration."""
    sweep_section = f"{sweep}\n\n" if sweep else ""
    return (f"# Backbone comparison ({profile} profile)\n\n{provenance(argv)}  \n"
            f"Budget: {cfg.param_budget:,} parameters per policy, {cfg.train.steps} gradient steps"
            f"{per_task_text(cfg, tasks)}, "
            f"{len(cfg.seeds)} seed(s); this run took {wall_s / 60:.0f} min (finished cells are reused).\n\n"
            f"Normalized score 100·(R − R_random)/(R_expert − R_random), mean [95% bootstrap CI] over seeds:\n\n"
            f"{markdown(summary)}\n\n{sweep_section}![scores](scores.png)\n\n"
            f"Learning curves (mean over seeds) against gradient steps and training time:\n\n"
            f"![curves](curves.png)\n")  # fmt: skip


GRID_PLOTS: dict[str, Callable[[dict, Path], Path]] = {"scores.png": plot, "curves.png": plot_curves}
"""The figures of a ``cadence-compare`` report, by file name."""


def write_report(out: Path, text: str, summary: dict, plots: dict[str, Callable[[dict, Path], Path]],
                 copy: str | Path | None = None) -> None:  # fmt: skip
    """Write the report of ``summary`` under ``out``: ``results.md`` (``text``), ``summary.json`` (the
    statistics of every ``TASK/ARM`` cell) and the figures ``plots`` (``{FILE_NAME: plot function}``), every
    file atomically; ``copy`` (a Markdown path, e.g. ``docs/comparison/bc/report.md``) gets the text too
    and the figures beside it."""
    out.mkdir(parents=True, exist_ok=True)
    _write_text(out / "results.md", text)
    write_json(out / "summary.json", {f"{t}/{b}": v for (t, b), v in summary["cells"].items()})
    for folder in [out] + ([Path(copy).parent] if copy else []):
        folder.mkdir(parents=True, exist_ok=True)
        for name, draw in plots.items():
            draw(summary, folder / name)
    if copy:
        _write_text(Path(copy), text)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
