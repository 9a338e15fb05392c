"""The protocols that run cells and report on them: the grid of ``cadence-compare`` and the one-task demo.

The grid (:func:`run_compare`): a task's source (:class:`Sources`: its dataset, or with ``algorithm=ppo``, the RL track,
its reference returns) is made (in this process) before its first unfinished cell runs, so a grid whose cells are
all finished collects nothing. With
``lr_sweep`` set, the tuning cells (every arm's search over its learning rate, extended until its best rate is
interior, and its other knobs, with one trial budget for all, on one task and a tuning seed) run next and fix
each arm's values (:func:`tune`); then the grid's cells, with those values. Unfinished cells run:

* with no launcher, one after another in this process;
* with a launcher (Hydra overrides naming a launcher plug-in, ``hydra/launcher=joblib``: all cores of this
  machine; ``slurm``: the SLURM example in ``cadence/configs/hydra/launcher/slurm.yaml``; any other Hydra
  launcher plug-in) as one Hydra multirun of ``cadence.scripts.compare_cell``, ``cell=TASK/ARM/SEED,...``,
  with the command's overrides and its ``hydra.launcher.*`` settings (:func:`launch_cells`); this process
  waits for it, then aggregates. Job logs go to ``OUT/launcher/TASK/ARM/SEED``.

The demo (:func:`run_demo`): the grid of ``demo.yaml`` (two horizons of the cue task, one seed, four backbones),
then one sentence on what its memory section shows.

The budget rule (``budget.rounds`` > 0, :func:`extend_budgets`): after the grid's cells, every task whose best
arm's learning curve still rises is trained again at a larger budget (cells ``TASK@stepsN``), round by round; the
report is of each task's last round.

``finished_only=true`` reports the cells already finished (a grid in progress, e.g. one committed cell by cell
across sessions) and trains nothing.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import DictConfig

from ..configs import to_dataclass
from .cells import dataset_for, finished_cell, reference_for, run_cell
from .grid import (Budget, Cell, LRSweep, budget_name, check_algo, check_grid, grid_cells, resolve_arms, resolve_task,
                   source_task, task_settings)  # fmt: skip
from .report import grid_plots, grid_text, memory_reading, memory_tasks, sweep_text, write_report
from .stats import memory_summary, summarize, task_convergence

log = logging.getLogger(__name__)


def cell_summary(r: dict) -> str:
    """One line on a finished cell: its scores, size and training time, or why it was not trained."""
    if r.get("status") == "out_of_budget":
        return f"out of budget ({r['message']})"
    success = "" if r.get("success_rate") is None else f", success {100 * r['success_rate']:.0f}%"
    return (f"normalized score {r['normalized_score']:.1f} (return {r['mean_return']:.1f}{success}), "
            f"{r['params']:,} parameters, trained in {r['train_s']:.0f} s")  # fmt: skip


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


class Sources(dict):
    """``sources[TASK]``: what the cells of TASK train from (:mod:`.cells`), made on first use: with ``algo=bc`` the
    dataset of its demonstrations (:func:`dataset_for`, from the task's ``demonstrations`` task when it names one),
    with ``algorithm=ppo`` its reference returns (:func:`reference_for`). ``TASK@stepsN``: TASK's."""

    def __init__(self, cfg: DictConfig):
        super().__init__()
        self.cfg, self.algo = cfg, check_algo(cfg)

    def __missing__(self, task: str) -> Path:
        out, source = Path(self.cfg.out), source_task(task, self.cfg.variants, self.algo)
        if self.algo == "bc":
            self[task] = dataset_for(source, out, task_settings(self.cfg, source.name)[0], seed=0)
        else:
            self[task] = reference_for(source, out, seed=0)
        return self[task]


def run_cells(cfg: DictConfig, cells: list[Cell], arms: dict, sources: Sources, argv: list[str],
              launcher: list[str] | None) -> list[dict]:  # fmt: skip
    """Every cell's result: the unfinished ones run first, as a multirun of ``launcher`` or else here; with
    ``cfg.finished_only``, the finished ones only."""
    out = Path(cfg.out)
    todo = [] if cfg.finished_only else [c for c in cells if not c.path(out).exists()]
    if launcher and todo:
        for task in {c.task for c in todo}:  # the launched jobs read the sources: make them here first
            sources[task]
        launch_cells(todo, [o for o in argv if not o.startswith(("hydra/", "hydra.", "-"))], launcher)
    results = []
    for c in cells:
        if not c.path(out).exists() and (cfg.finished_only or launcher):
            if cfg.finished_only:
                continue
            raise ValueError(f"cell {c.id} has no result at {c.path(out)}; see its log under {out / 'launcher'}")
        arm, train = arms[c.backbone], task_settings(cfg, c.task)[1]
        r = finished_cell(c, arm, out, train) or run_cell(c, arm, out, sources[c.task], cfg.param_budget, train,
                                                          cfg.device, cfg.robustness, resolve_task(c.task, cfg.variants),
                                                          sources.algo)  # fmt: skip
        log.info("%s %s seed %d: %s", c.task, c.backbone, c.seed, cell_summary(r))
        results.append(r)
    return results


def tune(cfg: DictConfig, sources: Sources, argv: list[str], launcher: list[str] | None) -> tuple[list[str], str]:
    """The tuning of ``cfg.lr_sweep`` over ``cfg.backbones``: every arm's coordinate search
    (:meth:`SearchSpace.replay`, all with one trial budget: :meth:`LRSweep.spaces`) on the sweep's task and tuning
    seeds, round by round: each round runs every arm's next step's cells together, each on every tuning seed
    (through ``launcher`` when given), until every search is done. Returns the arms at their best values (``ARM``
    or ``ARM@TAGVALUE...``) and the sweep's section of the report (:func:`sweep_text`). With ``cfg.finished_only`` the search is replayed from its
    finished trials, and a search with a trial still to run is refused."""
    sweep = to_dataclass(LRSweep, cfg.lr_sweep, "lr_sweep")
    arms = resolve_arms(list(cfg.backbones), cfg.arms)
    spaces, runs = sweep.spaces(arms, cfg.arms, task_settings(cfg, sweep.task)[1], sources.algo), {}  # as trained
    while cells := [Cell(sweep.task, name, seed) for s in spaces for name in s.replay(sweep, sweep.scores(runs)).pending
                    for seed in sweep.seeds]:  # fmt: skip
        if cfg.finished_only and (todo := [c.id for c in cells if not c.path(Path(cfg.out)).exists()]):
            raise ValueError(f"finished_only=true, but the tuning on {sweep.task} has not finished: {len(todo)} "
                             f"trial(s) of its next round to run ({', '.join(todo[:3])}...); run the grid (finished "
                             "cells are reused) or set lr_sweep=null")  # fmt: skip
        _, trial_arms = grid_cells(cfg, list(dict.fromkeys(c.backbone for c in cells)))
        for c, r in zip(cells, run_cells(cfg, cells, trial_arms, sources, argv, launcher)):
            runs.setdefault(c.backbone, {})[c.seed] = r
    tunings = [s.replay(sweep, sweep.scores(runs)) for s in spaces]
    return [t.name for t in tunings], sweep_text(sweep, tunings)


def extend_budgets(cfg: DictConfig, results: list[dict], arms: dict, sources: Sources, argv: list[str],
                   launcher: list[str] | None) -> tuple[list[dict], dict[str, list[dict]]]:  # fmt: skip
    """The budget rule, enforced (``cfg.budget``: :class:`~.grid.Budget`): round after round, every task whose best
    arm's learning curve has not converged (:func:`~.stats.task_convergence`) is trained again, every arm and seed, at
    ``factor`` × its steps (cells ``TASK@stepsN``, through ``launcher`` when given), and those cells replace the
    task's earlier ones, up to ``rounds`` times. Returns the final cells, named by their tasks (each keeps its
    ``train.steps``), and each task's rounds ``{TASK: [{steps, arm, gain, converged}, ...]}`` (empty without
    rounds)."""
    budget = to_dataclass(Budget, cfg.budget, "budget")
    if not budget.rounds:
        return results, {}
    by_task = {t: [r for r in results if r["task"] == t] for t in cfg.tasks}
    rounds: dict[str, list[dict]] = {t: [] for t in cfg.tasks}
    current = {t: t for t in cfg.tasks}  # the name of each task's latest round
    for n in range(budget.rounds + 1):
        todo = {}
        for task in current:  # the tasks trained in the last round (all of them at first)
            steps = task_settings(cfg, current[task])[1]["steps"]
            rounds[task].append({"steps": steps} | (task_convergence(by_task[task]) or {"converged": None}))
            if n < budget.rounds and rounds[task][-1]["converged"] is False:
                todo[task] = budget_name(task, steps * budget.factor)
        if not todo:
            break
        log.info("budget rule, round %d: %s", n + 1, ", ".join(f"{t} -> {name}" for t, name in todo.items()))
        cells = [Cell(name, arm, seed) for name in todo.values() for seed in cfg.seeds for arm in arms]
        extended = run_cells(cfg, cells, arms, sources, argv, launcher)
        by_task |= {t: [r for r in extended if r["task"] == name] for t, name in todo.items()}
        current = todo
    final = [r | {"task": t} for t, runs in by_task.items() for r in runs]
    return final, rounds


def run_compare(cfg: DictConfig, argv: list[str], launcher: list[str] | None = None, profile: str = "full",
                command: list[str] | None = None) -> dict:  # fmt: skip
    """The grid of ``cfg`` (a composed ``compare.yaml``) and its report (``OUT/results.md``, ``summary.json``,
    ``scores.png``, ``curves.png``, ``profiles.png``, and the memory section and ``memory.png`` when the grid has
    memory tasks (:func:`memory_tasks`); also ``cfg.report`` when set), which names ``command`` as the command
    (default ``cadence-compare ARGV``); ``argv`` (overrides) also goes to the launched cells; ``launcher`` (Hydra
    overrides naming a launcher plug-in and its settings) runs the unfinished cells as a multirun, None runs them
    here one after another. With ``cfg.lr_sweep`` the sweep runs first and the grid trains every arm at its chosen
    configuration. Returns the :func:`summarize` statistics and, under ``"memory"``,
    the :func:`memory_summary` of the memory tasks ({} without any)."""
    out = Path(cfg.out)
    t0 = time.perf_counter()
    tasks = check_grid(cfg)
    memory, levels = memory_tasks(cfg)  # an ill-defined memory family is refused before anything trains
    sources = Sources(cfg)  # a task may train on another's dataset (variants.TASK.demonstrations)
    backbones, sweep = tune(cfg, sources, argv, launcher) if cfg.lr_sweep else (None, "")
    cells, arms = grid_cells(cfg, backbones)
    results, rounds = extend_budgets(cfg, run_cells(cfg, cells, arms, sources, argv, launcher), arms, sources, argv,
                                     launcher)  # fmt: skip
    summary, memory_stats = summarize(results, unranked=memory), memory_summary(results, memory, levels)
    summary["budget_rounds"] = rounds
    progress = (len(results), len(cells)) if cfg.finished_only and len(results) < len(cells) else None  # done: none
    text = grid_text(cfg, summary, command or ["cadence-compare", *argv], profile, tasks, time.perf_counter() - t0,
                     sweep, memory_stats, results, progress)  # fmt: skip
    write_report(out, text, summary, grid_plots(memory_stats), cfg.report)
    print(text)
    return summary | {"memory": memory_stats}


def run_demo(cfg: DictConfig, argv: list[str] | None = None) -> dict:
    """The demo of ``cfg`` (a composed ``demo.yaml``: ``compare.yaml`` at its ``demo`` profile): :func:`run_compare`
    with ``cfg.jobs`` cells at a time (Hydra's joblib launcher, which gives each job its share of the cores;
    finished cells are read back), then one sentence on what its memory section shows (:func:`memory_reading`),
    printed and returned under ``"reading"`` with the statistics. ``argv``: the command's overrides."""
    if cfg.jobs < 1:
        raise ValueError(f"jobs must be >= 1 (cells at a time), got {cfg.jobs}")
    cells_argv = ["profile=demo", *(o for o in argv or [] if not o.startswith("jobs="))]  # cells compose compare.yaml
    launcher = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={cfg.jobs}"] if cfg.jobs > 1 else None
    summary = run_compare(cfg, cells_argv, launcher, "demo", ["cadence-demo", *(argv or [])])
    reading = memory_reading(summary["memory"])
    print(f"\nWhat it shows: {reading}\nplots: {Path(cfg.out) / 'memory.png'}   table: {Path(cfg.out) / 'results.md'}")
    return summary | {"reading": reading}
