"""A Cadence checkpoint (``SequencePolicy.save_pretrained``) in LeRobot's ``save_pretrained`` layout.

The result is what ``lerobot-train`` writes into ``checkpoints/<step>/pretrained_model``: ``config.json``
(``"type": "linoss"``), ``model.safetensors`` and the pre/post processors with their statistics, so
``lerobot-eval --policy.path=OUT`` and LeRobot's ``make_policy`` load it.

The weights are copied unchanged. The normalization statistics move from the network (Cadence keeps
them as buffers) to LeRobot's processors; the network's own normalizers become identity. Action bounds
are not part of the LeRobot form: ``--env.type=cadence`` clips to the task's action space.

Command line: ``python -m cadence.lerobot.export CHECKPOINT OUT [--device cpu]``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lerobot.configs import FeatureType, PolicyFeature
from lerobot.utils.constants import ACTION, OBS_STATE

from ..policies import SequencePolicy
from .configuration_linoss import CadenceLinOSSConfig
from .modeling_linoss import CadenceLinOSSPolicy
from .processor_linoss import make_linoss_pre_post_processors

NOT_COPIED = ("obs_norm.", "action_norm.", "action_low", "action_high")
"""State-dict entries that the processors (statistics) or the env (bounds) take over."""


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike, device: str = "cpu") -> Path:
    """Writes the Cadence checkpoint directory ``checkpoint`` to ``out`` in LeRobot's layout; returns ``out``."""
    source = SequencePolicy.from_pretrained(checkpoint)
    c = source.cfg
    config = CadenceLinOSSConfig(
        backbone=c.backbone, backbone_kwargs=c.backbone_kwargs, d_model=c.d_model, encoder_layers=c.encoder_layers,
        head=c.head, log_std_init=c.log_std_init, control_period=source.control_period, device=device,
        input_features={OBS_STATE: PolicyFeature(type=FeatureType.STATE, shape=(source.obs_dim,))},
        output_features={ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(source.act_dim,))},
    )  # fmt: skip
    policy = CadenceLinOSSPolicy(config)
    weights = {k: v for k, v in source.state_dict().items() if not k.startswith(NOT_COPIED)}
    missing, unexpected = policy.model.load_state_dict(weights, strict=False)
    if unexpected or any(not k.startswith(NOT_COPIED) for k in missing):
        raise ValueError(f"{checkpoint} does not fit the LeRobot policy built from its config: missing {missing}, "
                         f"unexpected {unexpected}")  # fmt: skip
    stats = {OBS_STATE: {"mean": source.obs_norm.mean, "std": source.obs_norm.std},
             ACTION: {"mean": source.action_norm.mean, "std": source.action_norm.std}}  # fmt: skip
    preprocessor, postprocessor = make_linoss_pre_post_processors(config, stats)
    out = Path(out)
    policy.save_pretrained(out)
    preprocessor.save_pretrained(out)
    postprocessor.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="Cadence checkpoint directory, e.g. RUN_DIR/checkpoints/best")
    parser.add_argument("out", help="output directory (LeRobot pretrained_model layout)")
    parser.add_argument("--device", default="cpu", help="device recorded in config.json (default: cpu)")
    args = parser.parse_args(argv)
    print(export_checkpoint(args.checkpoint, args.out, args.device))


if __name__ == "__main__":
    main()
