"""Pre/post processors of policy ``linoss``: LeRobot's default pipelines.

Pre: rename (none) → add a batch axis → device → standardize ``observation.state`` and ``action`` with the
dataset's mean/std (``normalization_mapping``). Post: unnormalize the action → CPU. The statistics are
saved with the checkpoint (``policy_preprocessor*.json/.safetensors``), never inside the network.
"""

from __future__ import annotations

from typing import Any

import torch
from lerobot.processor import PolicyAction, PolicyProcessorPipeline, make_default_pre_post_processors

from .configuration_linoss import CadenceLinOSSConfig


def make_linoss_pre_post_processors(
    config: CadenceLinOSSConfig, dataset_stats: dict[str, dict[str, torch.Tensor]] | None = None
) -> tuple[PolicyProcessorPipeline[dict[str, Any], dict[str, Any]], PolicyProcessorPipeline[PolicyAction, PolicyAction]]:
    """(preprocessor, postprocessor) for ``config`` with ``dataset_stats[key][stat]`` (stat: mean, std, …)."""
    return make_default_pre_post_processors(config, dataset_stats)
