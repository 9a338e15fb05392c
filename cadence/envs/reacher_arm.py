"""Reacher from pixels: Reacher-v5 observing its arm only, so that the target is seen by a camera or not at all.

``Cadence/Reacher-Arm-v5`` keeps cos q and sin q of the two joints (:data:`ARM`) of Reacher-v5's
observation and drops the rest (the target's position, the fingertip's offset from it, the velocities); the full observation stays in
``info["full_state"]`` for the expert. With the top camera of ``cadence/configs/env/reacher_pixels.yaml`` the
target is visible in the frames only: a state-only policy cannot know where to reach, an image policy can
(docs/tasks.md, "Reacher from pixels").

Success: the fingertip within :data:`SUCCESS_RADIUS` of the target at the episode's last step. The scripted
expert (``reacher``) succeeds in 99 of 100 episodes; holding still (the normalized score's floor,
``cadence.envs.FLOORS``: the best target-blind policy by return that we found) in none.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator

from .partial import FullStateInfo, MaskObservation

ARM = np.array([0, 1, 2, 3])
"""Reacher-v5's observation without the target and without velocities: cos q (0:2) and sin q (2:4) of the two
joints; it drops the target's position (4:6), q̇ (6:8) and the fingertip's offset from the target (8:10). With q̇
in the state, BC learns to continue the arm's motion (which reveals the expert's target: the copycat problem)
instead of reading the camera, and fails from rest: a state-only and an image MLP both reached 0 % success."""
SUCCESS_RADIUS = 0.02
"""Metres between fingertip and target for success (the expert ends at < 1 mm in 99 % of episodes)."""


class ReachSuccess(gym.Wrapper):
    """Adds ``info["is_success"]``: the fingertip within :data:`SUCCESS_RADIUS` of the target (Reacher-v5's
    ``reward_dist`` is minus that distance)."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, info | {"is_success": bool(-info["reward_dist"] < SUCCESS_RADIUS)}


def make_reacher_arm(target_size: float | None = None, **kwargs) -> gym.Env:
    """Entry point of ``Cadence/Reacher-Arm-v5``: Reacher-v5 (``kwargs`` passed on) observing :data:`ARM`, its
    full observation in ``info``, with success. ``target_size``: the radius (m) the target is drawn with (None:
    Reacher's 0.009); the target geom has no contact, so this changes the camera's frames and nothing else."""
    spec = gym.spec("Reacher-v5")
    env = load_env_creator(spec.entry_point)(**(spec.kwargs | kwargs))
    if target_size is not None:
        if not target_size > 0:
            raise ValueError(f"target_size={target_size} must be a positive radius in metres (Reacher's: 0.009)")
        model = env.unwrapped.model
        model.geom_size[model.geom("target").id, 0] = target_size
    return MaskObservation(ReachSuccess(FullStateInfo(env)), ARM)
