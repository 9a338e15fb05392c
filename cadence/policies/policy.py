"""SequencePolicy: observation normalizer (+ camera encoder) → MLP encoder → temporal backbone → action head.

Symbols: B batch (environments), L time, O observation dim, A action dim, D model width; C, H, W the camera
frames' channels and pixels.

The backbone is chosen by name (``PolicyConfig.backbone``) and is the only part that differs
between compared policies; everything here treats it through the protocol of
:mod:`cadence.policies.backbones.base`.

Two ways to run a policy, computing the same function:

* ``forward(obs (B, L, O), state=None, resets=None) -> (mean (B, L, A), state)`` — training on
  windows or whole episodes; ``mean`` is the head output in normalized action units.

A policy built with an ``image_shape`` (C, H, W) also observes camera frames: every call takes
``images=`` uint8 (B, L, C, H, W) / (B, C, H, W) next to the state, encoded by
:class:`~cadence.policies.image_encoder.ImageEncoder` into ``PolicyConfig.image_features`` values that are
concatenated with the normalized state before the MLP encoder, so the backbone is unchanged. Its
``camera_keys`` name the cameras whose frames are stacked along C, in order (``observation.images.*``, saved with
the checkpoint), so that a rollout assembles the same input from the env's frames (:mod:`cadence.evaluation`).
* ``reset(batch_size)`` then ``act(obs (B, O)) -> action (B, A)`` — control: one observation in,
  one action out, the recurrent state carried inside; ``act`` returns environment units, clipped to
  the action bounds. ``step(obs, state)`` is the functional form for callers that hold the state.

Checkpoints (``save_pretrained`` / ``from_pretrained``) are a directory with ``config.json`` and
``model.safetensors`` (weights and the normalization statistics); loading never unpickles.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from gymnasium.spaces import Box
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from .backbones import REGISTRY, State, backbone_classes, make_backbone, make_backbone_config, reset_state
from .backbones.base import check_input
from .heads import HEADS, ActionHead
from .image_encoder import ImageEncoder
from .normalizer import Normalizer

CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"
FORMAT_VERSION = 1


class EpisodeFrames(Protocol):
    """Training data as ``PolicyConfig.fit_to_data`` reads it (``cadence.datasets.Demonstrations`` is one): the
    frames of all episodes back to back, episode e covering frames [ep_from[e], ep_to[e])."""

    observations: Tensor
    """(N, O) float."""
    actions: Tensor
    """(N, A) float."""
    ep_from: Tensor
    """(E,) int64."""
    ep_to: Tensor
    """(E,) int64."""


@dataclass
class PolicyConfig:
    """Everything that defines a policy's architecture (the dataset and env give the shapes)."""

    backbone: str = "linoss"
    """Temporal backbone: one of cadence.policies.backbones.REGISTRY."""
    d_model: int = 128
    """Width of encoder output, backbone and head input (overridden by ``param_budget``)."""
    param_budget: int | None = None
    """If set, ``d_model`` is chosen so that the whole policy has about this many parameters."""
    encoder_layers: int = 2
    """Linear layers in the observation encoder (GELU between them)."""
    head: str = "deterministic"
    """"deterministic" (MSE) or "gaussian" (learned state-independent log-std)."""
    log_std_init: float = -0.5
    """Initial log-std of the gaussian head."""
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    """Options of the backbone's own config (its dataclass documents them); d_model is set here."""
    image_features: int = 64
    """Features of the camera image encoder, concatenated with the state (used only with camera observations)."""
    image_shift: int = 4
    """Random-shift augmentation of camera frames in training mode: up to this many pixels; 0 disables it."""

    def __post_init__(self):
        if self.backbone not in REGISTRY:
            raise ValueError(f"backbone {self.backbone!r} is not one of {sorted(REGISTRY)}")
        if self.head not in HEADS:
            raise ValueError(f"head {self.head!r} is not one of {HEADS}")
        if "d_model" in self.backbone_kwargs:
            raise ValueError("set d_model on the policy (policy.d_model), not in policy.backbone_kwargs")
        if self.encoder_layers < 1:
            raise ValueError(f"encoder_layers must be >= 1, got {self.encoder_layers}")
        if self.image_features < 1 or self.image_shift < 0:
            raise ValueError(f"policy.image_features={self.image_features} must be >= 1 and policy.image_shift="
                             f"{self.image_shift} >= 0 (0 disables the augmentation)")  # fmt: skip
        budget = self.param_budget
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
            raise ValueError(f"policy.param_budget={self.param_budget!r} is not a number of parameters; set it to a "
                             "positive integer, or to null to size the policy by policy.d_model")  # fmt: skip
        self.backbone_kwargs = dict(self.backbone_kwargs)
        make_backbone_config(self.backbone, d_model=self.d_model, **self.backbone_kwargs)  # validate keys now

    def fit_to_data(self, data: EpisodeFrames, control_period: float) -> PolicyConfig:
        """This config prepared from the training data by the backbone, before the policy is built.

        A backbone config class with a ``fit_to_data(observations (N, O), actions (N, A), ep_from (E,), ep_to (E,),
        control_period) -> config`` method (numpy arrays; e.g. LinOSS's data init, which estimates the
        demonstrations' peak frequencies) gets ``data`` and the control period (seconds per frame).
        """
        arrays = (t.detach().cpu().numpy() for t in (data.observations, data.actions, data.ep_from, data.ep_to))
        return self._fit_backbone("fit_to_data", *arrays, control_period)

    def fit_to_task(self, control_period: float, memory_horizon: int | None) -> PolicyConfig:
        """This config prepared for the task by the backbone, before the policy is built: a backbone config class
        with a ``fit_to_task(control_period, memory_horizon) -> config`` method sees the control period (seconds
        per step) and the task's memory horizon (``env.unwrapped.memory_horizon``: the longest lag, in steps,
        between an observation and the action that needs it; None when the task declares none). LinOSS stretches
        its slowest decay to the horizon, the Transformer its context (their ``fit_to_task`` docstrings)."""
        return self._fit_backbone("fit_to_task", control_period, memory_horizon)

    def _fit_backbone(self, hook: str, *args) -> PolicyConfig:
        """The result of the backbone config's ``hook(*args)`` as a new PolicyConfig whose ``backbone_kwargs``
        are the returned config's fields; ``self`` when the backbone has no such hook or returns its config
        unchanged (so a checkpoint's config.json lists only what the user set). ``self`` is never modified."""
        backbone = make_backbone_config(self.backbone, d_model=self.d_model, **self.backbone_kwargs)
        fitted = getattr(backbone, hook)(*args) if hasattr(backbone, hook) else backbone
        if fitted is backbone:
            return self
        kwargs = {k: v for k, v in dataclasses.asdict(fitted).items() if k != "d_model"}
        return dataclasses.replace(self, backbone_kwargs=kwargs)


class SequencePolicy(nn.Module):
    """See the module docstring. Shapes: obs (B, L, O) / (B, O); actions (B, L, A) / (B, A); images (B, L, C, H, W)
    / (B, C, H, W) uint8 when built with ``image_shape`` (C, H, W), else None."""

    def __init__(self, cfg: PolicyConfig, obs_dim: int, act_dim: int, action_low, action_high,
                 control_period: float | None = None, image_shape: tuple[int, int, int] | None = None,
                 camera_keys: Sequence[str] = ()):  # fmt: skip
        super().__init__()
        self.cfg, self.obs_dim, self.act_dim, self.control_period = cfg, obs_dim, act_dim, control_period
        self.image_shape = None if image_shape is None else tuple(int(s) for s in image_shape)
        self.camera_keys = tuple(camera_keys)
        if self.camera_keys and self.image_shape is None:
            raise ValueError(f"camera_keys {list(self.camera_keys)} need the frames' image_shape (C, H, W)")
        low = np.asarray(action_low, dtype=np.float32).reshape(act_dim)
        high = np.asarray(action_high, dtype=np.float32).reshape(act_dim)
        if not (low < high).all():
            raise ValueError(f"action bounds need low < high in every dimension, got {low.tolist()} / {high.tolist()}")
        self.register_buffer("action_low", torch.tensor(low))
        self.register_buffer("action_high", torch.tensor(high))
        D = cfg.d_model
        self.obs_norm = Normalizer(obs_dim)
        self.action_norm = Normalizer(act_dim)
        self.image_encoder = (None if image_shape is None else
                              ImageEncoder(self.image_shape, cfg.image_features, cfg.image_shift))  # fmt: skip
        image_dim = 0 if image_shape is None else cfg.image_features
        layers: list[nn.Module] = [nn.Linear(obs_dim + image_dim, D)]
        for _ in range(cfg.encoder_layers - 1):
            layers += [nn.GELU(), nn.Linear(D, D)]
        self.encoder = nn.Sequential(*layers)
        self.backbone = make_backbone(cfg.backbone, control_period=control_period, d_model=D, **cfg.backbone_kwargs)
        self.head = ActionHead(D, act_dim, cfg.head, cfg.log_std_init)
        self._state: State | None = None

    def encode(self, obs: Tensor, images: Tensor | None = None, image_features: Tensor | None = None) -> Tensor:
        """obs (…, O) [+ images (…, C, H, W) uint8] -> the backbone's input (…, D): normalization, the image
        encoder's features concatenated, then the encoder. The one path from an observation to features, in
        training, rollouts, PPO and deployment alike. ``image_features`` (…, F): ``self.image_encoder(images)``,
        when the caller computed it already (BC's auxiliary loss reads it too), used in its place."""
        x = self.obs_norm(obs)
        if images is None and self.image_encoder is not None:
            raise ValueError(f"this policy observes camera frames (…, {self.image_shape}); pass images=uint8 "
                             "(B, L, C, H, W) / (B, C, H, W) next to the state")  # fmt: skip
        if images is not None and self.image_encoder is None:
            raise ValueError("this policy observes no camera (it was built without image_shape); call it without "
                             "images=, or train an image policy on a dataset with observation.images.* features")
        if images is not None:
            if images.shape[:-3] != obs.shape[:-1]:
                raise ValueError(f"images {tuple(images.shape)} and obs {tuple(obs.shape)} must share their leading "
                                 "(batch, time) dims: one frame per observation")  # fmt: skip
            x = torch.cat([x, self.image_encoder(images) if image_features is None else image_features], dim=-1)
        return self.encoder(x)

    # ---------------------------------------------------------------- sequence (training) mode
    def features(self, obs: Tensor, state: State | None = None, resets: Tensor | None = None,
                 images: Tensor | None = None, image_features: Tensor | None = None
                ) -> tuple[Tensor, State]:  # fmt: skip
        """obs (B, L, O) [+ images (B, L, C, H, W)] -> backbone features (B, L, D) and the final state
        (``image_features``: see :meth:`encode`)."""
        check_input("obs", obs, self.obs_dim, seq=True)
        return self.backbone(self.encode(obs, images, image_features), state, resets)

    def forward(self, obs: Tensor, state: State | None = None, resets: Tensor | None = None,
                images: Tensor | None = None, image_features: Tensor | None = None
               ) -> tuple[Tensor, State]:  # fmt: skip
        """obs (B, L, O) [+ images (B, L, C, H, W)] -> (normalized action mean (B, L, A), final state)
        (``image_features``: see :meth:`encode`)."""
        h, state = self.features(obs, state, resets, images, image_features)
        return self.head(h), state

    # ---------------------------------------------------------------- stepping (control) mode
    def to_env_action(self, mean: Tensor) -> Tensor:
        """Normalized head output (…, A) -> environment units, clipped to the bounds (the one place)."""
        return torch.clamp(self.action_norm.inverse(mean), self.action_low, self.action_high)

    def initial_state(self, batch_size: int) -> State:
        p = self.head.mean.weight
        return self.backbone.initial_state(batch_size, p.device, p.dtype)

    def step_features(self, obs: Tensor, state: State, images: Tensor | None = None) -> tuple[Tensor, State]:
        """obs (B, O) [+ images (B, C, H, W)], state -> (backbone features (B, D), new state): ``features`` over
        one step, through the backbone's stepping mode."""
        check_input("obs", obs, self.obs_dim, seq=False, check_finite=True)
        return self.backbone.step(self.encode(obs, images), state)

    def step_mean(self, obs: Tensor, state: State, images: Tensor | None = None) -> tuple[Tensor, State]:
        """obs (B, O) [+ images], state -> (normalized action mean (B, A), new state): ``step`` before
        ``to_env_action``."""
        h, state = self.step_features(obs, state, images)
        return self.head(h), state

    def step(self, obs: Tensor, state: State, images: Tensor | None = None) -> tuple[Tensor, State]:
        """obs (B, O) [+ images (B, C, H, W)], state -> (action (B, A) in environment units, new state)."""
        mean, state = self.step_mean(obs, state, images)
        return self.to_env_action(mean), state

    def reset(self, batch_size: int = 1) -> None:
        """Start new episodes in ``batch_size`` environments (zero recurrent state)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise ValueError(f"reset(batch_size={batch_size!r}): batch_size is the number of environments stepped "
                             "together; pass a positive integer, e.g. reset(1)")  # fmt: skip
        self._state = self.initial_state(int(batch_size))

    def reset_where(self, done: Tensor | np.ndarray) -> None:
        """Zero the state of the environments whose episode ended (done (B,) bool); keep the others."""
        if self._state is None:
            raise RuntimeError("call policy.reset(batch_size) before reset_where()")
        self._state = reset_state(self._state, torch.as_tensor(np.asarray(done), device=self.action_low.device))

    @torch.no_grad()
    def act(self, obs: Tensor | np.ndarray, images: Tensor | np.ndarray | None = None) -> Tensor:
        """obs (B, O) [+ images (B, C, H, W) uint8] -> action (B, A), advancing the internal state by one step."""
        if self._state is None:
            raise RuntimeError("call policy.reset(batch_size) before act(): the recurrent state is not initialized")
        obs = torch.as_tensor(obs, dtype=torch.float32, device=self.action_low.device)
        batch = self._state[0].shape[0] if self._state else None
        if obs.dim() == 2 and batch is not None and obs.shape[0] != batch:
            raise ValueError(f"obs has batch {obs.shape[0]} but reset() was called with batch_size={batch}")
        if images is not None:
            images = torch.as_tensor(images, device=self.action_low.device)
        action, self._state = self.step(obs, self._state, images)
        return action

    # ---------------------------------------------------------------- checkpoints
    def checkpoint_config(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "policy": dataclasses.asdict(self.cfg),
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "action_low": self.action_low.tolist(),
            "action_high": self.action_high.tolist(),
            "control_period": self.control_period,
            "image_shape": self.image_shape,
            "camera_keys": list(self.camera_keys),
        }

    def save_pretrained(self, directory: str | os.PathLike, extra: dict | None = None,
                        extra_files: dict[str, bytes] | None = None) -> Path:  # fmt: skip
        """Write ``config.json`` + ``model.safetensors`` (+ ``extra_files``) into ``directory`` atomically:
        a reader sees the old checkpoint or the new one, never a mix."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            config = self.checkpoint_config() | {"extra": extra or {}}
            (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2, default=_jsonable))
            tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
            save_file(tensors, tmp / WEIGHTS_NAME)
            for name, data in (extra_files or {}).items():
                (tmp / name).write_bytes(data)
            if directory.exists():
                old = directory.with_name(f".{directory.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                directory.rename(old)
                tmp.rename(directory)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(directory)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, cfg: PolicyConfig | None = None,
                        map_location: str | torch.device = "cpu") -> "SequencePolicy":  # fmt: skip
        """Load a checkpoint; ``cfg`` (optional) must describe the same architecture."""
        directory = Path(directory)
        config = read_checkpoint_config(directory)
        saved = PolicyConfig(**config["policy"])
        if cfg is not None and (cfg.backbone != saved.backbone):
            raise ValueError(
                f"checkpoint {directory} holds a '{saved.backbone}' policy but the config asks for "
                f"'{cfg.backbone}'; use policy={saved.backbone} or train a new checkpoint"
            )
        policy = cls(saved, config["obs_dim"], config["act_dim"], config["action_low"], config["action_high"],
                     config["control_period"], config.get("image_shape"), config.get("camera_keys", ()))  # fmt: skip
        try:
            tensors = load_file(directory / WEIGHTS_NAME, device=str(map_location))
        except (SafetensorError, OSError) as e:
            raise ValueError(f"checkpoint weights {directory / WEIGHTS_NAME} are missing or corrupt ({e}); "
                             "re-save the checkpoint or load another one (e.g. the run's last/ instead of best/)") from e  # fmt: skip
        check_finite(tensors, f"checkpoint weights {directory / WEIGHTS_NAME}")
        missing, unexpected = policy.load_state_dict(tensors, strict=False)
        if missing or unexpected:
            raise ValueError(f"checkpoint {directory} does not match its config.json: missing {missing}, "
                             f"unexpected {unexpected}")  # fmt: skip
        return policy.to(map_location)


def read_checkpoint_config(directory: Path) -> dict:
    """``config.json`` of a checkpoint directory, with errors that say what to do."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        inside = [c for c in (Path(directory) / "checkpoints" / "best", Path(directory) / "best") if c.is_dir()]
        fix = (f"{directory} is a run directory: pass its checkpoint, {inside[0]} (or the last/ beside it)" if inside
               else "pass the directory written by save_pretrained, e.g. RUN_DIR/checkpoints/best")  # fmt: skip
        raise FileNotFoundError(f"no policy checkpoint at {directory} (missing {CONFIG_NAME}); {fix}")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); the checkpoint is corrupt — re-save it") from e
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has format_version {config.get('format_version')}, this Cadence reads {FORMAT_VERSION}")
    return config


def check_finite(tensors: dict[str, Tensor], what: str) -> None:
    """Refuse weights (a state dict) that hold a NaN or an inf, naming the tensors: a policy with them emits
    non-finite actions (a diverged training run, or a corrupt file)."""
    bad = [k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise ValueError(f"{what} hold NaN or inf in {len(bad)} tensor(s) ({', '.join(bad[:3])}"
                         f"{', ...' if len(bad) > 3 else ''}): the training diverged or the file is corrupt; "
                         "load an earlier checkpoint (e.g. RUN_DIR/checkpoints/best) or retrain with a lower "
                         "algo.lr")  # fmt: skip


def _jsonable(o):
    if isinstance(o, (np.generic,)):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


# -------------------------------------------------------------------- construction helpers
def count_params(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def size_to_budget(cfg: PolicyConfig, obs_dim: int, act_dim: int, budget: int, control_period: float | None = None,
                   step: int = 8, image_shape: tuple[int, int, int] | None = None) -> PolicyConfig:  # fmt: skip
    """Return ``cfg`` with the ``d_model`` (a multiple of ``step``) whose policy is closest to ``budget`` parameters."""

    def count(d: int) -> int:
        trial = dataclasses.replace(cfg, d_model=d, param_budget=None)
        with torch.device("meta"):
            return count_params(SequencePolicy(trial, obs_dim, act_dim, [-1.0] * act_dim, [1.0] * act_dim,
                                               control_period or 0.02, image_shape))  # fmt: skip

    smallest = count(step)
    if budget < smallest:
        raise ValueError(f"policy.param_budget={budget:,} is below the smallest policy this config builds: "
                         f"{smallest:,} parameters at d_model={step} ({cfg.backbone}, encoder_layers="
                         f"{cfg.encoder_layers}, {obs_dim}-dim observations, {act_dim}-dim actions); set "
                         f"policy.param_budget to at least {smallest}, or shrink the backbone "
                         "(policy.backbone_kwargs)")  # fmt: skip
    lo, hi = step, step
    while count(hi) < budget:  # parameter count grows with width: bracket, then bisect
        lo, hi = hi, hi * 2
        if hi > 8192:
            raise ValueError(f"cannot reach {budget} parameters with backbone {cfg.backbone!r} below d_model=8192")
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        lo, hi = (mid, hi) if count(mid) < budget else (lo, mid)
    best = min((lo, hi), key=lambda d: abs(count(d) - budget))
    return dataclasses.replace(cfg, d_model=best, param_budget=None)


def make_policy(cfg: PolicyConfig | dict, obs_space, action_space, control_period: float | None = None,
                image_shape: tuple[int, int, int] | None = None, camera_keys: Sequence[str] = ()
                ) -> SequencePolicy:  # fmt: skip
    """Build a policy for Gymnasium Box spaces (the state; ``image_shape`` (C, H, W): the frames of cameras
    ``camera_keys`` too); ``cfg.param_budget`` sizes ``d_model`` first."""
    if not isinstance(cfg, PolicyConfig):
        cfg = PolicyConfig(**cfg)
    for kind, space in (("observation", obs_space), ("action", action_space)):
        if not isinstance(space, Box):
            raise ValueError(f"make_policy takes Box (continuous vector) spaces; the {kind} space is {space}: "
                             "wrap the env to give Box observations and actions (a policy outputs continuous "
                             "actions)")  # fmt: skip
    obs_dim, act_dim = int(np.prod(obs_space.shape)), int(np.prod(action_space.shape))
    if cfg.param_budget is not None:
        cfg = size_to_budget(cfg, obs_dim, act_dim, cfg.param_budget, control_period, image_shape=image_shape)
    return SequencePolicy(cfg, obs_dim, act_dim, action_space.low, action_space.high, control_period, image_shape,
                          camera_keys)


__all__ = ["PolicyConfig", "SequencePolicy", "make_policy", "count_params", "size_to_budget", "backbone_classes"]
