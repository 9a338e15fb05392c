"""The grid spec of a comparison: its arms (the backbone axis), cells (task × arm × seed) and per-task settings.

An arm is one entry of the grid's backbone axis: a policy config (``policy=NAME``) plus overrides of
it, e.g. ``linoss_ring: {policy: linoss, overrides: {policy.backbone_kwargs.init.kind: ring}}``; a plain
backbone name is the arm of that policy config without overrides. ``ARM@TAGVALUE...`` is arm ``ARM`` with
some of its values changed, one ``@TAGVALUE`` each (:func:`arm_name`, :data:`TAG_KEYS`): ``linoss@lr0.003@rlr0.3``
trains at ``algo.lr=0.003`` and ``algo.recurrence_lr_factor=0.3``, ``transformer@context64`` at
``policy.backbone_kwargs.context=64``; a name lists only the values that differ from the arm's own, so the
names in tables say what was trained (``@`` is admitted by Hydra's override grammar, in ``cell=`` values and in
folder names; ``=`` and ``,`` are not).

Tuning (``lr_sweep``): every arm gets the same number of trials on one task and a held-out tuning seed (never an
evaluation seed of the grid: :mod:`cadence.training.seeds`), over its own search space (``lr_sweep.search``,
:class:`Search`), by coordinate search (:meth:`SearchSpace.replay`): first the learning rate at the arm's own
other values, on the log grid ``lr_sweep.lrs`` extended beyond an edge optimum until the best rate is interior
(:func:`interior_step`), then each other knob in turn, every value at the best values so far. The trial budget
is the same for every arm (:meth:`LRSweep.spaces`); an arm with fewer knob values spends the difference on the
learning rate, refining it around its optimum (:func:`sweep_step`). Each arm's best values are then frozen for
the whole grid.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import NamedTuple

from omegaconf import DictConfig, OmegaConf

from ..configs import CONFIG_DIR, check_device, compose, to_dataclass
from ..training.run import ALGOS
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


TAG_KEYS = {"lr": "algo.lr", "rlr": "algo.recurrence_lr_factor"}
"""The tags of arm names (``ARM@TAGVALUE``) that set a training key; any other tag ``T`` sets the arm's
``policy.backbone_kwargs.T``, a number key of its policy config (``dropout``, ``context``, ``d_state``, ...)."""


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def tag_key(arm: Arm, tag: str) -> str:
    """The config key that ``@TAG`` sets on ``arm`` (:data:`TAG_KEYS`); a tag that is none of them nor a number
    (or null) key of the ``backbone_kwargs`` of the arm's policy config raises a ValueError naming the valid tags."""
    if tag in TAG_KEYS:
        return TAG_KEYS[tag]
    kwargs = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "policy" / f"{arm.policy}.yaml").backbone_kwargs)
    numbers = sorted(k for k, v in kwargs.items() if v is None or _is_number(v))
    if tag not in numbers:
        raise ValueError(f"{tag!r} is not a tag of arm {arm.name!r}: a tag is one of {sorted(TAG_KEYS)} "
                         f"({', '.join(TAG_KEYS.values())}) or a number key of policy {arm.policy}'s backbone_kwargs "
                         f"{numbers}")  # fmt: skip
    return f"policy.backbone_kwargs.{tag}"


def format_value(value: float) -> str:
    """A tag's value as arm names write it: an int as it is, a float in ``:g`` (``0.0003``, ``1e-05``)."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def arm_name(name: str, values: dict[str, float], own: dict[str, float]) -> str:
    """Arm ``name`` at ``values`` ``{TAG: VALUE}``: ``NAME@TAGVALUE...`` with one tag for each value that differs
    from its entry in ``own`` (the arm's own values), in the order of ``values``; ``NAME`` when none differs."""
    return name + "".join(f"@{t}{format_value(v)}" for t, v in values.items() if not math.isclose(v, own[t]))


def _number(text: str) -> int | float:
    """``"16"`` -> 16, ``"0.003"`` / ``"1e-05"`` -> a float; anything else raises a ValueError."""
    return int(text) if re.fullmatch(r"-?\d+", text) else float(text)


def tag_overrides(arm: Arm, name: str) -> dict[str, float]:
    """The overrides ``{KEY: VALUE}`` that the tags of arm name ``name`` (``ARM@TAGVALUE...``) set on ``arm``."""
    overrides = {}
    for part in name.split("@")[1:]:
        tag, value = re.fullmatch(r"([a-z_]*)(.*)", part).groups()
        try:
            key = tag_key(arm, tag)
        except ValueError as e:
            raise ValueError(f"arm {name!r}: {e}") from None
        if key in overrides:
            raise ValueError(f"arm {name!r} sets @{tag} twice")
        try:
            overrides[key] = _number(value)
        except ValueError:
            raise ValueError(f"arm {name!r}: {value!r} after '@{tag}' is not a number, e.g. "
                             f"{arm.name}@{tag}0.003") from None  # fmt: skip
    return overrides


def resolve_arms(names: list[str], arms: DictConfig | dict) -> list[Arm]:
    """The arms named on the backbone axis: an entry of ``arms`` or, failing that, a plain policy config;
    ``NAME@TAGVALUE...`` is arm ``NAME`` with its tags' keys set to their values on top of its overrides
    (:func:`tag_overrides`), e.g. ``NAME@lrX`` with ``algo.lr=X``."""
    specs = OmegaConf.to_container(arms, resolve=True) if isinstance(arms, DictConfig) else dict(arms)
    resolved = []
    for name in names:
        base = name.partition("@")[0]
        spec = specs.get(base, {"policy": base})
        try:
            arm = to_dataclass(Arm, {"name": base} | spec, f"arms.{base}", drop=())
        except ValueError as e:
            raise ValueError(f"{e}; name a policy config or define the arm: arms.{base}={{policy: NAME, "
                             "overrides: {KEY: VALUE}}") from None  # fmt: skip
        if name != base:
            arm = Arm(name, arm.policy, arm.overrides | tag_overrides(arm, name))
        resolved.append(arm)
    return resolved


class SweepStep(NamedTuple):
    """One arm's sweep so far (:func:`interior_step`): its ``best`` rate and the ``next`` one to run (None: done)."""

    best: float
    next: float | None


def _best_lr(scores: dict[float, float], default_lr: float) -> float:
    """The rate of ``scores`` ``{LR: score}`` with the best score, a tie going to the rate nearest ``default_lr``
    in log scale."""
    return max(scores, key=lambda lr: (scores[lr], -abs(math.log(lr / default_lr))))


def interior_step(scores: dict[float, float], default_lr: float, extensions_left: int) -> SweepStep:
    """The best learning rate of ``scores`` ``{LR: normalized score}`` (a tie goes to the rate nearest
    ``default_lr`` in log scale) and, when it is the lowest or the highest rate tried and ``extensions_left`` > 0,
    the next rate to run: one log step beyond that edge (the ratio of the edge to its neighbour, 3 significant
    digits); None once the best is interior, the cap is reached or fewer than two rates were tried."""
    lrs, best = sorted(scores), _best_lr(scores, default_lr)
    if extensions_left <= 0 or len(lrs) < 2 or lrs[0] < best < lrs[-1]:
        return SweepStep(best, None)
    inner = lrs[1] if best == lrs[0] else lrs[-2]
    return SweepStep(best, float(f"{best * best / inner:.3g}"))


def sweep_step(scores: dict[float, float], default_lr: float, extensions_left: int, trials_left: int) -> SweepStep:
    """The learning-rate sweep's next rate while it has ``trials_left`` > 0: :func:`interior_step`'s, one log step
    beyond an edge optimum; once the best is interior or the cap is reached, a refinement: the geometric mean of the
    best rate and its better-scoring neighbour (a tie: the one nearer ``default_lr``; 3 significant digits), or of
    the other neighbour when that rate was tried; None when neither is new or no trial is left."""
    step = interior_step(scores, default_lr, extensions_left)
    if trials_left <= 0:
        return SweepStep(step.best, None)
    if step.next is not None:
        return step
    lrs = sorted(scores)
    i = lrs.index(step.best)
    means = {nb: float(f"{math.sqrt(step.best * nb):.3g}") for nb in lrs[max(i - 1, 0) : i] + lrs[i + 1 : i + 2]}
    means = {nb: m for nb, m in means.items() if not any(math.isclose(m, lr) for lr in lrs)}
    if not means:
        return step
    return SweepStep(step.best, means[_best_lr({nb: scores[nb] for nb in means}, default_lr)])


def check_seeds(seeds: list[int], tuning: list[int], envs: int) -> None:
    """Refuse held-out seeds that meet the evaluation ``seeds`` (:func:`~cadence.training.seeds.seed_clashes`:
    the ``tuning`` training seeds and every held-out episode on ``envs`` sub-envs)."""
    if clashes := seed_clashes(seeds, tuning, envs):
        raise ValueError(f"held-out seeds meet the evaluation seeds {list(seeds)}: {'; '.join(clashes)}. Tuning runs "
                         f"on seeds from {TUNING_SEED} (lr_sweep.seeds), the grid's seeds lie below it")  # fmt: skip


@dataclass
class Search:
    """``lr_sweep.search``: the knobs every arm searches after its learning rate, ``{TAG: [VALUE, ...]}`` (a tag
    of arm names, :data:`TAG_KEYS`: ``rlr``, or a number key of the arm's ``backbone_kwargs``: ``dropout``,
    ``context``, ``d_state``, ``state_dim``, ``n_layers``, ...)."""

    common: dict = field(default_factory=dict)
    """The knobs of every arm, e.g. ``{dropout: [0.0, 0.1]}``; searched after an arm's own."""
    per_arm: dict = field(default_factory=dict)
    """``{ARM: {TAG: [VALUE, ...]}}``: an arm's own knobs, in the order they are searched. ARM is an arm's name
    or a policy config's, whose entry then holds for each of its arms without one of its own (``linoss`` for
    ``linoss_ring``); an entry for a tag of ``common`` replaces it for that arm."""

    def __post_init__(self):
        for where, space in [("common", self.common), *((f"per_arm.{a}", s) for a, s in self.per_arm.items())]:
            if not isinstance(space, dict):
                raise ValueError(f"lr_sweep.search.{where} is {space!r}, not a mapping {{TAG: [VALUE, ...]}} (on the "
                                 f"command line, ~lr_sweep.search.{where} removes an entry)")  # fmt: skip
            for tag, values in space.items():
                if tag == "lr":
                    raise ValueError(f"lr_sweep.search.{where}.lr: the learning rates are lr_sweep.lrs")
                if not (isinstance(values, list) and values and all(map(_is_number, values))
                        and len({float(v) for v in values}) == len(values)):  # fmt: skip
                    raise ValueError(f"lr_sweep.search.{where}.{tag} is {values!r}, not a list of distinct numbers, "
                                     "e.g. [0.0, 0.1]")  # fmt: skip

    def knobs(self, arm: Arm) -> dict[str, list[float]]:
        """The knobs of ``arm``, ``{TAG: [VALUE, ...]}`` in the order they are searched: its own entry of
        ``per_arm`` (by its name, else by its policy's), then the tags of ``common`` that entry lacks."""
        own = self.per_arm.get(arm.name, self.per_arm.get(arm.policy, {}))
        return own | {t: v for t, v in self.common.items() if t not in own}


class Tuning(NamedTuple):
    """One arm's search so far (:meth:`SearchSpace.replay`)."""

    space: SearchSpace
    curves: dict[str, dict[float, float]]
    """``{TAG: {VALUE: normalized score}}`` of every finished step: ``lr`` at the arm's own other values, then
    each knob at the best values before it (the arm's own value of that knob first: the best so far)."""
    best: dict[str, float]
    """The best value of each tag searched so far."""
    pending: list[str]
    """The arm names of the trials the search waits for; none once it is done."""

    @property
    def name(self) -> str:
        """The arm at its best values (:meth:`SearchSpace.name`)."""
        return self.space.name(self.best)

    @property
    def trials(self) -> int:
        """The trials scored: every rate, and every value of a knob but the one it was at already."""
        return sum(len(c) - (t != "lr") for t, c in self.curves.items())


def _scores(trials: dict[float, str], results: dict[str, dict]) -> dict[float, float]:
    """``{VALUE: normalized score}`` of the trials ``{VALUE: ARM}`` in ``results`` (cell JSONs by arm name)."""
    return {v: results[name]["normalized_score"] for v, name in trials.items()}


@dataclass
class SearchSpace:
    """One arm's search space and its share of the equal trial budget (:meth:`LRSweep.spaces`)."""

    arm: str
    """The arm's name (untagged)."""
    own: dict[str, float]
    """The arm's own value of each tag it searches, ``lr`` first: its train config without tags (the grid's
    ``train`` under the arm's overrides)."""
    knobs: dict[str, list[float]]
    """``{TAG: [VALUE, ...]}``, searched after the learning rate, in this order."""
    lr_trials: int
    """The learning rate's share of the budget: the budget less one trial per value of ``knobs`` that is not the
    arm's own."""

    def name(self, values: dict[str, float]) -> str:
        """The arm at ``values`` (a tag left out: the arm's own value), tags in the order of ``own``
        (:func:`arm_name`)."""
        return arm_name(self.arm, self.own | values, self.own)

    def replay(self, sweep: LRSweep, results: dict[str, dict]) -> Tuning:
        """The arm's coordinate search so far, replayed from ``results`` (cell JSONs by arm name), one step after
        another while the step's trials all have results: first the learning rate at the arm's own other values,
        from ``sweep.lrs`` one rate at a time (:func:`sweep_step`, at most ``sweep.max_extensions`` of them beyond
        the grid) up to ``lr_trials`` rates, then each knob in turn at the best values so far, every value once
        (a tie keeps the value it was at: the arm's own)."""
        lrs, curves, best = sorted(sweep.lrs), {}, {}
        while True:
            trials = {lr: self.name({"lr": lr}) for lr in lrs}
            if missing := [n for n in trials.values() if n not in results]:
                return Tuning(self, curves, best, missing)
            curves["lr"] = _scores(trials, results)
            extended = sum(not min(sweep.lrs) <= lr <= max(sweep.lrs) for lr in lrs)
            step = sweep_step(curves["lr"], self.own["lr"], sweep.max_extensions - extended, self.lr_trials - len(lrs))
            if step.next is None:
                break
            lrs = sorted([*lrs, step.next])
        best["lr"] = step.best
        for tag, values in self.knobs.items():
            at = self.own[tag]
            trials = {v: self.name(best | {tag: v}) for v in [at, *(v for v in values if not math.isclose(v, at))]}
            if missing := [n for n in trials.values() if n not in results]:
                return Tuning(self, curves, best, missing)
            curves[tag] = _scores(trials, results)
            best[tag] = max(curves[tag], key=curves[tag].get)  # the first: the value it was at wins a tie
        return Tuning(self, curves, best, [])


def own_values(arm: Arm, train: dict, tags: list[str], algo: str = "bc") -> dict[str, float]:
    """``arm``'s own value of each of ``tags`` (:func:`tag_key`) in its train config of algorithm ``algo``: the
    grid's ``train`` settings (keys of ``algo``) under the arm's overrides; one that is not a number raises a
    ValueError."""
    cfg = compose("train", [f"algo={algo}", *(f"algo.{k}={override_value(v)}" for k, v in train.items()),
                            *arm.train_overrides()])  # fmt: skip
    values = {t: OmegaConf.select(cfg, tag_key(arm, t)) for t in tags}
    if bad := {t: v for t, v in values.items() if not _is_number(v)}:
        raise ValueError(f"arm {arm.name!r} has no number to search from for {bad} ({tag_key(arm, next(iter(bad)))}): "
                         "set it in the arm's overrides, or leave it out of lr_sweep.search")  # fmt: skip
    return values


@dataclass
class LRSweep:
    """``lr_sweep`` in ``cadence/configs/compare.yaml``: the tuning that every arm gets (module docstring)."""

    task: str
    """The one task the sweep runs on (an env config name); its dataset is collected like the grid's."""
    seeds: list[int]
    """The tuning seeds: every trial runs once on each and is scored by its mean normalized score over them
    (:meth:`scores`); never one of the grid's evaluation seeds (:meth:`check_seeds`)."""
    lrs: list[float]
    """The learning rates tried first, a log grid; an arm whose best is at an edge gets more (:func:`interior_step`)."""
    max_extensions: int = 3
    """The cap on the rates added per arm beyond the edges of ``lrs``; an arm that reaches it keeps an edge optimum."""
    search: Search | dict | None = None
    """The knobs searched after the learning rate (:class:`Search`); null: the learning rate only."""

    def __post_init__(self):
        if len(set(self.lrs)) < max(2, len(self.lrs)) or not all(_is_number(lr) and lr > 0 for lr in self.lrs):
            raise ValueError(f"lr_sweep.lrs is {self.lrs!r}: give two or more distinct positive learning rates, a log "
                             "grid, e.g. [1.0e-4, 1.0e-3, 1.0e-2]")  # fmt: skip
        if not (isinstance(self.seeds, list) and self.seeds and all(isinstance(s, int) for s in self.seeds)
                and len(set(self.seeds)) == len(self.seeds)):  # fmt: skip
            raise ValueError(f"lr_sweep.seeds is {self.seeds!r}: give one or more distinct tuning seeds, e.g. [100] or "
                             f"[100, 101]")  # fmt: skip
        if not isinstance(self.search, Search):
            self.search = to_dataclass(Search, self.search or {}, "lr_sweep.search", drop=())

    def check_seeds(self, seeds: list[int], envs: int) -> None:
        """Refuse a sweep seed that is one of the grid's evaluation ``seeds``, or whose episodes on ``envs`` sub-envs
        share env seeds with their final evaluations (:func:`check_seeds`)."""
        check_seeds(seeds, self.seeds, envs)

    def scores(self, runs: dict[str, dict[int, dict]]) -> dict[str, dict]:
        """The trials of ``runs`` (``{ARM: {SEED: cell JSON}}``) that have run on every tuning seed, as
        ``{ARM: {"normalized_score": the mean over the seeds}}`` (what :meth:`SearchSpace.replay` reads)."""
        return {arm: {"normalized_score": sum(by_seed[s]["normalized_score"] for s in self.seeds) / len(self.seeds)}
                for arm, by_seed in runs.items() if all(s in by_seed for s in self.seeds)}  # fmt: skip

    def spaces(self, arms: list[Arm], specs: DictConfig | dict, train: dict, algo: str = "bc") -> list[SearchSpace]:
        """The search space of each of ``arms`` (untagged; ``specs``: the grid's ``arms``, ``train``: its train
        settings of algorithm ``algo``, which fix the arms' own values, :func:`own_values`), all with one trial
        budget: the learning
        rate's full allowance (``lrs`` and ``max_extensions``) plus the most knob values any arm has beyond its own
        values; an arm with fewer spends the rest on its learning rate (:func:`sweep_step`). A ``search`` entry that
        names no arm or policy config, an unknown tag, or an arm named with tags is refused."""
        policies = sorted(p.stem for p in (CONFIG_DIR / "policy").glob("*.yaml"))
        if unknown := sorted(set(self.search.per_arm) - set(specs) - set(policies)):
            raise ValueError(f"lr_sweep.search.per_arm.{unknown[0]} names neither an arm of arms nor a policy config "
                             f"{policies}")  # fmt: skip
        if tagged := [a.name for a in arms if "@" in a.name]:
            raise ValueError(f"lr_sweep tunes each arm from its own values: name arm {tagged[0]!r} without its tags "
                             f"({tagged[0].partition('@')[0]}), or set lr_sweep=null to train it as named")  # fmt: skip
        knobs, own = {a.name: self.search.knobs(a) for a in arms}, {}
        for a in arms:
            try:
                own[a.name] = own_values(a, train, ["lr", *knobs[a.name]], algo)
            except ValueError as e:
                raise ValueError(f"lr_sweep.search: {e}") from None
        extra = {a: sum(not math.isclose(v, own[a][t]) for t, vs in ks.items() for v in vs) for a, ks in knobs.items()}
        budget = len(self.lrs) + self.max_extensions + max(extra.values(), default=0)
        return [SearchSpace(a, own[a], knobs[a], budget - extra[a]) for a in knobs]


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
    demonstrations: str | None = None
    """The task whose demonstrations this one trains on (its dataset, collected with its settings), e.g. a
    full-information control trained on the memory task's dataset with ``train.observation_keys`` set to the full
    state; None: its own."""

    def __post_init__(self):
        if not (CONFIG_DIR / "env" / f"{self.env}.yaml").exists():
            choices = sorted(p.stem for p in (CONFIG_DIR / "env").glob("*.yaml"))
            raise ValueError(f"task {self.name!r}: env {self.env!r} is not one of {choices}; define a variant as "
                             f"variants.{self.name}={{env: CONFIG, kwargs: {{KEY: VALUE}}}}")  # fmt: skip

    def overrides(self) -> list[str]:
        """``env=CONFIG`` and the kwargs, as command-line overrides of a train config."""
        return [f"env={self.env}"] + [f"env.kwargs.{k}={override_value(v)}" for k, v in self.kwargs.items()]


BUDGET_TAG = "@steps"
"""``TASK@stepsN`` is task ``TASK`` trained for N gradient steps (every arm alike), on TASK's own dataset: the
cells of a larger budget, apart from TASK's own (the budget rule's rounds: :func:`budget_name`)."""


def budget_task(name: str) -> tuple[str, int | None]:
    """``TASK@stepsN`` -> (TASK, N); a name without the tag -> (name, None)."""
    base, tag, steps = name.partition(BUDGET_TAG)
    if not tag:
        return name, None
    if not steps.isdigit() or int(steps) < 1:
        raise ValueError(f"task {name!r}: a budget tag is {BUDGET_TAG}N with N > 0 gradient steps, e.g. "
                         f"{base}{BUDGET_TAG}6000")  # fmt: skip
    return base, int(steps)


def budget_name(task: str, steps: int) -> str:
    """The name of ``task`` (a name without a budget tag) trained for ``steps`` gradient steps."""
    return f"{task}{BUDGET_TAG}{steps}"


def resolve_task(name: str, variants: DictConfig | dict | None) -> Task:
    """Task ``name``: an entry of ``variants`` or, failing that, the env config of that name (``TASK@stepsN``:
    TASK's, under the tagged name)."""
    specs = OmegaConf.to_container(variants, resolve=True) if isinstance(variants, DictConfig) else dict(variants or {})
    base = budget_task(name)[0]
    return to_dataclass(Task, {"name": name} | specs.get(base, {"env": base}), f"variants.{base}", drop=())


def demonstrations_task(name: str, variants: DictConfig | dict | None) -> Task:
    """The task whose dataset task ``name`` trains on: its ``demonstrations`` task, or itself (``TASK@stepsN``:
    TASK's)."""
    task = resolve_task(budget_task(name)[0], variants)
    if task.demonstrations is None:
        return task
    source = resolve_task(task.demonstrations, variants)
    if source.demonstrations is not None:
        raise ValueError(f"variants.{name}.demonstrations names {source.name}, which trains on the demonstrations "
                         f"of {source.demonstrations} itself: name {source.demonstrations}")  # fmt: skip
    return source


def source_task(name: str, variants: DictConfig | dict | None, algo: str) -> Task:
    """The task whose source (:mod:`.cells`) the cells of task ``name`` train from: with ``bc`` its
    :func:`demonstrations_task`, with ``ppo`` the task itself (``TASK@stepsN``: TASK)."""
    if algo == "bc":
        return demonstrations_task(name, variants)
    return resolve_task(budget_task(name)[0], variants)


@dataclass
class Budget:
    """``budget`` in ``cadence/configs/compare.yaml``: issue 20's budget rule (:func:`.stats.convergence`), enforced
    by :func:`.protocol.extend_budgets`."""

    rounds: int = 0
    """How many times a task whose best arm's learning curve has not converged is trained again, every arm and seed,
    at ``factor`` × its steps (``TASK@stepsN`` cells); 0: the rule is only reported."""
    factor: int = 2
    """The budget of a round over the one before it."""

    def __post_init__(self):
        if not (isinstance(self.rounds, int) and self.rounds >= 0):
            raise ValueError(f"budget.rounds={self.rounds!r} must be an integer >= 0 (0: report the rule only)")
        if not (isinstance(self.factor, int) and self.factor >= 2):
            raise ValueError(f"budget.factor={self.factor!r} must be an integer >= 2 (each round's steps over the last's)")


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


def check_algo(cfg: DictConfig) -> str:
    """The grid's training algorithm ``cfg.algorithm`` (``bc``: behavior cloning on the task's demonstrations; ``ppo``: recurrent
    PPO on the task itself, the RL track); another raises a ValueError naming the choices."""
    algo = cfg.get("algorithm", "bc")
    if algo not in ALGOS:
        raise ValueError(f"algorithm={algo!r} is not a training algorithm of the grid: choose one of {sorted(ALGOS)}")
    return algo


def task_settings(cfg: DictConfig, task: str) -> tuple[DictConfig, dict]:
    """The grid's ``collect`` and ``train`` settings for ``task``: its ``per_task.TASK`` entry merged over
    the grid's own (``train``: any setting of the grid's algorithm, :class:`~cadence.training.bc.BCConfig` or
    :class:`~cadence.training.ppo.PPOConfig`; a null value leaves the algorithm's own default, which is how a
    profile of the other algorithm drops a key of ``compare.yaml``'s ``train``); ``TASK@stepsN``: TASK's, at
    ``steps`` N. They hold for every arm alike, so the backbones still share one budget per task."""
    task, steps = budget_task(task)
    own = OmegaConf.to_container(cfg.per_task, resolve=True).get(task) or {}
    if extra := sorted(set(own) - {"collect", "train"}):
        raise ValueError(f"per_task.{task}.{extra[0]} is not a setting of a task: per_task.{task} takes collect "
                         "and train, e.g. per_task.hopper={train: {steps: 6000}}")  # fmt: skip
    algo, grid_train = check_algo(cfg), OmegaConf.to_container(cfg.train, resolve=True)
    for part, known, given in (("collect", set(cfg.collect), own.get("collect") or {}),
                               ("train", {f.name for f in fields(ALGOS[algo])}, own.get("train") or {})):  # fmt: skip
        if unknown := sorted(set(given) - known):
            raise ValueError(f"per_task.{task}.{part} has unknown key(s) {unknown}: a task's {part} takes "
                             f"{sorted(known)}" + (f" (algorithm={algo})" if part == "train" else ""))  # fmt: skip
        if part == "train" and (unknown := sorted(k for k, v in grid_train.items() if v is not None and k not in known)):
            raise ValueError(f"train has key(s) {unknown} that algorithm={algo} does not take (its keys: {sorted(known)}); "
                             f"a profile for algorithm={algo} sets them to null (cadence/configs/profile/rl.yaml)")  # fmt: skip
    collect = OmegaConf.merge(cfg.collect, own.get("collect") or {})
    train = grid_train | (own.get("train") or {}) | ({"steps": steps} if steps else {})
    return collect, {k: v for k, v in train.items() if v is not None}  # null: the algorithm's own default


def grid_cells(cfg: DictConfig, backbones: list[str] | None = None) -> tuple[list[Cell], dict[str, Arm]]:
    """The cells of a comparison config (``tasks`` × ``seeds`` × arms, in that nesting) and their arms;
    the arms are ``backbones`` (e.g. with their tuned learning rates) or else ``cfg.backbones``."""
    arms = {a.name: a for a in resolve_arms(list(backbones or cfg.backbones), cfg.arms)}
    return [Cell(task, name, seed) for task in cfg.tasks for seed in cfg.seeds for name in arms], arms


def check_grid(cfg: DictConfig) -> list[str]:
    """The tasks of the grid spec ``cfg`` (a composed ``compare.yaml``: ``tasks`` and the sweep's task), once the
    whole spec is checked, before any dataset is collected or cell trained: every task is an env config or a
    variant of one (``variants``) with valid ``per_task`` settings, every arm resolves, the sweep (its search spaces
    included: :meth:`LRSweep.spaces`) and the device are valid, and no held-out seed is an evaluation seed
    (:func:`check_seeds`)."""
    tasks = list(dict.fromkeys([*cfg.tasks, *([cfg.lr_sweep.task] if cfg.lr_sweep else [])]))
    for task in tasks:
        demonstrations_task(task, cfg.get("variants"))
        task_settings(cfg, task)
    envs = max(task_settings(cfg, task)[1]["eval_envs"] for task in tasks)
    arms = resolve_arms(list(cfg.backbones), cfg.arms)
    if cfg.lr_sweep:
        sweep = to_dataclass(LRSweep, cfg.lr_sweep, "lr_sweep")
        sweep.check_seeds(list(cfg.seeds), envs)
        sweep.spaces(arms, cfg.arms, task_settings(cfg, sweep.task)[1], check_algo(cfg))  # its trials' settings
    else:
        check_seeds(list(cfg.seeds), [], envs)
    check_device(cfg.device)
    to_dataclass(Budget, cfg.budget, "budget")
    return tasks
