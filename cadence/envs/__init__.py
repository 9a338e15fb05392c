"""Cadence tasks: partially observed MuJoCo v5 variants, the memory tasks (cue → delay → reach, delayed
command tracking), robustness stressors, scripted experts and floor policies, and env construction from
``cadence/configs/env/*.yaml``.

Importing this package registers the ``Cadence/...`` Gymnasium ids (``TASK_IDS``).
"""

from .camera import IMAGES_PREFIX, CameraConfig, CameraFrames
from .experts import EXPERTS, FLOORS, Expert, make_expert, make_floor, reset_expert
from .factory import EnvConfig, control_period, env_config_names, make_env, make_vector_env
from .partial import observation_indices, position_velocity_indices
from .registration import register_tasks
from .robustness import (ActionDelay, ObservationDelay, ObservationDropout, ObservationNoise, RobustnessConfig,
                         apply_robustness)  # fmt: skip

TASK_IDS = register_tasks()

__all__ = ["EXPERTS", "FLOORS", "IMAGES_PREFIX", "TASK_IDS", "ActionDelay", "CameraConfig", "CameraFrames", "EnvConfig", "Expert", "ObservationDelay",
           "ObservationDropout", "ObservationNoise", "RobustnessConfig", "apply_robustness", "control_period",
           "env_config_names", "make_env", "make_expert", "make_floor", "make_vector_env", "observation_indices",
           "position_velocity_indices", "reset_expert"]  # fmt: skip
