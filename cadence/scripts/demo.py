"""``cadence-demo``: the main job — demonstrations → one policy per backbone → evaluation → table + plot.

A one-task, one-seed run of the comparison grid (:mod:`cadence.comparison`): every backbone gets the
same dataset, encoder, head, parameter budget, optimizer, schedule, gradient steps and seed
(``cadence/configs/demo.yaml``); only the temporal backbone differs. Finished backbones are read
back on a re-run, so an interrupted demo continues where it stopped.
"""

from __future__ import annotations

import logging
from pathlib import Path


import hydra
from omegaconf import DictConfig

from cadence.comparison import Cell, dataset_for, markdown, plot, resolve_arms, run_cell, summarize
from cadence.perf import configure_allocator

log = logging.getLogger("cadence.demo")


def run_demo(cfg: DictConfig) -> dict:
    out = Path(cfg.out)
    dataset = dataset_for(cfg.env, out, cfg.collect, cfg.seed)
    results = []
    for arm in resolve_arms(list(cfg.backbones), {}):
        backbone = arm.name
        r = run_cell(Cell(cfg.env.name, backbone, cfg.seed), arm, out, dataset, cfg.param_budget, cfg.train, cfg.device)
        print(f"{backbone}: normalized score {r['normalized_score']:.1f} (return {r['mean_return']:.1f}), "
              f"{r['params']:,} parameters, trained in {r['train_s']:.0f} s")  # fmt: skip
        results.append(r)
    summary = summarize(results)
    text = markdown(summary)
    title = f"{cfg.env.name}: behavior cloning, {cfg.param_budget:,}-parameter policies, seed {cfg.seed}"
    (out / "results.md").write_text(f"# {title}\n\n{text}\n")
    plot(summary, out / "comparison.png")
    print(f"\n{title}\n\n{text}\n\nplot: {out / 'comparison.png'}   table: {out / 'results.md'}")
    return summary


@hydra.main(config_path="../configs", config_name="demo", version_base=None)
def main(cfg: DictConfig) -> None:
    configure_allocator()
    logging.basicConfig(level=logging.INFO)
    run_demo(cfg)


if __name__ == "__main__":
    main()
