"""``cadence-demo``: the main job — demonstrations → one policy per backbone → evaluation → table + plot.

A thin Hydra wrapper around :func:`cadence.comparison.run_demo`: the comparison grid (:mod:`cadence.comparison`)
at two horizons of the cue → delay → reach task and one seed (``cadence/configs/demo.yaml``). Every backbone gets
the same dataset, encoder, head, parameter budget, optimizer, schedule, gradient steps and seed; only the temporal
backbone differs. Finished cells are read back on a re-run, so an interrupted demo continues where it stopped.
"""

from __future__ import annotations

import logging
import sys

from omegaconf import DictConfig

from cadence.perf import configure_allocator
from cadence.scripts.cli import command


@command("cadence-demo", "demo", disk_full="finished backbones are kept; free some space and run the same command "
         "again to continue")  # fmt: skip
def main(cfg: DictConfig) -> None:
    from cadence.comparison import run_demo

    configure_allocator()
    logging.basicConfig(level=logging.INFO)
    run_demo(cfg, sys.argv[1:])


if __name__ == "__main__":
    main()
