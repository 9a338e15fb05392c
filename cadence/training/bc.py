"""Behavior cloning of a SequencePolicy on demonstration windows.

Symbols: B windows per batch, L window length, O observation dim, A action dim.

Batches come from an in-memory copy of the dataset (:class:`cadence.datasets.Demonstrations`) in one of two ways:

* truncated BPTT (``tbptt: true``, the default): B streams each walk through episodes in order, L
  steps per batch, and the backbone state is carried (detached) from one batch to the next; a stream
  that finishes an episode continues with a random new one, marked by ``resets`` inside the window —
  the resettable scan every backbone implements. Policies are deployed over whole episodes, so this
  trains them on the states they will meet: on InvertedPendulum-P with 16-step windows, LinOSS
  scored 47 from zero-state windows and 100 with TBPTT (``docs/results.md``).
* random windows (``tbptt: false``): each batch holds B windows [t, t + L) starting at uniformly
  drawn frames (every frame is an anchor, as in LeRobot); steps past the episode's end are padding,
  masked out of the loss; every window starts from the zero state.

Loss: MSE between the head output and the normalized expert action (``loss: mse``), or the
negative log-likelihood of a gaussian head (``loss: nll``). AdamW (:mod:`.optim`: matrices decayed, the
backbone's recurrence parameters at ``recurrence_lr_factor`` × ``lr``), linear warm-up then cosine decay,
gradient clipping, optional EMA of the weights (evaluated and saved in place of the raw weights).

Checkpoints (:mod:`.checkpoint`): ``best`` by evaluation score, ``last`` with the resume state (optimizer,
schedule, EMA, step, RNG and stream states), so that ``resume`` continues the run exactly.

Data parallel (``torchrun``, :mod:`cadence.training.distributed`): every rank draws the same global
batch of B windows from the same sampler seed and trains on its own rows r·B/W … (r+1)·B/W − 1
(B must divide by W); DDP averages the gradients, and the loss is normalized by the global number of
valid steps, so W processes take the same steps as one process with batch B, up to floating-point
reduction order. Rank 0 alone logs, evaluates and writes checkpoints; the carried TBPTT state is
gathered into the checkpoint as one (B, …) state, so a run resumes on any number of processes.
Dropout draws from ``seed + rank``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..datasets import Demonstrations, EpisodeStreams
from ..policies import SequencePolicy
from ..policies.backbones import State
from ..progress import progress_bar
from .checkpoint import Checkpoints
from .distributed import Distributed
from .optim import RECURRENCE, param_groups, scheduler
from .tensorboard import Scalars

log = logging.getLogger(__name__)


@dataclass
class BCConfig:
    """Behavior-cloning hyperparameters (``cadence/configs/algo/bc.yaml``)."""

    steps: int = 3000
    """Gradient steps."""
    batch_size: int = 64
    """Windows (or streams) per batch."""
    window: int = 32
    """L, steps per window."""
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
    tbptt: bool = True
    """Carry the backbone state between consecutive windows of each episode (module docstring)."""
    loss: str = "mse"
    """"mse" or "nll" (needs policy.head: gaussian)."""
    eval_every: int = 1000
    """Evaluate by rollout every this many gradient steps (and at the end); 0: only at the end."""
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

    def __post_init__(self):
        if self.loss not in ("mse", "nll"):
            raise ValueError(f"loss {self.loss!r} is not 'mse' or 'nll'")
        for name in ("steps", "batch_size", "window", "eval_episodes", "eval_envs", "save_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"algo.{name} must be >= 1, got {getattr(self, name)}")


def masked_loss(policy: SequencePolicy, mean: Tensor, actions: Tensor, valid: Tensor, kind: str,
                denominator: Tensor | None = None) -> Tensor:  # fmt: skip
    """Mean over valid steps of the per-step loss in normalized action units; ``denominator`` replaces
    the number of valid steps (a data-parallel rank divides by the global count / W)."""
    target = policy.action_norm(actions)
    if kind == "mse":
        per_step = ((mean - target) ** 2).mean(-1)
    else:
        per_step = -policy.head.distribution(mean).log_prob(target)
    return (per_step * valid).sum() / (valid.sum().clamp_min(1) if denominator is None else denominator)


class BCObjective(nn.Module):
    """The loss of one batch as a module, so that DDP wraps the whole computation (head included)."""

    def __init__(self, policy: SequencePolicy, kind: str):
        super().__init__()
        self.policy, self.kind = policy, kind

    def forward(self, obs: Tensor, actions: Tensor, valid: Tensor, state: State | None, resets: Tensor | None,
                denominator: Tensor | None = None) -> tuple[Tensor, State]:  # fmt: skip
        """obs (B, L, O), actions (B, L, A), valid (B, L), resets (B, L) or None -> (loss, final state)."""
        mean, final = self.policy(obs, state, resets)
        return masked_loss(self.policy, mean, actions, valid, self.kind, denominator), final


class BCTrainer:
    """Trains ``policy`` on ``data``; ``evaluate_fn(policy) -> dict`` (with a "score" key) is called
    every ``eval_every`` steps and picks the best checkpoint."""

    def __init__(self, policy: SequencePolicy, data: Demonstrations, cfg: BCConfig, run_dir: str | Path,
                 evaluate_fn: Callable[[SequencePolicy], dict] | None = None, seed: int = 0,
                 device: str | torch.device = "cpu", run_info: dict | None = None):  # fmt: skip
        self.cfg, self.run_dir, self.evaluate_fn, self.device = cfg, Path(run_dir), evaluate_fn, torch.device(device)
        self.seed, self.dist = seed, Distributed.current()
        if cfg.loss == "nll" and policy.head.log_std is None:
            raise ValueError("algo.loss=nll needs a gaussian head: set policy.head=gaussian")
        self.policy = policy.to(self.device)
        self.data = data.to(self.device)
        self.gen = torch.Generator().manual_seed(seed)  # the same on every rank: one global batch
        torch.manual_seed(seed + self.dist.rank)
        self.rows = self.dist.shard(cfg.batch_size, "algo.batch_size")  # this rank's rows of the batch
        self.objective = BCObjective(self.policy, cfg.loss)
        if self.dist.enabled:  # gradients averaged over ranks
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            unused = cfg.loss == "mse" and policy.head.log_std is not None  # a gaussian head's log_std gets no gradient
            self.objective = DistributedDataParallel(self.objective, device_ids=device_ids,
                                                     find_unused_parameters=unused)  # fmt: skip
        groups = param_groups(policy, cfg.weight_decay, cfg.lr, {RECURRENCE: cfg.recurrence_lr_factor})
        self.opt = torch.optim.AdamW(groups, lr=cfg.lr)
        self.sched = scheduler(self.opt, cfg.warmup_steps, cfg.steps)
        self.ema = AveragedModel(policy, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay)) if cfg.ema_decay else None
        self.streams = EpisodeStreams(self.data, cfg.batch_size, self.gen) if cfg.tbptt else None
        self.carried: State | None = None
        self.ckpt = Checkpoints(self.run_dir, run_info, self.dist.is_main)
        self.step, self.history = 0, []
        self.train_s = 0.0  # time spent in gradient steps (evaluations and checkpoints excluded)

    # ------------------------------------------------------------------ checkpoints
    def eval_policy(self) -> SequencePolicy:
        """The weights that are evaluated and saved: the EMA when enabled."""
        return self.ema.module if self.ema is not None else self.policy

    def _local(self, x: Tensor) -> Tensor:
        """This rank's rows of a global (B, …) batch tensor (all of it on one process)."""
        return x[self.rows] if self.dist.enabled else x

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
                 "carried": list(carried) if carried is not None else []}  # fmt: skip
        self.ckpt.save("last", self.eval_policy(), self.step, self.history, state)

    def resume(self) -> bool:
        """Load ``checkpoints/last`` if present; returns whether a run was resumed."""
        loaded = self.ckpt.load_last(self.device)
        if loaded is None:
            return False
        s, self.history = loaded
        self.policy.load_state_dict(s["policy"])
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
    def _batch(self):
        """This rank's rows of the global batch: (obs, actions, valid, resets or None, state or None)."""
        c = self.cfg
        if self.streams is None:
            obs, act, valid = self.data.sample_windows(c.batch_size, c.window, self.gen)
            return self._local(obs), self._local(act), self._local(valid), None, None
        obs, act, valid, resets = (self._local(x) for x in self.streams.next(c.window))
        state = self.carried or self.policy.initial_state(len(obs))
        return obs, act, valid, resets, state

    def train_step(self) -> dict:
        obs, act, valid, resets, state = self._batch()
        # with W ranks: divide by the global valid count / W, so that DDP's gradient mean is the global loss's
        denominator = self.dist.mean(valid.sum().float()) if self.dist.enabled else None
        self.policy.train()
        loss, final = self.objective(obs, act, valid, state, resets, denominator)
        if self.streams is not None:
            self.carried = tuple(s.detach() for s in final)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.cfg.grad_clip)
        loss = self.dist.mean(loss)  # the global batch's loss (the same tensor on one process)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {self.step}; lower algo.lr or check the data")
        self.opt.step()
        self.sched.step()
        if self.ema is not None:
            self.ema.update_parameters(self.policy)
        self.step += 1
        return {"loss": loss.item(), "grad_norm": grad_norm.item(), "lr": self.sched.get_last_lr()[0]}

    def run_eval(self) -> dict:
        policy = self.eval_policy()
        policy.eval()
        result = self.evaluate_fn(policy) | {"step": self.step, "train_s": self.train_s}
        self.ckpt.record(result, policy, self.step, self.history)
        return result

    def fit(self) -> dict:
        """Train to ``cfg.steps``, evaluating and checkpointing; returns the last evaluation (or {})."""
        c, main = self.cfg, self.dist.is_main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        scalars = Scalars(self.run_dir, self.step, main)
        last_eval: dict = self.history[-1] if self.history else {}
        samples, t0 = 0, time.perf_counter()
        with progress_bar(total=c.steps, initial=self.step, description="bc", disable=not main) as bar:
            while self.step < c.steps:
                t_step = time.perf_counter()
                m = self.train_step()
                self.train_s += time.perf_counter() - t_step
                samples += c.batch_size * c.window  # the global batch
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
