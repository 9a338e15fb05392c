"""Cadence tasks: partially observed MuJoCo v5 variants, the memory reacher, robustness stressors,
scripted experts, and env construction from ``cadence/configs/env/*.yaml``.

Importing this package registers the ``Cadence/...`` Gymnasium ids (``TASK_IDS``).
"""

from .experts import EXPERTS, Expert, make_expert, reset_expert
from .factory import EnvConfig, env_config_names, make_env, make_vector_env
from .partial import observation_indices, position_velocity_indices
from .registration import register_tasks
from .robustness import (ActionDelay, ObservationDelay, ObservationDropout, ObservationNoise, RobustnessConfig,
                         apply_robustness)  # fmt: skip

TASK_IDS = register_tasks()

__all__ = ["EXPERTS", "TASK_IDS", "ActionDelay", "EnvConfig", "Expert", "ObservationDelay", "ObservationDropout",
           "ObservationNoise", "RobustnessConfig", "apply_robustness", "env_config_names", "make_env", "make_expert",
           "make_vector_env", "observation_indices", "position_velocity_indices", "reset_expert"]  # fmt: skip
