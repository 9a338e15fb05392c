"""Backbone comparisons: a grid of (task × arm × seed) BC cells, one JSON per cell, statistics and a report.

* :mod:`.grid`: the grid spec: arms (a policy config plus overrides), cells, the learning-rate sweep and
  per-task settings;
* :mod:`.cells`: one cell: its dataset, its ``cadence-train algo=bc`` config, training and evaluation, resumable;
* :mod:`.stats`: rliable-style statistics (bootstrap CIs, the stratified IQM), learning curves, and the memory
  tasks' success vs horizon (:func:`memory_horizon`);
* :mod:`.report`: the Markdown tables, figures and provenance, and the one report writer;
* :mod:`.protocol`: the grid of ``cadence-compare`` (datasets, sweep, cells in-process or through a Hydra
  launcher, report) and the one-task demo of ``cadence-demo``.
"""

from .cells import dataset_dir, dataset_for, robustness_scores, run_cell, run_grid_cell, train_config
from .grid import (LR_TAG, Arm, Cell, LRSweep, Task, arm_at_lr, grid_cells, override_value, resolve_arms, resolve_task,
                   task_settings)  # fmt: skip
from .protocol import launch_cells, run_cells, run_compare, run_demo, tune
from .report import (GRID_PLOTS, MEMORY_ENVS, grid_plots, grid_text, markdown, memory_markdown, memory_tasks,
                     per_task_text, plot, plot_curves, plot_memory, provenance, sweep_text, write_report)  # fmt: skip
from .stats import (Horizon, bootstrap_ci, iqm, learning_curve, memory_cell, memory_horizon, memory_summary,
                    stratified_iqm_ci, summarize)  # fmt: skip

__all__ = ["GRID_PLOTS", "LR_TAG", "MEMORY_ENVS", "Arm", "Cell", "Horizon", "LRSweep", "arm_at_lr", "bootstrap_ci",
           "dataset_dir", "dataset_for", "grid_cells", "grid_plots", "grid_text", "iqm", "launch_cells",
           "learning_curve", "markdown", "memory_cell", "memory_horizon", "memory_markdown", "memory_summary",
           "memory_tasks", "override_value", "per_task_text", "plot", "plot_curves", "plot_memory", "provenance",
           "resolve_arms", "resolve_task", "Task", "robustness_scores", "run_cell", "run_cells", "run_compare",
           "run_demo", "run_grid_cell",
           "stratified_iqm_ci", "summarize", "sweep_text", "task_settings", "train_config", "tune",
           "write_report"]  # fmt: skip
