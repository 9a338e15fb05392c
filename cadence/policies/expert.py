"""A trained policy checkpoint used as a demonstration expert.

Learned experts are ordinary ``SequencePolicy`` checkpoints. ``cadence-collect expert=DIR`` loads the one
in ``DIR`` and feeds it the task's full state (``info["full_state"]``), so a policy trained on the fully
observed env (``env=hopper``) labels the demonstrations of its partially observed variants
(``env=hopper_p``). ``expert=ppo`` (the locomotion configs' default) picks the shipped full-state
PPO-MLP expert of the task from ``pretrained/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .policy import SequencePolicy

PRETRAINED = Path(__file__).parent / "pretrained"
"""Shipped full-state PPO-MLP experts, ``ppo_TASK`` (``pretrained/README.md``: commands and returns)."""


def pretrained_expert(env) -> PolicyExpert:
    """The shipped PPO expert for ``env``'s MuJoCo task (``HopperEnv`` -> ``pretrained/ppo_hopper``)."""
    task = type(env.unwrapped).__name__.removesuffix("Env").lower()
    path = PRETRAINED / f"ppo_{task}"
    if not path.is_dir():
        shipped = sorted(p.name for p in PRETRAINED.glob("ppo_*"))
        raise ValueError(f"no shipped PPO expert for {task} (shipped: {shipped}); train one with `cadence-train "
                         f"algo=ppo policy=mlp policy.head=gaussian env=FULL_STATE_ENV` and pass expert=RUN_DIR/checkpoints/best")  # fmt: skip
    return PolicyExpert(path)


class PolicyExpert:
    """``expert(full_state (D,)) -> action (A,)``: the checkpoint's deterministic action in env units.

    Recurrent checkpoints keep their state across calls; ``reset()`` (called at every episode start)
    zeroes it.
    """

    def __init__(self, checkpoint: str | os.PathLike):
        self.checkpoint = Path(checkpoint)
        self.name = str(checkpoint)
        self.policy = SequencePolicy.from_pretrained(self.checkpoint).eval()
        self.policy.reset(batch_size=1)

    def reset(self) -> None:
        self.policy.reset(batch_size=1)

    def __call__(self, full_state: np.ndarray) -> np.ndarray:
        if full_state.shape != (self.policy.obs_dim,):
            raise ValueError(f"expert {self.checkpoint} takes observations of size {self.policy.obs_dim} but the "
                             f"task's full state has shape {full_state.shape}; the expert must be trained on the "
                             "fully observed env whose partial variant is being collected (e.g. env=hopper for hopper_p)")  # fmt: skip
        with torch.inference_mode():
            return self.policy.act(full_state[None])[0].cpu().numpy()
