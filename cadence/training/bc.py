"""Behavior cloning of a SequencePolicy on demonstration windows.

Symbols: B windows per batch, L window length, O observation dim, A action dim.

Batches come from an in-memory copy of the dataset (:class:`cadence.datasets.Demonstrations`) in one of
three ways (``batches``):

* ``streams``, truncated BPTT: B streams each walk through episodes in order, L steps per batch, and the
  backbone state is carried (detached) from one batch to the next; a stream that finishes an episode
  continues with a random new one, marked by ``resets`` inside the window — the resettable scan every
  backbone implements. Policies are deployed over whole episodes, so this trains them on the states they
  will meet: on InvertedPendulum-P with 16-step windows, LinOSS scored 47 from zero-state windows and 100
  with TBPTT (``docs/results.md``). No gradient crosses a window boundary, though.
* ``windows``: each batch holds B windows [t, t + L) starting at uniformly drawn frames (every frame is an
  anchor, as in LeRobot); steps past the episode's end are padding, masked out of the loss; every window
  starts from the zero state.
* ``episodes``, whole-sequence training: each batch holds B episodes drawn uniformly, from their first
  frame, L steps long (``window: null``: the longest episode), padding masked; the gradient reaches from
  the last action back to the first observation, which is what links a cue to an action D steps later.
* ``auto`` (the default): ``episodes`` on a task that declares a memory horizon longer than ``window``
  (``env.unwrapped.memory_horizon``, e.g. the cue → delay task), else ``streams``; resolved by the run
  layer (:func:`resolve_batches`).

Loss: MSE between the head output and the normalized expert action (``loss: mse``), or the negative log-likelihood
of a gaussian head (``loss: nll``). An image policy may add an auxiliary loss (``image_aux_key``): a linear layer
reads privileged features the policy does not observe (e.g. the target's position in
``observation.environment_state``) from its image encoder's features, by MSE on their normalized values at
``image_aux_weight`` × — training only; the saved and deployed policy does not hold the layer and sees the state and
the camera as before. BC's action loss alone may not teach an encoder trained from scratch to read a small target
from the frames (``docs/tasks.md``, ``reach_pixels``), as asking for the target directly does. AdamW (:mod:`.optim`:
matrices decayed, the backbone's recurrence parameters at ``recurrence_lr_factor`` × ``lr``), linear warm-up then
cosine decay, gradient clipping, optional EMA of the weights (evaluated and saved in place of the raw weights).

Checkpoints (:mod:`.checkpoint`): ``best`` by evaluation score, ``last`` with the resume state (optimizer, schedule,
EMA, step, RNG and stream states), so that ``resume`` continues the run exactly.

Data parallel (``torchrun``, :mod:`cadence.training.distributed`): every rank draws the same global batch of B
windows from the same sampler seed and trains on its own rows r·B/W … (r+1)·B/W − 1 (B must divide by W); DDP
averages the gradients, and the loss is normalized by the global number of valid steps, so W processes take the same
steps as one process with batch B, up to floating-point reduction order. Rank 0 alone logs, evaluates and writes
checkpoints; the carried TBPTT state is gathered into the checkpoint as one (B, …) state, so a run resumes on any
number of processes. Dropout draws from ``seed + rank``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import median
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..datasets import Batch, Demonstrations, EpisodeStreams
from ..policies import SequencePolicy
from ..policies.backbones import State
from ..progress import progress_bar
from .checkpoint import Checkpoints
from .distributed import Distributed
from .optim import RECURRENCE, adamw, param_groups, scheduler
from .tensorboard import Scalars

log = logging.getLogger(__name__)


BATCHES = ("auto", "streams", "windows", "episodes")
PROBE_STEPS = 9
"""Gradient steps (after the first) whose median time is the cost of a step ``time_budget_s`` is checked with: the
median, so that a step slowed by another process on the cores does not decide (with 3 steps and their mean, one
cell of a loaded grid measured 1.36 s/step and was refused, while the next seed of the same cell trained at
0.33 s/step, evaluations included)."""


def step_cost(marks: list[float]) -> float:
    """The cost of a gradient step from the training clock read after each of consecutive steps: the median of
    the differences (:data:`PROBE_STEPS`)."""
    return median(b - a for a, b in zip(marks, marks[1:]))


class OutOfBudget(RuntimeError):
    """A run whose measured cost per gradient step would take it past its time budget."""

    def __init__(self, s_per_step: float, steps: int, budget_s: float):
        super().__init__(f"{steps} steps at {s_per_step:.3g} s/step would take {steps * s_per_step:.0f} s, over the "
                         f"{budget_s:.0f} s budget (algo.time_budget_s)")  # fmt: skip
        self.s_per_step, self.steps, self.budget_s = s_per_step, steps, budget_s


@dataclass
class BCConfig:
    """Behavior-cloning hyperparameters (``cadence/configs/algo/bc.yaml``)."""

    RENAMED: ClassVar[dict[str, str]] = {"tbptt": "batches"}  # tbptt=true: batches=streams; false: windows

    steps: int = 3000
    """Gradient steps."""
    batch_size: int = 64
    """Windows (or streams) per batch."""
    window: int | None = 32
    """L, steps per window (``batches: episodes``: at most; null: the longest episode)."""
    lr: float = 1e-3
    """Peak learning rate."""
    recurrence_lr_factor: float = 1.0
    """The backbone's recurrence parameters (LinOSS: A, G, Δt; Mamba: A_log, Δ, D) train at this × ``lr``."""
    weight_decay: float = 1e-4
    """AdamW weight decay (matrices only; biases, norms and recurrence parameters are not decayed)."""
    warmup_steps: int = 100
    """Linear warm-up before the cosine decay."""
    grad_clip: float = 1.0
    """Max global gradient norm."""
    ema_decay: float | None = None
    """EMA of the weights (e.g. 0.999); None disables it."""
    batches: str = "auto"
    """How batches are drawn: "streams" (TBPTT), "windows", "episodes" or "auto" (module docstring)."""
    loss: str = "mse"
    """"mse" or "nll" (needs policy.head: gaussian)."""
    observation_keys: list[str] | None = None
    """The dataset features the policy observes: vectors (D,), concatenated in this order, and camera features
    (``observation.images.*``), their channels stacked in this order; None: every ``observation.*`` feature but
    ``observation.environment_state``, sorted by name (:func:`cadence.datasets.observation_keys`)."""
    image_size: list[int] | None = None
    """[H, W]: camera frames are resized to this when decoded (:mod:`cadence.datasets.images`); None: as recorded."""
    image_cache_gib: float = 2.0
    """Cap on the memory of the decoded camera frames (uint8, N × C × H × W bytes); over it the load is refused."""
    validation_fraction: float = 0.1
    """Without an env (``env=null``): the share of the dataset's episodes, its last ones (at least one), held out;
    their loss picks ``checkpoints/best`` and its negative is the score (:func:`validation_loss`)."""
    eval_every: int = 1000
    """Evaluate by rollout (without an env: on the held-out episodes) every this many gradient steps (and at the
    end); 0: only at the end."""
    eval_episodes: int = 10
    """Episodes per evaluation."""
    eval_envs: int = 5
    """Sub-envs of the evaluation vector env."""
    asynchronous: bool = False
    """Evaluate in an AsyncVectorEnv (each sub-env in its own worker process) instead of a SyncVectorEnv."""
    save_every: int = 500
    """Gradient steps between writes of checkpoints/last (the resume point); also written at every evaluation."""
    log_every: int = 50
    """Gradient steps between TensorBoard scalars."""
    image_aux_key: str | None = None
    """An image policy's auxiliary target (module docstring): a vector feature of the dataset (e.g.
    ``observation.environment_state``) that its image encoder learns to predict, in training only; None: none."""
    image_aux_dims: list[int] | None = None
    """The dims of ``image_aux_key`` to predict; None: all of them."""
    image_aux_weight: float = 1.0
    """Weight of the auxiliary loss beside the action loss (both in normalized units)."""
    time_budget_s: float | None = None
    """Give up early on a run that cannot fit: after gradient steps 2–4, if their seconds per step × ``steps``
    exceeds this, stop with :class:`OutOfBudget` (the comparison records the cell as out of budget); None: no limit."""

    def __post_init__(self):
        if self.loss not in ("mse", "nll"):
            raise ValueError(f"loss {self.loss!r} is not 'mse' or 'nll'")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(f"algo.validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if self.batches not in BATCHES:
            raise ValueError(f"algo.batches {self.batches!r} is not one of {BATCHES}")
        if self.window is None and self.batches != "episodes":
            raise ValueError("algo.window=null (whole episodes) needs algo.batches=episodes")
        if self.observation_keys is not None and not self.observation_keys:
            raise ValueError("algo.observation_keys=[] selects no feature; list the features the policy observes, "
                             "e.g. algo.observation_keys=[observation.state], or write null for the default")
        if self.image_size is not None and (len(self.image_size) != 2 or min(self.image_size) < 1):
            raise ValueError(f"algo.image_size={self.image_size} is not [H, W]; write e.g. algo.image_size=[64,64], "
                             "or null to keep the recorded size")  # fmt: skip
        if self.image_cache_gib <= 0:
            raise ValueError(f"algo.image_cache_gib must be > 0, got {self.image_cache_gib}")
        if self.image_aux_weight <= 0:
            raise ValueError(f"algo.image_aux_weight must be > 0, got {self.image_aux_weight}; to train without the "
                             "auxiliary loss, set algo.image_aux_key=null")  # fmt: skip
        for name in ("steps", "batch_size", "window", "eval_episodes", "eval_envs", "save_every", "log_every"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"algo.{name} must be >= 1, got {getattr(self, name)}")


def resolve_batches(cfg: BCConfig, memory_horizon: int | None = None) -> BCConfig:
    """``batches: auto`` made concrete: whole episodes when the task declares a memory horizon (steps) longer
    than one window, else TBPTT streams; any other value is kept."""
    if cfg.batches != "auto":
        return cfg
    long_memory = memory_horizon is not None and (cfg.window is None or memory_horizon >= cfg.window)
    return replace(cfg, batches="episodes" if long_memory else "streams", window=None if long_memory else cfg.window)


def batch_length(cfg: BCConfig, data: Demonstrations) -> int:
    """L, the time steps of one batch: ``window``, or for whole episodes the longest episode (at most ``window``)."""
    if cfg.batches != "episodes":
        return cfg.window
    longest = int((data.ep_to - data.ep_from).max())
    return longest if cfg.window is None else min(cfg.window, longest)


def masked_loss(policy: SequencePolicy, mean: Tensor, actions: Tensor, valid: Tensor, kind: str,
                denominator: Tensor | None = None) -> Tensor:  # fmt: skip
    """Mean over valid steps of the per-step loss in normalized action units; ``denominator`` replaces
    the number of valid steps (a data-parallel rank divides by the global count / W)."""
    target = policy.action_norm(actions)
    if kind == "mse":
        per_step = ((mean - target) ** 2).mean(-1)
    else:
        per_step = -policy.head.distribution(mean).log_prob(target)
    return masked_mean(per_step, valid, denominator)


def masked_mean(per_step: Tensor, valid: Tensor, denominator: Tensor | None = None) -> Tensor:
    """per_step (B, L) -> its mean over the ``valid`` (B, L) steps (``denominator``: see :func:`masked_loss`)."""
    return (per_step * valid).sum() / (valid.sum().clamp_min(1) if denominator is None else denominator)


@torch.no_grad()
def validation_loss(policy: SequencePolicy, data: Demonstrations, kind: str, batch: int = 64) -> dict:
    """The BC loss of ``policy`` (in eval mode) over every episode of ``data``, whole, from the zero state, as the
    ``score`` (its negative: higher is better) and ``validation_loss``: what ranks checkpoints without an env."""
    policy.eval()
    total, steps = 0.0, 0
    for start in range(0, len(data.ep_from), batch):
        b = data.episodes(torch.arange(start, min(start + batch, len(data.ep_from))))
        mean, _ = policy(b.obs, None, None, b.images)
        total += float(masked_loss(policy, mean, b.actions, b.valid, kind)) * int(b.valid.sum())
        steps += int(b.valid.sum())
    return {"score": -total / steps, "validation_loss": total / steps, "frames": steps}


class BCObjective(nn.Module):
    """The loss of one batch as a module, so that DDP wraps the whole computation (head included). With
    ``aux_dim`` K > 0 (an image policy's auxiliary loss, module docstring) it holds the linear layer ``aux``
    (image features F -> K), which is trained with the policy but is not part of it."""

    def __init__(self, policy: SequencePolicy, kind: str, aux_dim: int = 0, aux_weight: float = 1.0):
        super().__init__()
        self.policy, self.kind, self.aux_weight = policy, kind, aux_weight
        if aux_dim and policy.image_encoder is None:
            raise ValueError("algo.image_aux_key teaches a policy's image encoder, and this policy observes no "
                             "camera: select a camera feature (algo.observation_keys) or set algo.image_aux_key=null")
        self.aux = nn.Linear(policy.cfg.image_features, aux_dim) if aux_dim else None

    def forward(self, obs: Tensor, actions: Tensor, valid: Tensor, state: State | None, resets: Tensor | None,
                denominator: Tensor | None = None, images: Tensor | None = None, aux: Tensor | None = None
                ) -> tuple[Tensor, State, Tensor | None]:  # fmt: skip
        """obs (B, L, O), actions (B, L, A), valid (B, L), resets (B, L) or None, images (B, L, C, H, W) uint8 or
        None, aux (B, L, K) normalized auxiliary targets (with ``aux_dim``) -> (loss, final state, the auxiliary
        loss or None); the loss is the action loss + ``aux_weight`` × the auxiliary loss."""
        features = None if self.aux is None else self.policy.image_encoder(images)  # once, for both readers
        mean, final = self.policy(obs, state, resets, images, features)
        loss = masked_loss(self.policy, mean, actions, valid, self.kind, denominator)
        if self.aux is None:
            return loss, final, None
        aux_loss = masked_mean(((self.aux(features) - aux) ** 2).mean(-1), valid, denominator)
        return loss + self.aux_weight * aux_loss, final, aux_loss


class BCTrainer:
    """Trains ``policy`` on ``data``; ``evaluate_fn(policy) -> dict`` (with a "score" key) is called
    every ``eval_every`` steps and picks the best checkpoint."""

    def __init__(self, policy: SequencePolicy, data: Demonstrations, cfg: BCConfig, run_dir: str | Path,
                 evaluate_fn: Callable[[SequencePolicy], dict] | None = None, seed: int = 0,
                 device: str | torch.device = "cpu", run_info: dict | None = None):  # fmt: skip
        cfg = resolve_batches(cfg)
        self.cfg, self.run_dir, self.evaluate_fn, self.device = cfg, Path(run_dir), evaluate_fn, torch.device(device)
        self.seed, self.dist = seed, Distributed.current()
        if cfg.loss == "nll" and policy.head.log_std is None:
            raise ValueError("algo.loss=nll needs a gaussian head: set policy.head=gaussian")
        self.policy = policy.to(self.device)
        self.data = data.to(self.device)
        self.gen = torch.Generator().manual_seed(seed)  # the same on every rank: one global batch
        torch.manual_seed(seed + self.dist.rank)
        self.rows = self.dist.shard(cfg.batch_size, "algo.batch_size")  # this rank's rows of the batch
        aux_dim = 0 if data.aux is None else data.aux.shape[1]
        if bool(aux_dim) != (cfg.image_aux_key is not None):
            raise ValueError(f"algo.image_aux_key={cfg.image_aux_key} needs demonstrations loaded with that key's "
                             "auxiliary targets (load_demonstrations(aux_key=...)), and only then")  # fmt: skip
        self.objective = BCObjective(self.policy, cfg.loss, aux_dim, cfg.image_aux_weight).to(self.device)
        self.aux = self.objective.aux  # trained beside the policy, saved in checkpoints/last only
        if self.dist.enabled:  # gradients averaged over ranks
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            unused = cfg.loss == "mse" and policy.head.log_std is not None  # a gaussian head's log_std gets no gradient
            self.objective = DistributedDataParallel(self.objective, device_ids=device_ids,
                                                     find_unused_parameters=unused)  # fmt: skip
        groups = param_groups(self.objective, cfg.weight_decay, cfg.lr, {RECURRENCE: cfg.recurrence_lr_factor})
        self.opt = adamw(groups, cfg.lr)
        self.sched = scheduler(self.opt, cfg.warmup_steps, cfg.steps)
        self.ema = AveragedModel(policy, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay)) if cfg.ema_decay else None
        self.streams = EpisodeStreams(self.data, cfg.batch_size, self.gen) if cfg.batches == "streams" else None
        self.window = batch_length(cfg, data)
        self.carried: State | None = None
        self.ckpt = Checkpoints(self.run_dir, run_info, self.dist.is_main)
        self.step, self.history = 0, []
        # time spent in gradient steps; evaluations, checkpoints and the first step of every fit (compiling the
        # numba kernels, growing the allocator: warmup_s) are left out, so that it measures training alone
        self.train_s, self.warmup_s = 0.0, 0.0

    # ------------------------------------------------------------------ checkpoints
    def eval_policy(self) -> SequencePolicy:
        """The weights that are evaluated and saved: the EMA when enabled."""
        return self.ema.module if self.ema is not None else self.policy

    def _local(self, x: Tensor) -> Tensor:
        """This rank's rows of a global (B, …) batch tensor (all of it on one process)."""
        return x[self.rows] if self.dist.enabled else x

    def _local_batch(self, batch: Batch) -> Batch:
        """This rank's rows of every tensor of a global batch."""
        return Batch(*(None if x is None else self._local(x) for x in batch))

    def save_last(self) -> None:
        """Write ``checkpoints/last`` with the resume state; every rank must call it (the carried state is
        gathered from all ranks, rank 0 writes)."""
        carried = self.carried
        if self.dist.enabled and carried is not None:
            carried = tuple(self.dist.all_gather(s) for s in carried)
        if not self.dist.is_main:
            return
        state = {"step": self.step, "train_s": self.train_s, "policy": self.policy.state_dict(),
                 "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
                 "ema": self.ema.state_dict() if self.ema is not None else {}, "torch_rng": torch.get_rng_state(),
                 "sampler_rng": self.gen.get_state(),
                 "streams": self.streams.state_dict() if self.streams is not None else {},
                 "carried": list(carried) if carried is not None else [],
                 "aux": self.aux.state_dict() if self.aux is not None else {}}  # fmt: skip
        self.ckpt.save("last", self.eval_policy(), self.step, self.history, state)

    def resume(self) -> bool:
        """Load ``checkpoints/last`` if present; returns whether a run was resumed."""
        loaded = self.ckpt.load_last(self.device)
        if loaded is None:
            return False
        s, self.history = loaded
        self.policy.load_state_dict(s["policy"])
        if self.aux is not None:
            self.aux.load_state_dict(s["aux"])
        self.opt.load_state_dict(s["optimizer"])
        self.sched.load_state_dict(s["scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(s["ema"])
        torch.set_rng_state(s["torch_rng"])
        if self.dist.rank > 0:  # the checkpoint holds rank 0's stream; the others start new ones
            torch.manual_seed(self.seed + self.dist.rank + s["step"])
        self.gen.set_state(s["sampler_rng"])
        if self.streams is not None:
            self.streams.load_state_dict(s["streams"])
        self.carried = tuple(self._local(c) for c in s["carried"]) if s["carried"] else None
        self.step, self.train_s = s["step"], float(s.get("train_s", 0.0))
        log.info("resumed %s at step %d", self.run_dir, self.step)
        return True

    # ------------------------------------------------------------------ training
    def _batch(self) -> tuple[Batch, State | None]:
        """This rank's rows of the global batch, and the carried state (TBPTT streams) or None."""
        c = self.cfg
        if self.streams is None:
            sample = self.data.sample_episodes if c.batches == "episodes" else self.data.sample_windows
            return self._local_batch(sample(c.batch_size, self.window, self.gen)), None
        batch = self._local_batch(self.streams.next(self.window))
        return batch, self.carried or self.policy.initial_state(len(batch.obs))

    def train_step(self) -> dict:
        batch, state = self._batch()
        valid = batch.valid
        # with W ranks: divide by the global valid count / W, so that DDP's gradient mean is the global loss's
        denominator = self.dist.mean(valid.sum().float()) if self.dist.enabled else None
        self.objective.train()  # the policy and the auxiliary layer
        loss, final, aux_loss = self.objective(batch.obs, batch.actions, valid, state, batch.resets, denominator,
                                               batch.images, batch.aux)  # fmt: skip
        if self.streams is not None:
            self.carried = tuple(s.detach() for s in final)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.objective.parameters(), self.cfg.grad_clip)
        loss = self.dist.mean(loss)  # the global batch's loss (the same tensor on one process)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {self.step}; lower algo.lr or check the data")
        self.opt.step()
        self.sched.step()
        if self.ema is not None:
            self.ema.update_parameters(self.policy)
        self.step += 1
        metrics = {"loss": loss.item(), "grad_norm": grad_norm.item(), "lr": self.sched.get_last_lr()[0]}
        return metrics | ({} if aux_loss is None else {"aux_loss": self.dist.mean(aux_loss.detach()).item()})

    def run_eval(self) -> dict:
        policy = self.eval_policy()
        policy.eval()
        result = self.evaluate_fn(policy) | {"step": self.step, "train_s": self.train_s}
        self.ckpt.record(result, policy, self.step, self.history)
        return result

    def _check_budget(self) -> None:
        """With ``time_budget_s``: after the probe steps, raise :class:`OutOfBudget` if the run would not fit."""
        c = self.cfg
        if c.time_budget_s is None:
            return
        if self.step == 1:
            self._probe = [self.train_s]  # 0: the first step, which pays for compilation, is warmup_s
        elif 1 < self.step <= 1 + PROBE_STEPS and hasattr(self, "_probe"):
            self._probe.append(self.train_s)
        if self.step == 1 + PROBE_STEPS and hasattr(self, "_probe"):
            s_per_step = self.dist.broadcast(step_cost(self._probe))  # rank 0 decides
            if s_per_step * c.steps > c.time_budget_s:
                raise OutOfBudget(s_per_step, c.steps, c.time_budget_s)

    def fit(self) -> dict:
        """Train to ``cfg.steps``, evaluating and checkpointing; returns the last evaluation (or {})."""
        c, main = self.cfg, self.dist.is_main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        scalars = Scalars(self.run_dir, self.step, main)
        last_eval: dict = self.history[-1] if self.history else {}
        samples, t0, warm = 0, time.perf_counter(), False
        with progress_bar(total=c.steps, initial=self.step, description="bc", disable=not main) as bar:
            while self.step < c.steps:
                t_step = time.perf_counter()
                m = self.train_step()
                if warm:
                    self.train_s += time.perf_counter() - t_step
                else:
                    self.warmup_s, warm = self.warmup_s + time.perf_counter() - t_step, True
                self._check_budget()
                samples += c.batch_size * self.window  # the global batch
                if main and (self.step % c.log_every == 0 or self.step == c.steps):
                    scalars.train(m | {"samples_per_s": samples / (time.perf_counter() - t0)}, self.step)
                    samples, t0 = 0, time.perf_counter()
                    bar.set_postfix(loss=f"{m['loss']:.4f}")
                end = self.step == c.steps
                evaluate = self.evaluate_fn is not None and (end or (c.eval_every and self.step % c.eval_every == 0))
                if evaluate and main:
                    last_eval = self.run_eval()
                    scalars.eval(last_eval, self.step)
                    bar.set_postfix(loss=f"{m['loss']:.4f}", score=f"{last_eval['score']:.1f}")
                if evaluate or end or self.step % c.save_every == 0:
                    self.save_last()
                bar.update(1)
        scalars.close()
        return self.dist.broadcast(last_eval)
