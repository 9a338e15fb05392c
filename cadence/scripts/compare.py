"""``cadence-compare [profile=quick] [tasks=[...]] [backbones=[...]] [seeds=[...]] [hydra/launcher=joblib]``.

A thin Hydra wrapper around :func:`cadence.comparison.run_compare`: runs every (task × arm × seed) BC cell
of ``cadence/configs/compare.yaml`` (finished cells are skipped), then writes ``OUT/results.md``,
``OUT/summary.json``, ``OUT/scores.png`` and ``OUT/curves.png`` — and the same report to ``report`` when
given — with the command, machine and git commit that produced it. With ``hydra/launcher=NAME`` (joblib,
slurm, any Hydra launcher plug-in) the unfinished cells run as one Hydra multirun of
:mod:`cadence.scripts.compare_cell` with this command's overrides and ``hydra.launcher.*`` settings
(:mod:`cadence.comparison.protocol`); job logs go to ``OUT/launcher/TASK/ARM/SEED``.
"""

from __future__ import annotations

import logging
import sys

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from cadence.perf import configure_allocator
from cadence.scripts.cli import command

DISK_FULL = "finished cells are kept; free some space and run the same command again to continue"


@command("cadence-compare", "compare", disk_full=DISK_FULL)
def main(cfg: DictConfig) -> None:
    from cadence.comparison import run_compare

    configure_allocator()
    logging.basicConfig(level=logging.INFO)
    hc = HydraConfig.get()
    launcher = None
    if hc.runtime.choices.get("hydra/launcher", "basic") != "basic":  # cells as a multirun of that launcher
        launcher = [o for o in hc.overrides.hydra if o.startswith(("hydra/launcher=", "hydra.launcher."))]
    run_compare(cfg, sys.argv[1:], launcher, hc.runtime.choices["profile"])


if __name__ == "__main__":
    main()
