"""``cadence-compare [profile=quick] [tasks=[...]] [backbones=[...]] [seeds=[...]] [hydra/launcher=joblib]``.

Runs every (task × arm × seed) BC cell of :mod:`cadence.comparison` (finished cells are skipped),
then writes ``OUT/results.md`` and ``OUT/scores.png`` — and the same report to ``report`` when
given — with the command, machine and git commit that produced it.

First every task's dataset is collected (in this process). Then the unfinished cells run:

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

os.environ.setdefault("MUJOCO_GL", "egl")

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cadence.comparison import Cell, dataset_for, grid_cells, markdown, plot, plot_curves, run_cell, summarize
from cadence.envs import EnvConfig
from cadence.perf import configure_allocator

log = logging.getLogger("cadence.compare")


def provenance(argv: list[str]) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    cpu = platform.processor() or platform.machine()
    return (f"Command: `cadence-compare {' '.join(argv)}`  \nCommit: {commit or 'unknown'}, {time.strftime('%Y-%m-%d')}  \n"
            f"Machine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__}")  # fmt: skip


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


def run_compare(cfg: DictConfig, argv: list[str], launcher: list[str] | None = None, profile: str = "full") -> dict:
    """The grid of ``cfg`` and its report; ``launcher`` (Hydra overrides naming a launcher plug-in and its
    settings) runs the unfinished cells as a multirun, None runs them here one after another."""
    out = Path(cfg.out)
    t0 = time.perf_counter()
    cells, arms = grid_cells(cfg)
    datasets = {task: dataset_for(EnvConfig.load(task), out, cfg.collect, seed=0) for task in cfg.tasks}
    todo = [c for c in cells if not c.path(out).exists()]
    if launcher and todo:
        launch_cells(todo, [o for o in argv if not o.startswith(("hydra/", "hydra.", "-"))], launcher)
    results = []
    for c in cells:
        if launcher and not c.path(out).exists():
            raise ValueError(f"cell {c.id} has no result at {c.path(out)}; see its log under {out / 'launcher'}")
        r = run_cell(c, arms[c.backbone], out, datasets[c.task], cfg.param_budget, cfg.train, cfg.device,
                     cfg.robustness)  # fmt: skip
        log.info("%s %s seed %d: normalized score %.1f", c.task, c.backbone, c.seed, r["normalized_score"])
        results.append(r)
    summary = summarize(results)
    wall = time.perf_counter() - t0
    text = (f"# Backbone comparison ({profile} profile)\n\n{provenance(argv)}  \n"
            f"Budget: {cfg.param_budget:,} parameters per policy, {cfg.train.steps} gradient steps, "
            f"{len(cfg.seeds)} seed(s); this run took {wall / 60:.0f} min (finished cells are reused).\n\n"
            f"Normalized score 100·(R − R_random)/(R_expert − R_random), mean [95% bootstrap CI] over seeds:\n\n"
            f"{markdown(summary)}\n\n![scores](scores.png)\n\n"
            f"Learning curves (mean over seeds) against gradient steps and training time:\n\n![curves](curves.png)\n")  # fmt: skip
    (out / "results.md").write_text(text)
    (out / "summary.json").write_text(json.dumps({f"{t}/{b}": v for (t, b), v in summary["cells"].items()}, indent=2))
    for folder in [out] + ([Path(cfg.report).parent] if cfg.report else []):
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
