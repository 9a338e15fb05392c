"""Backbone comparisons: a grid of (task × arm × seed) cells, BC or PPO, one JSON per cell, statistics and a report.

* :mod:`.grid`: the grid spec: arms (a policy config plus overrides, ``ARM@TAGVALUE`` names), cells, the tuning
  (the learning-rate sweep and each arm's search space, one trial budget for all) and per-task settings;
* :mod:`.cells`: one cell: its source (BC's dataset, PPO's reference returns), its ``cadence-train`` config,
  training and evaluation, resumable;
* :mod:`.stats`: rliable-style statistics (bootstrap CIs, the stratified IQM, performance profiles, the
  probability of improvement), learning curves, and the memory tasks' success vs horizon (:func:`memory_horizon`);
* :mod:`.report`: the Markdown tables, figures and provenance, and the one report writer;
* :mod:`.protocol`: the grid of ``cadence-compare`` (sources, sweep, cells in-process or through a Hydra
  launcher, report) and the one-task demo of ``cadence-demo``.
"""

from .cells import (dataset_dir, dataset_for, read_reference, reference_for, robustness_scores, run_cell, run_grid_cell,
                    source_path, train_config)  # fmt: skip
from .grid import (TAG_KEYS, Arm, Cell, LRSweep, Search, SearchSpace, Task, Tuning, arm_name, check_algo,
                   demonstrations_task, grid_cells, override_value, resolve_arms, resolve_task, sweep_step, task_settings)  # fmt: skip
from .protocol import Sources, launch_cells, run_cells, run_compare, run_demo, tune
from .report import (GRID_PLOTS, MEMORY_ENVS, grid_plots, grid_text, markdown, memory_markdown, memory_reading,
                     memory_tasks, per_task_text, plot, plot_curves, plot_memory, plot_profiles, provenance,
                     sweep_text, write_report)  # fmt: skip
from .stats import (CONVERGED_GAIN, CONVERGED_TAIL, convergence, equal_seconds, Horizon, Profile, bootstrap_ci, improvement_ci, iqm,
                    learning_curve, memory_cell, memory_horizon, memory_summary, performance_profile,
                    probability_of_improvement, score_distribution, stratified_bootstrap_ci, stratified_iqm_ci,
                    summarize)  # fmt: skip

__all__ = ["Arm", "arm_name", "bootstrap_ci", "Cell", "check_algo", "CONVERGED_GAIN", "CONVERGED_TAIL", "convergence", "dataset_dir",
           "dataset_for", "demonstrations_task", "equal_seconds", "grid_cells", "grid_plots", "GRID_PLOTS", "grid_text", "Horizon",
           "improvement_ci", "iqm", "launch_cells", "learning_curve", "LRSweep", "markdown", "memory_cell",
           "MEMORY_ENVS", "memory_horizon", "memory_markdown", "memory_reading", "memory_summary", "memory_tasks",
           "override_value", "per_task_text", "performance_profile", "plot", "plot_curves", "plot_memory",
           "plot_profiles", "probability_of_improvement", "Profile", "provenance", "read_reference", "reference_for", "resolve_arms", "resolve_task",
           "robustness_scores", "run_cell", "run_cells", "run_compare", "run_demo", "run_grid_cell",
           "score_distribution", "Search", "SearchSpace", "source_path", "Sources", "stratified_bootstrap_ci", "stratified_iqm_ci", "summarize",
           "sweep_step", "sweep_text", "TAG_KEYS", "Task", "task_settings", "train_config", "tune", "Tuning",
           "write_report"]  # fmt: skip
