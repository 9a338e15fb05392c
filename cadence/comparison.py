"""Backbone comparisons: a grid of (task × arm × seed) BC cells, one JSON per cell, and statistics.

An arm is one entry of the grid's backbone axis: a policy config (``policy=NAME``) plus overrides of
it, e.g. ``linoss_ring: {policy: linoss, overrides: {policy.backbone_kwargs.init.kind: ring}}``; a plain
backbone name is the arm of that policy config without overrides. Every cell is ``cadence-train
algo=bc`` composed from the same YAML files as the CLI, with the same dataset, encoder, head, parameter
budget, optimizer, schedule, number of gradient steps and seed for every arm; only the policy changes.
A finished cell is skipped (its JSON is read back) and an interrupted one resumes from its last
checkpoint, so an interrupted grid continues where it stopped. Cells are independent jobs: run one
after another in one process, or as a Hydra multirun through a launcher plug-in (joblib on all cores
of one machine, submitit on SLURM; ``cadence.scripts.compare``).

Tuning (``lr_sweep``): every arm gets the same small learning-rate sweep on one task and seed; each
arm's best learning rate is then frozen for the whole grid. The arm at learning rate ``X`` is named
``ARM@lrX`` (:func:`arm_at_lr`), or just ``ARM`` at the grid's default ``train.lr``, so a sweep cell at the
default *is* the grid cell of that task and seed, and the names in tables say what was trained.

Statistics (rliable-style): per task and backbone the mean normalized score with a 95% bootstrap
confidence interval over seeds; per backbone the interquartile mean (IQM) over all task × seed runs
with a stratified bootstrap CI (seeds resampled within each task).
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from hydra import compose
from omegaconf import DictConfig, OmegaConf

from .configs import CONFIG_DIR, to_dataclass
from .datasets import collect_dataset
from .envs import EnvConfig

log = logging.getLogger(__name__)


@dataclass
class Arm:
    """One entry of the backbone axis (``arms.NAME`` in ``cadence/configs/compare.yaml``)."""

    name: str
    """The arm's name in tables, plots and cell paths."""
    policy: str
    """A policy config name (``cadence/configs/policy/NAME.yaml``)."""
    overrides: dict = field(default_factory=dict)
    """Hydra overrides of the composed train config, ``{KEY: VALUE}``, e.g. ``{policy.backbone_kwargs.variant: im}``;
    a key that the policy config lacks needs a leading ``+``."""

    def __post_init__(self):
        if not (CONFIG_DIR / "policy" / f"{self.policy}.yaml").exists():
            choices = sorted(p.stem for p in (CONFIG_DIR / "policy").glob("*.yaml"))
            raise ValueError(f"arm {self.name!r}: policy {self.policy!r} is not one of {choices}")

    def train_overrides(self) -> list[str]:
        """``policy=NAME`` and the arm's overrides, as command-line overrides."""
        return [f"policy={self.policy}"] + [f"{k}={override_value(v)}" for k, v in self.overrides.items()]


def override_value(v) -> str:
    """A config value as Hydra's command-line grammar writes it (null, true, [a,b], {k:v})."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, list | tuple):
        return "[" + ",".join(override_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}:{override_value(x)}" for k, x in v.items()) + "}"
    return str(v)


LR_TAG = "@lr"
"""``ARM@lrX``: arm ``ARM`` trained at learning rate ``X`` (Hydra's override grammar admits no ``=`` there)."""


def arm_at_lr(name: str, lr: float, default_lr: float) -> str:
    """The name of arm ``name`` trained at ``lr``: ``name`` itself at ``default_lr``, else ``NAME@lrLR``."""
    return name if math.isclose(lr, default_lr) else f"{name}{LR_TAG}{lr:g}"


def resolve_arms(names: list[str], arms: DictConfig | dict) -> list[Arm]:
    """The arms named on the backbone axis: an entry of ``arms`` or, failing that, a plain policy config;
    ``NAME@lrX`` is arm ``NAME`` with ``algo.lr=X`` added to its overrides."""
    specs = OmegaConf.to_container(arms, resolve=True) if isinstance(arms, DictConfig) else dict(arms)
    resolved = []
    for name in names:
        base, tag, lr = name.partition(LR_TAG)
        spec = specs.get(base, {"policy": base})
        try:
            arm = to_dataclass(Arm, {"name": base} | spec, f"arms.{base}", drop=())
        except ValueError as e:
            raise ValueError(f"{e}; name a policy config or define the arm: arms.{base}={{policy: NAME, "
                             "overrides: {KEY: VALUE}}") from None  # fmt: skip
        if tag:
            try:
                arm = Arm(name, arm.policy, arm.overrides | {"algo.lr": float(lr)})
            except ValueError:
                raise ValueError(f"arm {name!r}: {lr!r} after {LR_TAG!r} is not a learning rate, e.g. "
                                 f"{base}{LR_TAG}0.003") from None  # fmt: skip
        resolved.append(arm)
    return resolved


@dataclass
class LRSweep:
    """``lr_sweep`` in ``cadence/configs/compare.yaml``: the learning-rate sweep that every arm gets."""

    task: str
    """The one task the sweep runs on (an env config name); its dataset is collected like the grid's."""
    seed: int
    """The one seed it runs with."""
    lrs: list[float]
    """The learning rates tried; the grid's ``train.lr`` among them makes the sweep reuse grid cells."""

    def cells(self, arms: list[str], default_lr: float) -> list[Cell]:
        """One cell per arm and learning rate."""
        return [Cell(self.task, arm_at_lr(a, lr, default_lr), self.seed) for a in arms for lr in self.lrs]

    def choose(self, arms: list[str], results: dict[str, dict], default_lr: float) -> dict[str, float]:
        """Each arm's learning rate with the best normalized score in ``results`` (cell JSONs by arm
        name); a tie goes to the rate nearest ``default_lr`` (in log scale)."""
        def rank(arm: str, lr: float) -> tuple[float, float]:
            return results[arm_at_lr(arm, lr, default_lr)]["normalized_score"], -abs(math.log(lr / default_lr))

        return {a: max(self.lrs, key=partial(rank, a)) for a in arms}


@dataclass(frozen=True)
class Cell:
    """One grid cell; ``backbone`` is the arm's name."""

    task: str
    backbone: str
    seed: int

    def path(self, out: Path) -> Path:
        return out / "cells" / self.task / self.backbone / f"seed{self.seed}.json"

    @property
    def id(self) -> str:
        """``TASK/ARM/SEED``, the value of ``cell=`` in a multirun of ``cadence.scripts.compare_cell``."""
        return f"{self.task}/{self.backbone}/{self.seed}"

    @classmethod
    def parse(cls, cell_id: str) -> Cell:
        parts = str(cell_id).split("/")
        if len(parts) != 3 or not parts[2].lstrip("-").isdigit():
            raise ValueError(f"cell={cell_id!r} is not TASK/ARM/SEED, e.g. cell=invertedpendulum_p/linoss/0")
        return cls(parts[0], parts[1], int(parts[2]))


def task_settings(cfg: DictConfig, task: str) -> tuple[DictConfig, dict]:
    """The grid's ``collect`` and ``train`` settings for ``task``: its ``per_task.TASK`` entry merged over
    the grid's own. They hold for every arm alike, so the backbones still share one budget per task."""
    own = OmegaConf.to_container(cfg.per_task, resolve=True).get(task) or {}
    if extra := sorted(set(own) - {"collect", "train"}):
        raise ValueError(f"per_task.{task}.{extra[0]} is not a setting of a task: per_task.{task} takes collect "
                         "and train, e.g. per_task.hopper={train: {steps: 6000}}")  # fmt: skip
    for part in ("collect", "train"):
        unknown = sorted(set(own.get(part) or {}) - set(cfg[part]))
        if unknown:
            raise ValueError(f"per_task.{task}.{part} has unknown key(s) {unknown}: the grid's {part} has "
                             f"{sorted(cfg[part])}")  # fmt: skip
    collect = OmegaConf.merge(cfg.collect, own.get("collect") or {})
    train = OmegaConf.to_container(OmegaConf.merge(cfg.train, own.get("train") or {}), resolve=True)
    return collect, train


def dataset_dir(out: Path, task: str) -> Path:
    """Where the grid keeps the task's demonstrations."""
    return out / "datasets" / task


def dataset_for(task_cfg: DictConfig | EnvConfig, out: Path, collect: DictConfig, seed: int) -> Path:
    """The task's demonstrations under ``out/datasets``, collected on first use: ``collect.episodes``
    episodes of the task's expert with DART noise ``collect.noise``, or the task's own ``demo_noise``
    when that is null. A dataset already there with another noise or episode count is refused."""
    task_cfg = EnvConfig.load(task_cfg)
    noise = task_cfg.demo_noise if collect.noise is None else float(collect.noise)
    root = dataset_dir(out, task_cfg.name)
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


def robustness_scores(env_cfg: DictConfig, checkpoint: Path, stressors: dict, episodes: int, envs: int, seed: int,
                      reference: tuple[float, float] | None) -> dict[str, float]:  # fmt: skip
    """Normalized score of ``checkpoint`` on ``env_cfg`` under each stressor ``{NAME: {wrapper: value}}``
    (``cadence.envs.RobustnessConfig`` keys: obs_noise, obs_delay, action_delay, dropout, dropout_mode)."""
    from .evaluation import evaluate
    from .envs import make_env
    from .policies import SequencePolicy

    policy = SequencePolicy.from_pretrained(checkpoint).eval()
    env = OmegaConf.to_container(env_cfg, resolve=True)
    scores = {}
    for name, wrappers in stressors.items():
        stressed = env | {"wrappers": env["wrappers"] | wrappers}
        r = evaluate(policy, [partial(make_env, stressed) for _ in range(envs)], episodes, seed=seed, reference=reference)
        scores[name] = r.normalized_score if r.normalized_score is not None else r.mean_return
    return scores


def train_config(cell: Cell, arm: Arm, out: Path, dataset: Path, budget: int, train_overrides: dict,
                 device: str = "cpu") -> DictConfig:  # fmt: skip
    """The ``cadence-train algo=bc`` config of one cell: the grid's shared ``train_overrides`` (keys of
    ``algo``), then the arm's own overrides, which win (e.g. ``linoss_l64``'s ``algo.window``).
    Needs an initialized Hydra config search path."""
    if isinstance(train_overrides, DictConfig):
        train_overrides = OmegaConf.to_container(train_overrides, resolve=True)
    overrides = ["algo=bc", f"env={cell.task}", f"seed={cell.seed}", f"device={device}",
                 "resume=true",  # a cell interrupted mid-training continues from its last checkpoint
                 f"dataset={dataset}", f"policy.param_budget={budget}",
                 f"run_dir={out / 'runs' / cell.task / cell.backbone / f'seed{cell.seed}'}"]  # fmt: skip
    overrides += [f"algo.{k}={override_value(v)}" for k, v in train_overrides.items()] + arm.train_overrides()
    return compose(config_name="train", overrides=overrides)


def run_cell(cell: Cell, arm: Arm, out: Path, dataset: Path, budget: int, train_overrides: dict,
             device: str = "cpu", stressors: dict | None = None) -> dict:  # fmt: skip
    """Train and evaluate one cell (or read its JSON back); returns the cell's result.

    With ``stressors`` the best checkpoint is also evaluated under each of them (``robustness``).

    Needs an initialized Hydra config search path (``hydra.initialize_config_dir`` or a ``@hydra.main`` app).
    """
    from .scripts.train import train_bc  # the CLI's own code path

    if arm.name != cell.backbone:
        raise ValueError(f"cell {cell.id} is given arm {arm.name!r}")
    if isinstance(train_overrides, DictConfig):
        train_overrides = OmegaConf.to_container(train_overrides, resolve=True)
    path = cell.path(out)
    if path.exists():
        done = json.loads(path.read_text())
        for what, now in (("overrides", arm.overrides), ("train", train_overrides)):
            if done.get(what, now) != now:  # cells written before "train" was recorded have none to compare
                raise ValueError(f"cell {cell.id} at {path} was trained with {what} {done[what]}, but the grid now asks "
                                 f"for {now}: delete that JSON and the cell's run directory (OUT/runs/TASK/ARM/seedS), "
                                 "use another out=, or give a changed arm another name")  # fmt: skip
        return done
    if isinstance(stressors, DictConfig):
        stressors = OmegaConf.to_container(stressors, resolve=True)
    cfg = train_config(cell, arm, out, dataset, budget, train_overrides, device)
    started = time.time()
    t0 = time.perf_counter()
    result = train_bc(cfg)
    if stressors:
        ref = json.loads((dataset / "meta" / "cadence.json").read_text()).get("reference")
        result["robustness"] = robustness_scores(cfg.env, Path(cfg.run_dir) / "checkpoints" / "best", stressors,
                                                 cfg.algo.eval_episodes, cfg.algo.eval_envs, 10_000 + cell.seed,
                                                 (ref["expert"], ref["random"]) if ref else None)  # fmt: skip
    samples = cfg.algo.steps * cfg.algo.batch_size * cfg.algo.window
    result = result | {"task": cell.task, "backbone": cell.backbone, "seed": cell.seed, "train": train_overrides,
                       "train_s": time.perf_counter() - t0, "samples_per_s": samples / result["history"][-1]["train_s"],
                       "policy": arm.policy, "overrides": arm.overrides, "started": started, "finished": time.time(),
                       "worker": f"{socket.gethostname()}:{os.getpid()}"}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(path)
    return result


def grid_cells(cfg: DictConfig, backbones: list[str] | None = None) -> tuple[list[Cell], dict[str, Arm]]:
    """The cells of a comparison config (``tasks`` × ``seeds`` × arms, in that nesting) and their arms;
    the arms are ``backbones`` (e.g. with their tuned learning rates) or else ``cfg.backbones``."""
    arms = {a.name: a for a in resolve_arms(list(backbones or cfg.backbones), cfg.arms)}
    return [Cell(task, name, seed) for task in cfg.tasks for seed in cfg.seeds for name in arms], arms


def run_grid_cell(cfg: DictConfig, cell: Cell) -> dict:
    """One cell of the comparison config ``cfg`` as a job of its own (the task's dataset must exist)."""
    dataset = dataset_dir(Path(cfg.out), cell.task)
    if not (dataset / "meta" / "cadence.json").exists():
        raise FileNotFoundError(f"no dataset for {cell.task} at {dataset}; cadence-compare collects every task's "
                                "dataset before it launches the cells: run it with the same overrides")  # fmt: skip
    (arm,) = resolve_arms([cell.backbone], cfg.arms)
    return run_cell(cell, arm, Path(cfg.out), dataset, cfg.param_budget, task_settings(cfg, cell.task)[1], cfg.device,
                    cfg.robustness)  # fmt: skip


def bootstrap_ci(values: np.ndarray, stat=np.mean, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of ``stat`` over ``values``."""
    rng = np.random.default_rng(seed)
    if len(values) < 2:
        return float(stat(values)), float(stat(values))
    samples = [stat(rng.choice(values, len(values))) for _ in range(n)]
    return float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5))


def iqm(values: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of the values."""
    v = np.sort(np.asarray(values, dtype=float))
    k = len(v) // 4
    return float(v[k : len(v) - k].mean()) if len(v) >= 4 else float(v.mean())


def stratified_iqm_ci(by_task: dict[str, np.ndarray], n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Bootstrap CI of the IQM, resampling seeds within each task."""
    rng = np.random.default_rng(seed)
    samples = [iqm(np.concatenate([rng.choice(v, len(v)) for v in by_task.values()])) for _ in range(n)]
    return float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5))


def learning_curve(runs: list[dict]) -> dict[str, list[float]]:
    """Mean over seeds of the evaluation history: ``step``, ``train_s`` (gradient-step time so far) and
    ``score`` (normalized) at every evaluation the runs share."""
    runs = [r for r in runs if r.get("history")]  # cells written before histories were recorded have none
    n = min((len(r["history"]) for r in runs), default=0)
    return {k: [float(np.mean([r["history"][i][k] for r in runs])) for i in range(n)]
            for k in ("step", "train_s", "normalized_score")}  # fmt: skip


def summarize(results: list[dict]) -> dict:
    """Per (task, backbone) and per backbone statistics of the normalized score."""
    tasks = sorted({r["task"] for r in results})
    backbones = list(dict.fromkeys(r["backbone"] for r in results))
    per_cell, per_backbone = {}, {}
    for b in backbones:
        by_task = {}
        for t in tasks:
            rs = [r for r in results if r["task"] == t and r["backbone"] == b]
            if not rs:
                continue
            scores = np.array([r["normalized_score"] for r in rs])
            by_task[t] = scores
            per_cell[(t, b)] = {
                "mean": float(scores.mean()), "ci": bootstrap_ci(scores), "n": len(scores),
                "latency_ms_p50": float(np.mean([r["latency_ms_p50"] for r in rs])),
                "train_s": float(np.mean([r["train_s"] for r in rs])), "params": int(rs[0]["params"]),
                "samples_per_s": float(np.mean([r.get("samples_per_s", np.nan) for r in rs])),
                "robustness": {k: float(np.mean([r["robustness"][k] for r in rs])) for k in rs[0].get("robustness", {})},
                "success_rate": (None if any(r.get("success_rate") is None for r in rs)
                                 else float(np.mean([r["success_rate"] for r in rs]))),
                "curve": learning_curve(rs),
            }  # fmt: skip
        all_scores = np.concatenate(list(by_task.values()))
        per_backbone[b] = {"iqm": iqm(all_scores), "ci": stratified_iqm_ci(by_task), "n": len(all_scores)}
    return {"tasks": tasks, "backbones": backbones, "cells": per_cell, "aggregate": per_backbone}


def markdown(summary: dict) -> str:
    """Per-task table (mean [95% CI] of the normalized score) and the IQM aggregate."""
    tasks, backbones = summary["tasks"], summary["backbones"]
    lines = ["| task | " + " | ".join(backbones) + " |", "|---" * (len(backbones) + 1) + "|"]
    for t in tasks:
        row = []
        for b in backbones:
            c = summary["cells"].get((t, b))
            row.append("–" if c is None else f"{c['mean']:.1f} [{c['ci'][0]:.1f}, {c['ci'][1]:.1f}]")
        lines.append(f"| {t} | " + " | ".join(row) + " |")
    with_success = [t for t in tasks if any(c["success_rate"] is not None for (ct, _), c in summary["cells"].items()
                                            if ct == t)]  # fmt: skip
    if with_success:  # the normalized score can credit a policy that never completes the task
        lines += ["", "Success rate (tasks that define success; mean over seeds of the evaluation episodes' final "
                  "`is_success`):", "", lines[0], lines[1]]  # fmt: skip
        for t in with_success:
            cs = [summary["cells"].get((t, b)) for b in backbones]
            lines.append(f"| {t} | " + " | ".join("–" if c is None or c["success_rate"] is None else
                                                   f"{100 * c['success_rate']:.0f}%" for c in cs) + " |")  # fmt: skip
    lines += ["", "| backbone | IQM normalized score [95% CI] | runs | params | latency p50 (ms/step) | "
              "training samples/s | cell time (s) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for b in backbones:
        a = summary["aggregate"][b]
        cells = [summary["cells"][(t, b)] for t in tasks if (t, b) in summary["cells"]]
        lines.append(f"| {b} | {a['iqm']:.1f} [{a['ci'][0]:.1f}, {a['ci'][1]:.1f}] | {a['n']} | "
                     f"{cells[0]['params']:,} | {np.mean([c['latency_ms_p50'] for c in cells]):.3f} | "
                     f"{np.mean([c['samples_per_s'] for c in cells]):,.0f} | "
                     f"{np.mean([c['train_s'] for c in cells]):.0f} |")  # fmt: skip
    stressors = list(dict.fromkeys(k for c in summary["cells"].values() for k in c["robustness"]))
    if stressors:
        lines += ["", "Robustness at evaluation (best checkpoint; normalized score, mean over tasks and seeds):", "",
                  "| backbone | clean | " + " | ".join(stressors) + " |", "|---" * (len(stressors) + 2) + "|"]  # fmt: skip
        for b in backbones:
            cells = [summary["cells"][(t, b)] for t in tasks if (t, b) in summary["cells"]]
            row = [np.mean([c["mean"] for c in cells])] + [np.mean([c["robustness"][k] for c in cells]) for k in stressors]
            lines.append(f"| {b} | " + " | ".join(f"{v:.1f}" for v in row) + " |")
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> Path:
    """Score bars with CIs per task and backbone, saved as PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks, backbones = summary["tasks"], summary["backbones"]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(tasks) * len(backbones) / 3), 4))
    width = 0.8 / len(backbones)
    for j, b in enumerate(backbones):
        xs, ys, lo, hi = [], [], [], []
        for i, t in enumerate(tasks):
            c = summary["cells"].get((t, b))
            if c:
                xs.append(i + j * width)
                ys.append(c["mean"])
                lo.append(c["mean"] - c["ci"][0])
                hi.append(c["ci"][1] - c["mean"])
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=b)
    ax.axhline(100, color="k", lw=0.8, ls="--")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(tasks))], tasks)
    ax.set_ylabel("normalized score (expert = 100)")
    ax.legend(ncols=len(backbones), fontsize=8, loc="lower right")
    return _save(fig, path)


def plot_curves(summary: dict, path: Path) -> Path:
    """Learning curves (mean normalized score over seeds) per task, against gradient steps (top row) and
    against training wall-clock (bottom row), saved as PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks, backbones = summary["tasks"], summary["backbones"]
    fig, axes = plt.subplots(2, len(tasks), figsize=(3.2 * len(tasks), 5.5), squeeze=False)
    for j, t in enumerate(tasks):
        for b in backbones:
            c = summary["cells"].get((t, b))
            if c:
                axes[0, j].plot(c["curve"]["step"], c["curve"]["normalized_score"], marker=".", label=b)
                axes[1, j].plot(c["curve"]["train_s"], c["curve"]["normalized_score"], marker=".", label=b)
        axes[0, j].set_title(t, fontsize=9)
        axes[0, j].set_xlabel("gradient steps")
        axes[1, j].set_xlabel("training time (s)")
    for ax in axes[:, 0]:
        ax.set_ylabel("normalized score")
    axes[0, -1].legend(fontsize=7)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = path.with_name(f".{path.name}")
    fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    tmp.replace(path)
    return path
