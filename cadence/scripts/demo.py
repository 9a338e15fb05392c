"""``cadence-demo``: the main job — demonstrations → one policy per backbone → evaluation → table + plot.

A thin Hydra wrapper around :func:`cadence.comparison.run_demo`, a one-task, one-seed run of the comparison
grid (:mod:`cadence.comparison`): every backbone gets the same dataset, encoder, head, parameter budget,
optimizer, schedule, gradient steps and seed (``cadence/configs/demo.yaml``); only the temporal backbone
differs. Finished backbones are read back on a re-run, so an interrupted demo continues where it stopped.
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from cadence.comparison import run_demo
from cadence.perf import configure_allocator


@hydra.main(config_path="../configs", config_name="demo", version_base=None)
def main(cfg: DictConfig) -> None:
    configure_allocator()
    logging.basicConfig(level=logging.INFO)
    try:
        run_demo(cfg)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"cadence-demo: error: {e}") from None


if __name__ == "__main__":
    main()
