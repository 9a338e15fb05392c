"""The grid spec of a comparison: its arms (the backbone axis), cells (task × arm × seed) and per-task settings.

An arm is one entry of the grid's backbone axis: a policy config (``policy=NAME``) plus overrides of
it, e.g. ``linoss_ring: {policy: linoss, overrides: {policy.backbone_kwargs.init.kind: ring}}``; a plain
backbone name is the arm of that policy config without overrides.

Tuning (``lr_sweep``): every arm gets the same learning-rate sweep on one task and a held-out tuning seed
(never an evaluation seed of the grid: :mod:`cadence.training.seeds`), extended beyond an edge optimum until
the best rate is interior (:func:`interior_step`); each arm's best learning rate is then frozen for the whole
grid. The arm at learning rate ``X`` is named ``ARM@lrX`` (:func:`arm_at_lr`), or just ``ARM`` at the grid's
default ``train.lr``, so the names in tables say what was trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from omegaconf import DictConfig, OmegaConf

from ..configs import CONFIG_DIR, check_device, to_dataclass
from ..training.seeds import TUNING_SEED, seed_clashes


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


class SweepStep(NamedTuple):
    """One arm's sweep so far (:func:`interior_step`): its ``best`` rate and the ``next`` one to run (None: done)."""

    best: float
    next: float | None


def interior_step(scores: dict[float, float], default_lr: float, extensions_left: int) -> SweepStep:
    """The best learning rate of ``scores`` ``{LR: normalized score}`` (a tie goes to the rate nearest
    ``default_lr`` in log scale) and, when it is the lowest or the highest rate tried and ``extensions_left`` > 0,
    the next rate to run: one log step beyond that edge (the ratio of the edge to its neighbour, 3 significant
    digits); None once the best is interior, the cap is reached or fewer than two rates were tried."""
    lrs = sorted(scores)
    best = max(lrs, key=lambda lr: (scores[lr], -abs(math.log(lr / default_lr))))
    if extensions_left <= 0 or len(lrs) < 2 or lrs[0] < best < lrs[-1]:
        return SweepStep(best, None)
    inner = lrs[1] if best == lrs[0] else lrs[-2]
    return SweepStep(best, float(f"{best * best / inner:.3g}"))


def check_seeds(seeds: list[int], tuning: list[int], envs: int) -> None:
    """Refuse held-out seeds that meet the evaluation ``seeds`` (:func:`~cadence.training.seeds.seed_clashes`:
    the ``tuning`` training seeds and every held-out episode on ``envs`` sub-envs)."""
    if clashes := seed_clashes(seeds, tuning, envs):
        raise ValueError(f"held-out seeds meet the evaluation seeds {list(seeds)}: {'; '.join(clashes)}. Tuning runs "
                         f"on seeds from {TUNING_SEED} (lr_sweep.seed), the grid's seeds lie below it")  # fmt: skip


@dataclass
class LRSweep:
    """``lr_sweep`` in ``cadence/configs/compare.yaml``: the learning-rate sweep that every arm gets."""

    task: str
    """The one task the sweep runs on (an env config name); its dataset is collected like the grid's."""
    seed: int
    """The one seed it runs with: a tuning seed, never one of the grid's evaluation seeds (:meth:`check_seeds`)."""
    lrs: list[float]
    """The learning rates tried first, a log grid; an arm whose best is at an edge gets more (:func:`interior_step`)."""
    max_extensions: int = 3
    """The cap on the rates added per arm beyond the edges of ``lrs``; an arm that reaches it keeps an edge optimum."""

    def check_seeds(self, seeds: list[int], envs: int) -> None:
        """Refuse a sweep seed that is one of the grid's evaluation ``seeds``, or whose episodes on ``envs`` sub-envs
        share env seeds with their final evaluations (:func:`check_seeds`)."""
        check_seeds(seeds, [self.seed], envs)

    def cells(self, tried: dict[str, list[float]], default_lr: float) -> list[Cell]:
        """One cell per arm and learning rate of ``tried`` ``{ARM: [LR, ...]}``."""
        return [Cell(self.task, arm_at_lr(a, lr, default_lr), self.seed) for a, lrs in tried.items() for lr in lrs]

    def step(self, arm: str, lrs: list[float], results: dict[str, dict], default_lr: float) -> SweepStep:
        """:func:`interior_step` of ``arm`` over the rates ``lrs`` it was trained at (``results``: cell JSONs by arm
        name), with the extensions beyond ``self.lrs`` it has left."""
        scores = {lr: results[arm_at_lr(arm, lr, default_lr)]["normalized_score"] for lr in lrs}
        return interior_step(scores, default_lr, self.max_extensions - (len(lrs) - len(self.lrs)))

    def choose(self, arms: list[str], results: dict[str, dict], default_lr: float,
               tried: dict[str, list[float]] | None = None) -> dict[str, float]:  # fmt: skip
        """Each arm's learning rate with the best normalized score in ``results`` (cell JSONs by arm name) among
        the rates it was ``tried`` at (default ``self.lrs``); a tie goes to the rate nearest ``default_lr``."""
        return {a: self.step(a, (tried or {}).get(a, self.lrs), results, default_lr).best for a in arms}


@dataclass
class Task:
    """One entry of the task axis: an env config, or a variant of one with other kwargs (``variants.NAME`` in
    ``cadence/configs/compare.yaml``, e.g. ``memory_reacher_d256: {env: memory_reacher, kwargs: {delay_steps:
    256}}``: the memory tasks' dials)."""

    name: str
    """The task's name in tables, cell paths and dataset folders."""
    env: str
    """An env config name (``cadence/configs/env/NAME.yaml``)."""
    kwargs: dict = field(default_factory=dict)
    """Overrides of the env config's ``kwargs``."""

    def __post_init__(self):
        if not (CONFIG_DIR / "env" / f"{self.env}.yaml").exists():
            choices = sorted(p.stem for p in (CONFIG_DIR / "env").glob("*.yaml"))
            raise ValueError(f"task {self.name!r}: env {self.env!r} is not one of {choices}; define a variant as "
                             f"variants.{self.name}={{env: CONFIG, kwargs: {{KEY: VALUE}}}}")  # fmt: skip

    def overrides(self) -> list[str]:
        """``env=CONFIG`` and the kwargs, as command-line overrides of a train config."""
        return [f"env={self.env}"] + [f"env.kwargs.{k}={override_value(v)}" for k, v in self.kwargs.items()]


def resolve_task(name: str, variants: DictConfig | dict | None) -> Task:
    """Task ``name``: an entry of ``variants`` or, failing that, the env config of that name."""
    specs = OmegaConf.to_container(variants, resolve=True) if isinstance(variants, DictConfig) else dict(variants or {})
    return to_dataclass(Task, {"name": name} | specs.get(name, {"env": name}), f"variants.{name}", drop=())


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


def grid_cells(cfg: DictConfig, backbones: list[str] | None = None) -> tuple[list[Cell], dict[str, Arm]]:
    """The cells of a comparison config (``tasks`` × ``seeds`` × arms, in that nesting) and their arms;
    the arms are ``backbones`` (e.g. with their tuned learning rates) or else ``cfg.backbones``."""
    arms = {a.name: a for a in resolve_arms(list(backbones or cfg.backbones), cfg.arms)}
    return [Cell(task, name, seed) for task in cfg.tasks for seed in cfg.seeds for name in arms], arms


def check_grid(cfg: DictConfig) -> list[str]:
    """The tasks of the grid spec ``cfg`` (a composed ``compare.yaml``: ``tasks`` and the sweep's task), once the
    whole spec is checked, before any dataset is collected or cell trained: every task is an env config or a
    variant of one (``variants``) with valid ``per_task`` settings, every arm resolves, the sweep and the device are valid,
    and no held-out seed is an evaluation seed (:func:`check_seeds`)."""
    tasks = list(dict.fromkeys([*cfg.tasks, *([cfg.lr_sweep.task] if cfg.lr_sweep else [])]))
    for task in tasks:
        resolve_task(task, cfg.get("variants"))
        task_settings(cfg, task)
    envs = max(task_settings(cfg, task)[1]["eval_envs"] for task in tasks)
    if cfg.lr_sweep:
        to_dataclass(LRSweep, cfg.lr_sweep, "lr_sweep").check_seeds(list(cfg.seeds), envs)
    else:
        check_seeds(list(cfg.seeds), [], envs)
    resolve_arms(list(cfg.backbones), cfg.arms)
    check_device(cfg.device)
    return tasks
