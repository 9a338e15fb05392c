"""The deployment loop's side of a policy: one observation in, one action out, for hours.

Symbols: O observation dim, A action dim.

:class:`Controller` runs a :class:`~cadence.deploy.step.PolicyStep` at batch 1 with the recurrent
state held between calls::

    controller = Controller.from_pretrained("runs/x/checkpoints/best")
    controller.reset()                       # at every episode start
    action = controller(obs)                 # obs (O,) -> action (A,), environment units
    action = controller(obs, {"observation.images.top": frame})   # a policy that observes cameras: uint8 (H, W, C)

Per call it copies ``obs`` into a preallocated float32 buffer, checks it (the guard below), runs
the step without autograd and returns the action as a NumPy array that the next call may overwrite.
The step itself is the backbone's fused kernel when one is registered
(:data:`~cadence.deploy.step.FUSED_STEPS`), run by one of three runtimes (``ControllerConfig.runtime``):
a numba kernel on preallocated, double-buffered arrays (fused LinOSS,
:class:`~cadence.deploy.numba_step.NumbaLinOSSStep`), or the PyTorch step traced and frozen by
TorchScript, or eager (:class:`TorchRuntime`; the state tensors of a fresh episode are allocated
once and ``reset()`` points back to them, since the step never writes into its inputs).

Guard: an observation with a NaN, an inf, or an entry more than ``obs_limit`` training standard
deviations from the training mean is *bad*. ``on_bad_obs="raise"`` raises a ``ValueError`` naming
the entries; ``"hold"`` returns the previous action again without advancing the state, and counts
the event in ``bad_obs_count`` (before the first good observation of an episode it returns the
training-mean action, clipped to the bounds).

Never a non-finite action: weights with a NaN or an inf are refused when the Controller is built, and an
action with one (a recurrent state that diverged) is never returned. Without ``ControllerConfig.fallback`` the
call raises a ``FloatingPointError``; with it — a fixed action (A,) or a callable ``fallback(obs) -> action (A,)``: a
safe stop, a hold, a classical controller — the fallback's action is returned instead (clipped to the bounds),
the recurrent state restarts from the episode start (a diverged state would poison every later step) and
``bad_action_count`` counts the event (docs/faults.md).
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from cadence.policies.backbones.base import check_state
from cadence.policies.image_encoder import assemble_frames
from cadence.policies.policy import SequencePolicy, check_finite

from .numba_step import NumbaLinOSSStep, numba_step_unsupported
from .step import PolicyStep

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "numba", "torchscript", "eager")
BAD_OBS_ACTIONS = ("raise", "hold")


@dataclass
class ControllerConfig:
    """How a :class:`Controller` runs its policy."""

    fused: bool = True
    """Use the backbone's fused step if one is registered (LinOSS); False = the generic ``backbone.step``."""
    runtime: str = "auto"
    """"numba": the fused LinOSS step as one compiled kernel (fastest, see docs/deploy.md; fused LinOSS
    with norm="layer" only); "torchscript": trace and freeze the PyTorch step once (any backbone);
    "eager": plain PyTorch modules; "auto": "numba" where it applies, else "torchscript"."""
    on_bad_obs: str = "raise"
    """What to do with a NaN / inf / out-of-range observation: "raise" or "hold" (see module doc)."""
    obs_limit: float | None = 100.0
    """Largest accepted |obs − mean| / std per entry (training statistics); None = only require finite."""
    fallback: Callable[[np.ndarray], np.ndarray] | np.ndarray | list[float] | None = None
    """What to return in place of a NaN / inf action: None raises a FloatingPointError; an action (A,) or a callable
    ``fallback(obs (O,)) -> action (A,)`` is returned instead, and the state restarts (see module doc)."""

    def __post_init__(self):
        if self.runtime not in RUNTIMES:
            raise ValueError(f"ControllerConfig.runtime {self.runtime!r} is not one of {RUNTIMES}")
        if self.on_bad_obs not in BAD_OBS_ACTIONS:
            raise ValueError(f"ControllerConfig.on_bad_obs {self.on_bad_obs!r} is not one of {BAD_OBS_ACTIONS}")
        if self.obs_limit is not None and not self.obs_limit > 0:
            raise ValueError(f"ControllerConfig.obs_limit must be > 0 or None, got {self.obs_limit}")


def trace_step(step: PolicyStep) -> torch.jit.ScriptModule:
    """TorchScript of ``step`` at batch 1 (traced: the step has no data-dependent control flow)."""
    with warnings.catch_warnings():
        # deprecated since torch 2.10, but still the fastest single-step path measured here (docs/deploy.md)
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.trace.*` is deprecated")
        # the backbones' shape checks run once, at trace time: right for the fixed batch-1 shapes traced here
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        return torch.jit.trace(step, step.example_inputs(1))


class TorchRuntime:
    """A PyTorch step module (eager or TorchScript) at batch 1 with its state held between calls.

    ``__call__(obs (O,) float32) -> action (A,)``; ``state``; ``reset(state=None)``: the contract of
    :class:`~cadence.deploy.numba_step.NumbaLinOSSStep`.
    """

    def __init__(self, module: nn.Module, initial_state: tuple[Tensor, ...], obs_dim: int):
        self._module, self._initial_state = module, initial_state
        self._obs = torch.zeros(1, obs_dim)  # (1, O) input buffer
        self._obs_np = self._obs.numpy()[0]  # (O,) NumPy view of the same memory
        self.reset()

    @property
    def state(self) -> tuple[Tensor, ...]:
        return self._state

    def reset(self, state: tuple[Tensor, ...] | None = None) -> None:
        self._state = self._initial_state if state is None else tuple(state)

    def __call__(self, obs: np.ndarray, images: Tensor | None = None) -> np.ndarray:
        """``images``: (1, C, H, W) uint8 for a step that takes camera frames."""
        self._obs_np[:] = obs
        frames = () if images is None else (images,)
        action, *state = self._module(self._obs, *frames, *self._state)
        self._state = tuple(state)
        return action.numpy()[0]


def make_runtime(step: PolicyStep, runtime: str) -> tuple[str, TorchRuntime | NumbaLinOSSStep]:
    """The runtime named ``runtime`` for ``step`` ("auto" resolved) and its resolved name."""
    unsupported = numba_step_unsupported(step)
    if runtime == "auto":
        runtime = "torchscript" if unsupported else "numba"
    if runtime == "numba":
        if unsupported:
            raise ValueError(f"ControllerConfig.runtime 'numba': {unsupported}; use 'torchscript'")
        return runtime, NumbaLinOSSStep(step)
    module = torch.jit.freeze(trace_step(step)) if runtime == "torchscript" else step
    return runtime, TorchRuntime(module, step.initial_state(1), step.obs_dim)


class Controller:
    """A policy stepped one observation at a time (see the module docstring)."""

    def __init__(self, policy: SequencePolicy, config: ControllerConfig | None = None):
        self.config = config or ControllerConfig()
        self.step = PolicyStep(policy, fused=self.config.fused)
        self.obs_dim, self.act_dim = self.step.obs_dim, self.step.act_dim
        self.camera_keys = None if policy.image_shape is None else list(policy.camera_keys)
        if self.camera_keys == []:
            raise ValueError("this policy observes camera frames but names no camera_keys, so the Controller cannot "
                             "tell which frame is which; build it with camera_keys=[...] (cadence-train records "
                             "them)")  # fmt: skip
        self.runtime, self._run = make_runtime(self.step, self.config.runtime)
        log.info("Controller: %s %s step, %s runtime", self.step.backbone_kind, policy.cfg.backbone, self.runtime)
        self._obs_np = np.zeros(self.obs_dim, np.float32)  # (O,) input buffer
        self._initial_state = self.step.initial_state(1)
        norm = policy.obs_norm
        limit = self.config.obs_limit
        mean, std = norm.mean.detach().cpu().numpy(), norm.std.detach().cpu().numpy()
        big = np.finfo(np.float32).max  # without a limit, still reject inf
        self._obs_low = (mean - limit * std if limit is not None else np.full_like(mean, -big)).astype(np.float32)
        self._obs_high = (mean + limit * std if limit is not None else np.full_like(mean, big)).astype(np.float32)
        with torch.no_grad():
            mean_action = policy.to_env_action(torch.zeros(1, self.act_dim, device=norm.mean.device))
        self._mean_action = mean_action.cpu().numpy()[0]
        self._action_low, self._action_high = (b.detach().cpu().numpy() for b in (policy.action_low,
                                                                                   policy.action_high))  # fmt: skip
        check_finite(policy.state_dict(), "the policy's weights")
        if self.config.fallback is not None and not callable(self.config.fallback):
            self._fallback_action(self.config.fallback)  # a fixed fallback action is checked now, not in an emergency
        self.bad_obs_count = self.bad_action_count = 0
        self.reset()

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, config: ControllerConfig | None = None) -> "Controller":
        """Load a ``SequencePolicy.save_pretrained`` checkpoint onto the CPU."""
        return cls(SequencePolicy.from_pretrained(directory), config)

    @property
    def backbone_kind(self) -> str:
        """"fused" or "generic": which backbone step runs."""
        return self.step.backbone_kind

    @property
    def state(self) -> tuple[Tensor, ...]:
        """The recurrent state after the last call (batch 1; layout of ``policy.initial_state``)."""
        return self._run.state

    def reset(self, state: tuple[Tensor, ...] | None = None) -> None:
        """Start a new episode from the zero state, or from ``state`` (batch 1, e.g. the state that
        ``policy.forward`` returns after a prefix of an episode). No previous action; ``bad_obs_count`` and
        ``bad_action_count`` keep counting."""
        if state is not None:
            check_state("Controller.reset state", tuple(state), self._initial_state)
        self._run.reset(None if state is None else tuple(state))
        self._last_action = self._mean_action

    def __call__(self, obs: np.ndarray, images: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """obs (O,) in environment units [+ ``images``: each camera's frame, uint8 (H, W, C), by its feature name
        (``policy.camera_keys``)] -> action (A,) float32 in environment units, clipped."""
        obs = np.asarray(obs)
        if obs.shape != (self.obs_dim,):
            raise ValueError(f"obs has shape {obs.shape}, expected ({self.obs_dim},); one observation per call")
        if (images is None) != (self.camera_keys is None):
            raise ValueError(f"this policy observes the cameras {self.camera_keys}: pass their frames as images="
                             "{KEY: uint8 (H, W, C)}" if images is None else
                             "this policy observes no camera; call it without images=")  # fmt: skip
        np.copyto(self._obs_np, obs, casting="same_kind")
        if not ((self._obs_np >= self._obs_low) & (self._obs_np <= self._obs_high)).all():  # NaN fails both
            return self._bad_observation()
        if images is None:
            action = self._run(self._obs_np)
        else:
            action = self._run(self._obs_np, assemble_frames(images, self.camera_keys, self.step.image_shape)[None])
        if not math.isfinite(action.dot(action)):  # a NaN or inf anywhere (clipped actions cannot overflow it)
            return self._bad_action(action)
        self._last_action = action
        return action

    def _fallback_action(self, fallback) -> np.ndarray:
        """``fallback`` (an action) as a finite float32 (A,) within the bounds, or a ValueError."""
        action = np.asarray(fallback, dtype=np.float32)
        if action.shape != (self.act_dim,) or not np.isfinite(action).all():
            raise ValueError(f"ControllerConfig.fallback gives {action.tolist()}; it must give a finite action of "
                             f"shape ({self.act_dim},)")  # fmt: skip
        return np.clip(action, self._action_low, self._action_high)

    def _bad_action(self, action: np.ndarray) -> np.ndarray:
        self.bad_action_count += 1
        fallback, obs = self.config.fallback, self._obs_np.copy()
        if fallback is None:
            raise FloatingPointError(f"the policy's action {action.tolist()} is not finite (its recurrent state "
                                     f"diverged) at observation {obs.tolist()}; call reset() and check the policy "
                                     "(cadence-eval), or set ControllerConfig.fallback to a safe action")  # fmt: skip
        self.reset()  # the diverged state would make every later action non-finite too
        self._last_action = self._fallback_action(fallback(obs) if callable(fallback) else fallback)
        return self._last_action

    def _bad_observation(self) -> np.ndarray:
        self.bad_obs_count += 1
        if self.config.on_bad_obs == "hold":
            return self._last_action
        bad = np.flatnonzero(~((self._obs_np >= self._obs_low) & (self._obs_np <= self._obs_high)))
        raise ValueError(
            f"observation entries {bad.tolist()} are NaN, inf or beyond obs_limit={self.config.obs_limit} "
            f"training std from the mean (values {self._obs_np[bad].tolist()}); fix the sensor pipeline, "
            "raise ControllerConfig.obs_limit, or use on_bad_obs='hold'"
        )
