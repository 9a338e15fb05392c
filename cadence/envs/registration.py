"""The Gymnasium ids of the Cadence task suite (namespace ``Cadence``), registered on ``import cadence.envs``."""

from __future__ import annotations

import gymnasium as gym

from .partial import PARTS

PARTIAL_BASES = ("HalfCheetah", "Hopper", "Walker2d", "Ant", "InvertedPendulum", "Swimmer")
"""MuJoCo v5 tasks with ``-P`` (positions only) and ``-V`` (velocities only) variants."""

REACHER_ARM_ID = "Cadence/Reacher-Arm-v5"
"""Reacher observing its arm only: the target is seen by a camera (``reacher_pixels``) or not at all."""

MEMORY_TASKS = {"Cadence/CueDelayReacher-v0": "cadence.envs.cue_delay:make_cue_delay",
                "Cadence/DelayedTracking-v0": "cadence.envs.delayed_tracking:DelayedTrackingEnv"}
"""Tasks graded by a memory horizon (docs/tasks.md): id -> entry point."""


def partial_ids() -> list[str]:
    return [f"Cadence/{base}-{part}-v5" for base in PARTIAL_BASES for part in PARTS]


def register_tasks() -> list[str]:
    """Registers every Cadence id (idempotent) and returns them."""
    for base in PARTIAL_BASES:
        base_spec = gym.spec(f"{base}-v5")
        for part in PARTS:
            gym.register(id=f"Cadence/{base}-{part}-v5", entry_point="cadence.envs.partial:make_partial",
                         kwargs={"base_id": f"{base}-v5", "part": part},
                         max_episode_steps=base_spec.max_episode_steps,
                         reward_threshold=base_spec.reward_threshold)  # fmt: skip
    reacher = gym.spec("Reacher-v5")
    gym.register(id=REACHER_ARM_ID, entry_point="cadence.envs.reacher_arm:make_reacher_arm",
                 max_episode_steps=reacher.max_episode_steps, reward_threshold=reacher.reward_threshold)  # fmt: skip
    # the memory tasks truncate themselves at their horizon, which depends on their kwargs
    for env_id, entry_point in MEMORY_TASKS.items():
        gym.register(id=env_id, entry_point=entry_point)
    return [*partial_ids(), REACHER_ARM_ID, *MEMORY_TASKS]
