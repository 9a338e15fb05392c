"""LeRobot policy config of type ``linoss``: a Cadence :class:`~cadence.policies.SequencePolicy` (LinOSS by
default, any Cadence backbone through ``backbone``) trained by ``lerobot-train`` on sequence windows.

Symbols: L = ``burn_in + window`` frames per training sample, O observation dim, A action dim.

Each training sample is the window of frame offsets ``range(-burn_in, window)`` around an anchor frame,
for ``observation.*`` and ``action`` alike (LeRobot turns the offsets into seconds with the dataset's
fps). The first ``burn_in`` steps only warm up the recurrent state; the loss covers the last ``window``.
Offsets before the episode's first frame are padding (``*_is_pad``): the state restarts at the first real
frame, as it does at deployment after ``reset()``.

Normalization lives in the processors (``processor_linoss.py``), not in the network: observation.state
and action are standardized with the dataset's mean and std; camera features (``observation.images.*``, LeRobot's
VISUAL features, frames in [0, 1]) pass unchanged and reach the policy's camera encoder as uint8, stacked along
the channels in the order of their names.

Every default is Cadence's own, read from its dataclasses: the architecture from
:class:`~cadence.policies.PolicyConfig` and the backbone's config dataclass, the optimizer and ``window``
from :class:`~cadence.training.bc.BCConfig`, under the same names (``lr``, ``weight_decay``, ``grad_clip``,
``warmup_steps``), so ``--policy.type=linoss`` trains the policy that ``cadence-train`` does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from lerobot.configs import NormalizationMode, PreTrainedConfig
from lerobot.optim import AdamWConfig
from lerobot.optim.schedulers import CosineAnnealingWithWarmupSchedulerConfig
from lerobot.utils.constants import ACTION, OBS_STATE

from ..policies import PolicyConfig
from ..policies.backbones import backbone_classes
from ..training.bc import BCConfig


def default_backbone_kwargs(backbone: str) -> dict[str, Any]:
    """Every option of ``backbone``'s config dataclass at its default, less ``d_model`` (the policy's own)."""
    cfg_cls, _ = backbone_classes(backbone)
    return {k: v for k, v in asdict(cfg_cls()).items() if k != "d_model"}


@PreTrainedConfig.register_subclass("linoss")
@dataclass
class CadenceLinOSSConfig(PreTrainedConfig):
    """Config of :class:`~cadence.lerobot.modeling_linoss.CadenceLinOSSPolicy` (``--policy.type=linoss``).

    Args:
        backbone: Temporal backbone, one of ``cadence.policies.backbones.REGISTRY`` (linoss, transformer,
            mamba, gru, mlp).
        backbone_kwargs: Options of the backbone's own config; None takes all of them at the defaults of its
            dataclass (:func:`default_backbone_kwargs`; for linoss: D-LinOSS, 2 layers, 64 oscillators, CPG init).
        d_model: Width of encoder, backbone and head (overridden by ``param_budget``).
        param_budget: If set, ``d_model`` is chosen so that the policy has about this many parameters.
        encoder_layers: Linear layers of the observation encoder.
        head: "deterministic" or "gaussian"; the action is the head's mean either way and training
            uses MSE (a gaussian head lets PPO checkpoints be exported).
        log_std_init: Initial log-std of the gaussian head.
        image_encoder_features, image_shift: the camera encoder's output width and random-shift augmentation
            (``PolicyConfig.image_features`` / ``image_shift``; the first is renamed here because LeRobot's
            ``image_features`` names the dataset's camera features). Used when the dataset has cameras.
        control_period: Seconds per control step, used by the LinOSS CPG init; None takes 1/fps of the
            training dataset.
        window: Steps per training sample that carry loss.
        burn_in: Steps before them that only warm up the recurrent state.
        drop_n_last_frames: Anchors dropped at each episode's end by lerobot-train's sampler.
        lr, weight_decay, grad_clip, warmup_steps: AdamW (peak learning rate, weight decay, max global
            gradient norm) with linear warm-up then cosine decay over the run; weight decay applies to matrices
            only (biases, norms and oscillator parameters are not decayed, see ``get_optim_params``).
    """

    # Architecture: cadence.policies.PolicyConfig's fields and defaults
    backbone: str = PolicyConfig.backbone
    backbone_kwargs: dict[str, Any] | None = None
    d_model: int = PolicyConfig.d_model
    param_budget: int | None = PolicyConfig.param_budget
    encoder_layers: int = PolicyConfig.encoder_layers
    head: str = PolicyConfig.head
    log_std_init: float = PolicyConfig.log_std_init
    image_encoder_features: int = PolicyConfig.image_features
    image_shift: int = PolicyConfig.image_shift
    control_period: float | None = None

    # Training windows
    window: int = BCConfig.window
    burn_in: int = 16
    drop_n_last_frames: int = 0

    normalization_mapping: dict[str, NormalizationMode] = field(
        default_factory=lambda: {
            "VISUAL": NormalizationMode.IDENTITY,
            "STATE": NormalizationMode.MEAN_STD,
            "ENV": NormalizationMode.MEAN_STD,
            "ACTION": NormalizationMode.MEAN_STD,
        }
    )

    # Optimizer preset: cadence.training.bc.BCConfig's names and defaults
    lr: float = BCConfig.lr
    weight_decay: float = BCConfig.weight_decay
    grad_clip: float = BCConfig.grad_clip
    warmup_steps: int = BCConfig.warmup_steps

    push_to_hub: bool = False  # the base default (True) makes lerobot-train demand a Hub repo_id

    def __post_init__(self):
        super().__post_init__()
        if self.window < 1 or self.burn_in < 0:
            raise ValueError(f"window must be >= 1 and burn_in >= 0, got window={self.window} burn_in={self.burn_in}")
        if self.backbone_kwargs is None:
            self.backbone_kwargs = default_backbone_kwargs(self.backbone)
        self.policy_config()  # validates backbone, head and backbone_kwargs now, not at the first batch

    def policy_config(self) -> PolicyConfig:
        """The Cadence policy config this LeRobot config describes."""
        return PolicyConfig(backbone=self.backbone, d_model=self.d_model, param_budget=self.param_budget,
                            encoder_layers=self.encoder_layers, head=self.head, log_std_init=self.log_std_init,
                            image_features=self.image_encoder_features, image_shift=self.image_shift,
                            backbone_kwargs=dict(self.backbone_kwargs))  # fmt: skip

    @property
    def observation_delta_indices(self) -> list[int]:
        return list(range(-self.burn_in, self.window))

    @property
    def action_delta_indices(self) -> list[int]:
        return list(range(-self.burn_in, self.window))

    @property
    def reward_delta_indices(self) -> None:
        return None

    def get_optimizer_preset(self) -> AdamWConfig:
        return AdamWConfig(lr=self.lr, weight_decay=self.weight_decay, grad_clip_norm=self.grad_clip)

    def get_scheduler_preset(self) -> CosineAnnealingWithWarmupSchedulerConfig:
        return CosineAnnealingWithWarmupSchedulerConfig(num_warmup_steps=self.warmup_steps)

    def validate_features(self) -> None:
        if self.robot_state_feature is None or self.action_feature is None:
            raise ValueError(
                f"policy type linoss reads {OBS_STATE!r} and predicts {ACTION!r}, but the features are "
                f"inputs {sorted(self.input_features or {})}, outputs {sorted(self.output_features or {})}; "
                f"train on a dataset with both (cadence-collect writes them) or rename with --rename_map"
            )
        for name, feature in (("observation.state", self.robot_state_feature), ("action", self.action_feature)):
            if len(feature.shape) != 1:
                raise ValueError(f"policy type linoss needs a vector {name}, got shape {tuple(feature.shape)}")
