"""``cadence-compare [profile=quick] [tasks=[...]] [backbones=[...]] [seeds=[...]] [hydra/launcher=joblib]``.

Runs every (task × arm × seed) BC cell of :mod:`cadence.comparison` (finished cells are skipped),
then writes ``OUT/results.md`` and ``OUT/scores.png`` — and the same report to ``report`` when
given — with the command, machine and git commit that produced it.

First every task's dataset is collected (in this process). With ``lr_sweep`` set, the sweep's cells
(every arm at every learning rate, on one task and seed) run next and fix each arm's learning rate;
then the grid's cells, with those rates. Unfinished cells run:

* by default (Hydra's basic launcher) one after another in this process;
* with ``hydra/launcher=NAME`` (``joblib``: all cores of this machine; ``slurm``: the SLURM example
  in ``cadence/configs/hydra/launcher/slurm.yaml``; any other Hydra launcher plug-in) as one Hydra
  multirun of :mod:`cadence.scripts.compare_cell`, ``cell=TASK/ARM/SEED,...``, with this command's
  overrides and its ``hydra.launcher.*`` settings; this process waits for it, then aggregates.
  Job logs go to ``OUT/launcher/TASK/ARM/SEED``.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cadence.comparison import (Cell, LRSweep, arm_at_lr, dataset_for, grid_cells, markdown, plot, plot_curves, run_cell,
                                summarize, task_settings)
from cadence.configs import to_dataclass
from cadence.envs import EnvConfig
from cadence.perf import configure_allocator

log = logging.getLogger("cadence.compare")


def provenance(argv: list[str]) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    cpu = platform.processor() or platform.machine()
    return (f"Command: `cadence-compare {' '.join(argv)}`  \nCommit: {commit or 'unknown'}, {time.strftime('%Y-%m-%d')}  \n"
            f"Machine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__}")  # fmt: skip


def per_task_text(cfg: DictConfig, tasks: list[str]) -> str:
    """The ``per_task`` settings of ``tasks`` for the report's budget line ('' when there are none)."""
    own = {t: cfg.per_task[t] for t in tasks if cfg.per_task.get(t)}
    text = "; ".join(f"{t}: " + ", ".join(f"{part}.{k}={v}" for part, kv in s.items() for k, v in kv.items())
                     for t, s in own.items())  # fmt: skip
    return f" (per task, for every arm alike: {text})" if text else ""


def launch_cells(cells: list[Cell], overrides: list[str], launcher: list[str]) -> None:
    """Run ``cells`` as one Hydra multirun of ``cadence.scripts.compare_cell`` with the ``launcher``
    overrides (``hydra/launcher=joblib``, ``hydra.launcher.n_jobs=2``, ...); waits for every job."""
    cmd = [sys.executable, "-m", "cadence.scripts.compare_cell", "--multirun", *overrides, *launcher,
           "cell=" + ",".join(c.id for c in cells)]  # fmt: skip
    log.info("launching %d cells: %s", len(cells), " ".join(cmd[1:]))
    done = subprocess.run(cmd)
    if done.returncode:
        raise ValueError(f"the multirun of {len(cells)} cells failed (exit {done.returncode}); its job logs are "
                         "under OUT/launcher/; finished cells are kept, so run the same command again")  # fmt: skip


def run_cells(cfg: DictConfig, cells: list[Cell], arms: dict, datasets: dict, argv: list[str],
              launcher: list[str] | None) -> list[dict]:  # fmt: skip
    """Every cell's result: the unfinished ones run first, as a multirun of ``launcher`` or else here."""
    out = Path(cfg.out)
    todo = [c for c in cells if not c.path(out).exists()]
    if launcher and todo:
        launch_cells(todo, [o for o in argv if not o.startswith(("hydra/", "hydra.", "-"))], launcher)
    results = []
    for c in cells:
        if launcher and not c.path(out).exists():
            raise ValueError(f"cell {c.id} has no result at {c.path(out)}; see its log under {out / 'launcher'}")
        r = run_cell(c, arms[c.backbone], out, datasets[c.task], cfg.param_budget, task_settings(cfg, c.task)[1],
                     cfg.device, cfg.robustness)  # fmt: skip
        log.info("%s %s seed %d: normalized score %.1f", c.task, c.backbone, c.seed, r["normalized_score"])
        results.append(r)
    return results


def tune(cfg: DictConfig, datasets: dict, argv: list[str], launcher: list[str] | None) -> tuple[list[str], str]:
    """The learning-rate sweep of ``cfg.lr_sweep`` over ``cfg.backbones``: the arms at their chosen rates
    (``ARM`` or ``ARM@lrX``) and the sweep's Markdown table."""
    sweep = to_dataclass(LRSweep, cfg.lr_sweep, "lr_sweep")
    names, default = list(cfg.backbones), cfg.train.lr
    cells = sweep.cells(names, default)
    _, arms = grid_cells(cfg, [c.backbone for c in cells])
    results = {c.backbone: r for c, r in zip(cells, run_cells(cfg, cells, arms, datasets, argv, launcher))}
    chosen = sweep.choose(names, results, default)
    table = ["| arm | " + " | ".join(f"lr {lr:g}" for lr in sweep.lrs) + " | chosen |",
             "|---" * (len(sweep.lrs) + 2) + "|"]
    for a in names:
        row = [f"{results[arm_at_lr(a, lr, default)]['normalized_score']:.1f}" for lr in sweep.lrs]
        table.append(f"| {a} | " + " | ".join(row) + f" | {chosen[a]:g} |")
    text = (f"Learning rate per arm: the best of {[float(x) for x in sweep.lrs]} on {sweep.task}, seed {sweep.seed} "
            f"(normalized score), then frozen for every task and seed:\n\n" + "\n".join(table))  # fmt: skip
    return [arm_at_lr(a, chosen[a], default) for a in names], text


def run_compare(cfg: DictConfig, argv: list[str], launcher: list[str] | None = None, profile: str = "full") -> dict:
    """The grid of ``cfg`` and its report; ``launcher`` (Hydra overrides naming a launcher plug-in and its
    settings) runs the unfinished cells as a multirun, None runs them here one after another. With
    ``cfg.lr_sweep`` the sweep runs first and the grid trains every arm at its chosen learning rate."""
    out = Path(cfg.out)
    t0 = time.perf_counter()
    tasks = list(dict.fromkeys([*cfg.tasks, *([cfg.lr_sweep.task] if cfg.lr_sweep else [])]))
    datasets = {task: dataset_for(EnvConfig.load(task), out, task_settings(cfg, task)[0], seed=0) for task in tasks}
    backbones, sweep_text = tune(cfg, datasets, argv, launcher) if cfg.lr_sweep else (None, "")
    cells, arms = grid_cells(cfg, backbones)
    results = run_cells(cfg, cells, arms, datasets, argv, launcher)
    summary = summarize(results)
    wall = time.perf_counter() - t0
    sweep_section = f"{sweep_text}\n\n" if sweep_text else ""
    text = (f"# Backbone comparison ({profile} profile)\n\n{provenance(argv)}  \n"
            f"Budget: {cfg.param_budget:,} parameters per policy, {cfg.train.steps} gradient steps"
            f"{per_task_text(cfg, tasks)}, "
            f"{len(cfg.seeds)} seed(s); this run took {wall / 60:.0f} min (finished cells are reused).\n\n"
            f"Normalized score 100·(R − R_random)/(R_expert − R_random), mean [95% bootstrap CI] over seeds:\n\n"
            f"{markdown(summary)}\n\n{sweep_section}![scores](scores.png)\n\n"
            f"Learning curves (mean over seeds) against gradient steps and training time:\n\n![curves](curves.png)\n")  # fmt: skip
    (out / "results.md").write_text(text)
    (out / "summary.json").write_text(json.dumps({f"{t}/{b}": v for (t, b), v in summary["cells"].items()}, indent=2))
    for folder in [out] + ([Path(cfg.report).parent] if cfg.report else []):
        folder.mkdir(parents=True, exist_ok=True)
        plot(summary, folder / "scores.png")
        plot_curves(summary, folder / "curves.png")
    if cfg.report:
        Path(cfg.report).write_text(text)
    print(text)
    return summary


@hydra.main(config_path="../configs", config_name="compare", version_base=None)
def main(cfg: DictConfig) -> None:
    configure_allocator()
    logging.basicConfig(level=logging.INFO)
    hc = HydraConfig.get()
    launcher = None
    if hc.runtime.choices.get("hydra/launcher", "basic") != "basic":  # cells as a multirun of that launcher
        launcher = [o for o in hc.overrides.hydra if o.startswith(("hydra/launcher=", "hydra.launcher."))]
    try:
        run_compare(cfg, sys.argv[1:], launcher, hc.runtime.choices["profile"])
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"cadence-compare: error: {e}") from None


if __name__ == "__main__":
    main()
