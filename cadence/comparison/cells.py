"""One cell of a comparison grid: what it trains from, its ``cadence-train`` config, training and evaluation.

Every cell is ``cadence-train algo=ALGO`` (the grid's ``algorithm``) composed from the same YAML files as the CLI
(:func:`cadence.configs.compose`, so it runs from plain Python as well as inside a Hydra app) and trained
by the same :func:`cadence.training.train`, with the same data, encoder, head, parameter budget,
optimizer, schedule, number of steps and seed for every arm; only the policy changes. What a cell trains from is
its task's **source**: for BC the task's demonstrations (:func:`dataset_for`), for PPO (the RL track) the task's
reference returns (:func:`reference_for`: the clean expert's and the floor policy's, which normalize its scores
as a BC dataset's recorded ones do; PPO cells also use a gaussian head, which samples the actions). A cell's
result is ``OUT/cells/TASK/ARM/seedS.json`` and its run directory ``OUT/runs/TASK/ARM/seedS``. A finished
cell is skipped (its JSON is read back) and an interrupted one resumes from its last checkpoint, so an
interrupted grid continues where it stopped. Cells are independent jobs: run one after another in one
process, or as a Hydra multirun through a launcher plug-in (:mod:`cadence.comparison.protocol`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from functools import partial
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ..configs import compose
from ..datasets import collect_dataset, measure_reference
from ..datasets.format import read_json, write_json
from ..envs import EnvConfig, make_env
from ..evaluation import evaluate
from ..policies import SequencePolicy
from ..perf import PeakMemory
from ..training import train  # the CLI's own code path
from ..training.bc import OutOfBudget
from ..training.seeds import EVAL_SEED
from .grid import (Arm, Cell, Task, check_algo, override_value, resolve_arms, resolve_task, source_task,
                   task_settings)  # fmt: skip

log = logging.getLogger(__name__)


def dataset_dir(out: Path, task: str) -> Path:
    """Where the grid keeps the task's demonstrations."""
    return out / "datasets" / task


def dataset_for(task: Task | str, out: Path, collect: DictConfig, seed: int) -> Path:
    """The task's demonstrations under ``out/datasets/TASK``, collected on first use: ``collect.episodes``
    episodes of the task's expert with DART noise ``collect.noise``, or the task's own ``demo_noise``
    when that is null. A dataset already there with another noise or episode count is refused."""
    task = task if isinstance(task, Task) else resolve_task(task, None)
    task_cfg = EnvConfig.load(compose("train", task.overrides()).env)
    noise = task_cfg.demo_noise if collect.noise is None else float(collect.noise)
    root = dataset_dir(out, task.name)
    meta = root / "meta" / "cadence.json"
    if not meta.exists():
        log.info("collecting %d %s demonstrations on %s (noise %g)", collect.episodes, task_cfg.expert, task_cfg.name,
                 noise)  # fmt: skip
        collect_dataset(task_cfg, task_cfg.expert, collect.episodes, root, noise=noise, seed=seed)
    recorded = json.loads(meta.read_text())
    if (recorded["noise"], recorded["episodes"]) != (noise, collect.episodes):
        raise ValueError(f"{root} holds {recorded['episodes']} episodes collected with noise {recorded['noise']}, but "
                         f"the grid asks for {collect.episodes} with noise {noise}: delete that dataset and the cells "
                         "trained on it (OUT/cells/TASK, OUT/runs/TASK), or use another out=")  # fmt: skip
    return root


def reference_for(task: Task | str, out: Path, seed: int) -> Path:
    """The task's reference returns at ``out/references/TASK.json``, measured on first use
    (:func:`cadence.datasets.measure_reference`: episodes of the task's expert and of its floor policy): the source
    of the RL track's cells."""
    task = task if isinstance(task, Task) else resolve_task(task, None)
    path = source_path(out, task.name, "ppo")
    if not path.exists():
        task_cfg = EnvConfig.load(compose("train", task.overrides()).env)
        log.info("measuring the reference returns of %s (expert %s and the floor policy)", task.name, task_cfg.expert)
        reference = measure_reference(task_cfg, task_cfg.expert, seed=seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, reference)
    return path


def read_reference(source: Path) -> tuple[float, float] | None:
    """(expert, floor) returns of a cell's source: a dataset's recorded ones (``meta/cadence.json``; None when it
    records none) or a :func:`reference_for` file's."""
    ref = read_json(source / "meta" / "cadence.json" if source.is_dir() else source).get("reference")
    return (ref["expert"], ref["random"]) if ref else None


def robustness_scores(env_cfg: DictConfig, checkpoint: Path, stressors: dict, episodes: int, envs: int, seed: int,
                      reference: tuple[float, float] | None) -> dict[str, float]:  # fmt: skip
    """Normalized score of ``checkpoint`` on ``env_cfg`` under each stressor ``{NAME: {wrapper: value}}``
    (``cadence.envs.RobustnessConfig`` keys: obs_noise, obs_delay, action_delay, dropout, dropout_mode)."""
    policy = SequencePolicy.from_pretrained(checkpoint).eval()
    env = OmegaConf.to_container(env_cfg, resolve=True)
    scores = {}
    for name, wrappers in stressors.items():
        stressed = env | {"wrappers": env["wrappers"] | wrappers}
        env_fns = [partial(make_env, stressed) for _ in range(envs)]
        r = evaluate(policy, env_fns, episodes, seed=seed, reference=reference)
        scores[name] = r.normalized_score if r.normalized_score is not None else r.mean_return
    return scores


def train_config(cell: Cell, arm: Arm, out: Path, source: Path, budget: int, train_overrides: dict,
                 device: str = "cpu", task: Task | None = None, algo: str = "bc") -> DictConfig:  # fmt: skip
    """The ``cadence-train algo=ALGO`` config of one cell: its task's env (``task``, default the env config named
    ``cell.task``), what it trains from (``source``: BC's dataset, PPO's reference returns, module docstring), the
    grid's shared ``train_overrides`` (keys of ``algo``), then the arm's own overrides, which win (e.g.
    ``linoss_l64``'s ``algo.window``)."""
    if isinstance(train_overrides, DictConfig):
        train_overrides = OmegaConf.to_container(train_overrides, resolve=True)
    task = task or resolve_task(cell.task, None)
    if algo == "bc":
        inputs = [f"dataset={source}"]
    else:  # RL: the task itself, actions sampled from a gaussian head, scores normalized by the task's references
        inputs = ["policy.head=gaussian"] + ([f"reference={override_value(list(ref))}"]
                                             if (ref := read_reference(source)) else [])  # fmt: skip
    overrides = [f"algo={algo}", *task.overrides(), f"seed={cell.seed}", f"device={device}",
                 "resume=true",  # a cell interrupted mid-training continues from its last checkpoint
                 *inputs, f"policy.param_budget={budget}",
                 f"run_dir={out / 'runs' / cell.task / cell.backbone / f'seed{cell.seed}'}"]  # fmt: skip
    overrides += [f"algo.{k}={override_value(v)}" for k, v in train_overrides.items()] + arm.train_overrides()
    return compose("train", overrides)


def finished_cell(cell: Cell, arm: Arm, out: Path, train_overrides: dict) -> dict | None:
    """The JSON of ``cell`` when it is finished (None when not); one trained with other overrides or other
    ``train`` settings than ``arm`` and ``train_overrides`` now ask for is refused."""
    path = cell.path(out)
    if not path.exists():
        return None
    done = json.loads(path.read_text())
    for what, now in (("overrides", arm.overrides), ("train", train_overrides)):
        if done.get(what, now) != now:  # cells written before "train" was recorded have none to compare
            raise ValueError(f"cell {cell.id} at {path} was trained with {what} {done[what]}, but the grid now asks "
                             f"for {now}: delete that JSON and the cell's run directory (OUT/runs/TASK/ARM/seedS), "
                             "use another out=, or give a changed arm another name")  # fmt: skip
    return done


def run_cell(cell: Cell, arm: Arm, out: Path, source: Path, budget: int, train_overrides: dict,
             device: str = "cpu", stressors: dict | None = None, task: Task | None = None,
             algo: str = "bc") -> dict:  # fmt: skip
    """Train and evaluate one cell (or read its JSON back); returns the cell's result.

    ``task``: the cell's task (default: the env config named ``cell.task``); ``algo``: ``bc`` (``source``: its
    dataset) or ``ppo`` (``source``: its :func:`reference_for` file). With ``stressors`` the best checkpoint (chosen
    on validation episodes) is also evaluated under each of them on the evaluation episodes (``robustness``).
    ``s_per_step`` and ``samples_per_s`` count the algorithm's steps: BC's gradient steps and the frames they train
    on, PPO's environment steps (rollouts and updates together).
    """
    if arm.name != cell.backbone:
        raise ValueError(f"cell {cell.id} is given arm {arm.name!r}")
    if isinstance(train_overrides, DictConfig):
        train_overrides = OmegaConf.to_container(train_overrides, resolve=True)
    if (done := finished_cell(cell, arm, out, train_overrides)) is not None:
        return done
    if isinstance(stressors, DictConfig):
        stressors = OmegaConf.to_container(stressors, resolve=True)
    cfg = train_config(cell, arm, out, source, budget, train_overrides, device, task, algo)
    started = time.time()
    t0 = time.perf_counter()
    try:
        with PeakMemory() as memory:
            result = train(cfg)
    except OutOfBudget as e:  # recorded with its measured cost, never dropped
        log.info("%s: out of budget: %s", cell.id, e)
        result = {"status": "out_of_budget", "message": str(e), "s_per_step": e.s_per_step}
        return _write_cell(cell, out, result | {"peak_memory_mb": memory.peak_mb}, arm, train_overrides, started)
    if stressors:
        result["robustness"] = robustness_scores(cfg.env, Path(cfg.run_dir) / "checkpoints" / "best", stressors,
                                                 cfg.algo.eval_episodes, cfg.algo.eval_envs, EVAL_SEED + cell.seed,
                                                 read_reference(source))  # fmt: skip
    step_s = result["history"][-1]["train_s"]  # training steps only, the evaluations left out
    samples = cfg.algo.steps * (cfg.algo.batch_size * result["window"] if algo == "bc" else 1)
    # the cell's wall time: this process's, plus what earlier processes spent on a run it resumed
    cell_s = time.perf_counter() - t0 + result.get("resumed_s", 0.0)
    result |= {"status": "done", "train_s": cell_s, "s_per_step": step_s / cfg.algo.steps,
               "samples_per_s": samples / step_s, "peak_memory_mb": memory.peak_mb}  # fmt: skip
    return _write_cell(cell, out, result, arm, train_overrides, started)


def _write_cell(cell: Cell, out: Path, result: dict, arm: Arm, train_overrides: dict, started: float) -> dict:
    """``result`` with what identifies the cell, written atomically to its JSON."""
    result = result | {"task": cell.task, "backbone": cell.backbone, "seed": cell.seed, "train": train_overrides,
                       "policy": arm.policy, "overrides": arm.overrides, "started": started, "finished": time.time(),
                       "worker": f"{socket.gethostname()}:{os.getpid()}"}  # fmt: skip
    cell.path(out).parent.mkdir(parents=True, exist_ok=True)
    write_json(cell.path(out), result)
    return result


def source_path(out: Path, task: str, algo: str) -> Path:
    """Where the grid keeps what ``task``'s cells train from (module docstring): its dataset or its references."""
    return dataset_dir(out, task) if algo == "bc" else out / "references" / f"{task}.json"


def run_grid_cell(cfg: DictConfig, cell: Cell) -> dict:
    """One cell of the comparison config ``cfg`` as a job of its own (the task's source must exist)."""
    algo = check_algo(cfg)
    source = source_path(Path(cfg.out), source_task(cell.task, cfg.variants, algo).name, algo)
    if not (source / "meta" / "cadence.json" if algo == "bc" else source).exists():
        raise FileNotFoundError(f"nothing for {cell.task} to train from at {source}; cadence-compare collects every "
                                "task's dataset (algorithm=ppo: measures its reference returns) before it launches the "
                                "cells: run it with the same overrides")  # fmt: skip
    (arm,) = resolve_arms([cell.backbone], cfg.arms)
    return run_cell(cell, arm, Path(cfg.out), source, cfg.param_budget, task_settings(cfg, cell.task)[1], cfg.device,
                    cfg.robustness, resolve_task(cell.task, cfg.variants), algo)  # fmt: skip
