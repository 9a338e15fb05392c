"""LeRobot policy ``linoss``: a Cadence :class:`~cadence.policies.SequencePolicy` behind LeRobot's
:class:`~lerobot.policies.pretrained.PreTrainedPolicy` contract.

Symbols: B batch, L = burn_in + window steps, O observation dim, A action dim.

* ``forward(batch)``: training on windows ``observation.state`` (B, L, O) → ``action`` (B, L, A), both
  normalized by the preprocessor; MSE over the last ``window`` steps that are not ``action_is_pad``.
* ``select_action(batch)``: ``observation.state`` (B, O) → normalized action (B, A) for the
  postprocessor, one step of the backbone; the recurrent state is carried between calls and cleared by
  ``reset()`` (lerobot-eval calls it at the start of every rollout).
* Cameras: the dataset's ``observation.images.*`` features (B, L, C, H, W) / (B, C, H, W) in [0, 1] are quantized
  back to uint8 and stacked along C in the order of their names (``camera_keys``), the input of the Cadence
  policy's camera encoder.

The network is ``self.model``, the same module Cadence trains and deploys; its own normalizers stay at
identity because LeRobot's processors hold the dataset statistics.
"""

from __future__ import annotations

import math

import torch
from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.utils.constants import ACTION, OBS_STATE
from torch import Tensor

from ..policies import SequencePolicy, size_to_budget
from ..policies.backbones import State
from ..training.optim import param_groups
from .configuration_linoss import CadenceLinOSSConfig


def pad_resets(is_pad: Tensor) -> Tensor:
    """is_pad (B, L) bool -> resets (B, L): True at the first real step after leading padding.

    LeRobot pads a window that starts before its episode with copies of the first frame; the state must
    restart where the episode does, as after ``reset()`` at deployment. Trailing padding (past the
    episode's end) needs no reset: it is masked out of the loss.
    """
    resets = torch.zeros_like(is_pad)
    resets[:, 1:] = is_pad[:, :-1] & ~is_pad[:, 1:]
    return resets


def as_window(x: Tensor, dim: int, key: str) -> Tensor:
    """LeRobot's window of feature ``key`` as (B, L, dim): a feature of shape (1,) comes as (B, L)."""
    if x.dim() == 2 and dim == 1:
        x = x[..., None]
    if x.dim() != 3 or x.shape[-1] != dim:
        raise ValueError(f"linoss trains on windows: {key} must be (B, L, {dim}), got {tuple(x.shape)}; the dataset "
                         "needs the policy's delta timestamps (lerobot-train sets them)")  # fmt: skip
    return x


class CadenceLinOSSPolicy(PreTrainedPolicy):
    """See the module docstring."""

    config_class = CadenceLinOSSConfig
    name = "linoss"

    def __init__(self, config: CadenceLinOSSConfig, dataset_stats=None, dataset_meta=None, **kwargs):
        """``dataset_meta`` (given by ``make_policy`` when training) supplies the control period."""
        super().__init__(config)
        config.validate_features()
        cameras = {k: tuple(f.shape) for k, f in sorted(config.image_features.items())}
        # the policy reads observation.state and the cameras only: other inputs (the full state
        # observation.environment_state of cadence datasets, which a deployed policy does not see) stay out of the
        # normalizer and eval
        config.input_features = {OBS_STATE: config.robot_state_feature, **config.image_features}
        self.camera_keys, image_shape = list(cameras), None
        if cameras:
            if len({shape[1:] for shape in cameras.values()}) > 1:
                raise ValueError(f"policy type linoss stacks its cameras' frames, which need one size; the dataset's "
                                 f"are {cameras} (C, H, W): re-encode its videos at one size, or train with "
                                 "cadence-train, whose algo.image_size=[H,W] resizes them when decoding")  # fmt: skip
            image_shape = (sum(shape[0] for shape in cameras.values()), *next(iter(cameras.values()))[1:])
        if config.control_period is None and dataset_meta is not None:
            config.control_period = 1.0 / dataset_meta.fps
        if config.control_period is None and config.backbone == "linoss":
            raise ValueError("the LinOSS init needs the control period: train on a dataset (make_policy(cfg, "
                             "ds_meta=...)) or set --policy.control_period=SECONDS (1/fps)")  # fmt: skip
        obs_dim, act_dim = config.robot_state_feature.shape[0], config.action_feature.shape[0]
        cfg = config.policy_config()
        if cfg.param_budget:
            cfg = size_to_budget(cfg, obs_dim, act_dim, cfg.param_budget, config.control_period,
                                 image_shape=image_shape)  # fmt: skip
            config.d_model, config.param_budget = cfg.d_model, None  # the checkpoint records the size chosen
        # unbounded: the env (CadenceEnvConfig wraps ClipAction) clips, the postprocessor unnormalizes
        self.model = SequencePolicy(cfg, obs_dim, act_dim, [-math.inf] * act_dim, [math.inf] * act_dim,
                                    config.control_period, image_shape, self.camera_keys)  # fmt: skip
        self._state: State | None = None

    def images(self, batch: dict[str, Tensor]) -> Tensor | None:
        """The cameras' frames of ``batch`` (…, C_k, H, W) in [0, 1] as the encoder's uint8 (…, C, H, W) input,
        stacked in ``camera_keys`` order; None without cameras."""
        if not self.camera_keys:
            return None
        frames = torch.cat([batch[k] for k in self.camera_keys], dim=-3)
        return (frames * 255).round().clamp(0, 255).to(torch.uint8)

    def get_optim_params(self) -> list[dict]:
        return param_groups(self.model, self.config.weight_decay)

    def reset(self) -> None:
        """Start new episodes: the next ``select_action`` begins from the zero state."""
        self._state = None

    def forward(self, batch: dict[str, Tensor], reduction: str = "mean") -> tuple[Tensor, dict]:
        """Masked MSE of a batch of windows, in normalized action units.

        batch: ``observation.state`` (B, L, O), ``action`` (B, L, A) (or (B, L) when A = 1, as LeRobot
        windows a (1,) feature), ``action_is_pad`` (B, L) bool.
        Returns the loss (scalar; (B,) with ``reduction="none"``) and ``{"mse": float, "valid_steps": int}``.
        """
        obs = as_window(batch[OBS_STATE], self.model.obs_dim, OBS_STATE)  # (B, L, O)
        actions = as_window(batch[ACTION], self.model.act_dim, ACTION)  # (B, L, A)
        is_pad = batch[f"{ACTION}_is_pad"]  # (B, L)
        mean, _ = self.model(obs, None, pad_resets(is_pad), self.images(batch))  # (B, L, A)
        valid = ~is_pad
        valid[:, : self.config.burn_in] = False  # burn-in steps only warm up the state
        valid = valid.to(mean.dtype)
        per_step = ((mean - actions) ** 2).mean(-1)  # (B, L)
        per_sample = (per_step * valid).sum(1) / valid.sum(1).clamp_min(1)  # (B,)
        loss = (per_step * valid).sum() / valid.sum().clamp_min(1)  # mean over all valid steps of the batch
        info = {"mse": loss.item(), "valid_steps": int(valid.sum().item())}
        return (per_sample if reduction == "none" else loss), info

    @torch.no_grad()
    def predict_action_chunk(self, batch: dict[str, Tensor], **kwargs) -> Tensor:
        """The action of every step of an observation sequence (B, L, O) or (B, O), from the zero state:
        (B, L, A) normalized. The state carried by ``select_action`` is neither used nor changed."""
        obs, images = batch[OBS_STATE], self.images(batch)
        if obs.dim() == 2:
            obs, images = obs[:, None], None if images is None else images[:, None]
        mean, _ = self.model(obs, None, None, images)
        return mean

    @torch.no_grad()
    def select_action(self, batch: dict[str, Tensor], **kwargs) -> Tensor:
        """observation.state (B, O) normalized -> action (B, A) normalized; advances the recurrent state."""
        obs = batch[OBS_STATE]
        if self._state is None:
            self._state = self.model.initial_state(obs.shape[0])
        elif self._state[0].shape[0] != obs.shape[0]:
            raise ValueError(f"select_action got a batch of {obs.shape[0]} after {self._state[0].shape[0]}; "
                             "call policy.reset() when the number of environments changes")  # fmt: skip
        action, self._state = self.model.step_mean(obs, self._state, self.images(batch))
        return action
