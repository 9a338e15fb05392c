"""``cadence-compare [profile=quick] [tasks=[...]] [backbones=[...]] [seeds=[...]]``: the comparison grid.

Runs every (task × backbone × seed) BC cell of :mod:`cadence.comparison` (finished cells are
skipped), then writes ``OUT/results.md`` and ``OUT/scores.png`` — and the same report to ``report``
when given — with the command, machine and git commit that produced it.
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
from omegaconf import DictConfig, OmegaConf

from cadence.comparison import Cell, dataset_for, markdown, plot, run_cell, summarize
from cadence.envs import EnvConfig
from cadence.perf import configure_allocator

log = logging.getLogger("cadence.compare")


def resolve_profile(cfg: DictConfig) -> DictConfig:
    if cfg.profile not in ("full", "quick"):
        raise ValueError(f"profile {cfg.profile!r} is not 'full' or 'quick'")
    if cfg.profile == "quick":
        cfg = OmegaConf.merge(cfg, cfg.quick)
    return cfg


def provenance(argv: list[str]) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    cpu = platform.processor() or platform.machine()
    return (f"Command: `cadence-compare {' '.join(argv)}`  \nCommit: {commit or 'unknown'}, {time.strftime('%Y-%m-%d')}  \n"
            f"Machine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__}")  # fmt: skip


def run_compare(cfg: DictConfig, argv: list[str]) -> dict:
    cfg = resolve_profile(cfg)
    out = Path(cfg.out)
    results, t0 = [], time.perf_counter()
    for task in cfg.tasks:
        dataset = dataset_for(EnvConfig.load(task), out, cfg.collect, seed=0)
        for seed in cfg.seeds:
            for backbone in cfg.backbones:
                r = run_cell(Cell(task, backbone, seed), out, dataset, cfg.param_budget, cfg.train, cfg.device)
                log.info("%s %s seed %d: normalized score %.1f", task, backbone, seed, r["normalized_score"])
                results.append(r)
    summary = summarize(results)
    wall = time.perf_counter() - t0
    text = (f"# Backbone comparison ({cfg.profile} profile)\n\n{provenance(argv)}  \n"
            f"Budget: {cfg.param_budget:,} parameters per policy, {cfg.train.steps} gradient steps, "
            f"{len(cfg.seeds)} seed(s); this run took {wall / 60:.0f} min (finished cells are reused).\n\n"
            f"Normalized score 100·(R − R_random)/(R_expert − R_random), mean [95% bootstrap CI] over seeds:\n\n"
            f"{markdown(summary)}\n\n![scores](scores.png)\n")  # fmt: skip
    (out / "results.md").write_text(text)
    (out / "summary.json").write_text(json.dumps({f"{t}/{b}": v for (t, b), v in summary["cells"].items()}, indent=2))
    plot(summary, out / "scores.png")
    if cfg.report:
        report = Path(cfg.report)
        plot(summary, report.parent / "scores.png")
        report.write_text(text)
    print(text)
    return summary


@hydra.main(config_path="../configs", config_name="compare", version_base=None)
def main(cfg: DictConfig) -> None:
    configure_allocator()
    logging.basicConfig(level=logging.INFO)
    try:
        run_compare(cfg, sys.argv[1:])
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"cadence-compare: error: {e}") from None


if __name__ == "__main__":
    main()
