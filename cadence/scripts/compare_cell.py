"""One cell of the comparison grid as a Hydra job: ``python -m cadence.scripts.compare_cell cell=TASK/ARM/SEED``.

``cadence-compare hydra/launcher=NAME`` runs its unfinished cells as a multirun of this app
(``--multirun cell=A,B,...`` with its own overrides), so every launcher plug-in — joblib on all cores,
submitit on SLURM — runs the same function. It composes the same ``compare.yaml`` (profile included),
trains and evaluates the cell (or reads its finished JSON back) and writes
``OUT/cells/TASK/ARM/seedS.json``. The task's dataset must already exist: cadence-compare collects
every dataset before it launches the cells, so parallel jobs never collect the same one twice.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from cadence.perf import configure_allocator
from cadence.scripts.cli import command

log = logging.getLogger("cadence.compare_cell")


@command("compare_cell", "compare", disk_full="finished cells are kept; free some space and run the job again")
def main(cfg: DictConfig) -> float:
    if cfg.cell is None:
        raise ValueError("name the cell, e.g. cell=invertedpendulum_p/linoss/0 (TASK/ARM/SEED)")
    from cadence.comparison import Cell, run_grid_cell

    configure_allocator()
    result = run_grid_cell(cfg, Cell.parse(cfg.cell))
    log.info("%s: normalized score %.1f", cfg.cell, result["normalized_score"])
    return result["normalized_score"]


if __name__ == "__main__":
    main()
