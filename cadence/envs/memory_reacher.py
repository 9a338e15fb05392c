"""Memory reacher: Reacher-v5 whose target is shown only at the start, with a long delay before the reach.

Timeline of an episode (control period 0.02 s, as Reacher-v5):

* cue, steps ``[0, cue_steps)``: the observation is Reacher-v5's (10,) — cos/sin of the two joint angles,
  target position, joint velocities, fingertip − target (x, y);
* delay, steps ``[cue_steps, go_step)``: the target dims (4:6) and the fingertip − target dims (8:10)
  read zero; the arm is braked (the simulation is not stepped, actions have no effect), so neither the
  arm's posture nor its motion can carry the target through the delay — only the policy's memory can;
* reach, steps ``[go_step, horizon)``: the brake is released and the arm must reach the remembered
  target; the target stays hidden.

Reward: Reacher-v5's −distance − control cost during the reach, 0 before it. The episode is truncated at
``horizon = cue_steps + delay_steps + reach_steps`` (500 by default). ``info["is_success"]`` is whether
the reach has started and the fingertip is within ``success_radius`` of the target: its value at the
last step is the episode's success. ``info["full_state"]`` is the unmasked observation (the expert's).
"""

from __future__ import annotations

import numpy as np
from gymnasium.envs.mujoco.reacher_v5 import ReacherEnv

TARGET_DIMS = np.r_[4:6, 8:10]
"""Observation dims that reveal the target: its position and the fingertip − target vector."""


class MemoryReacherEnv(ReacherEnv):
    def __init__(self, cue_steps: int = 10, delay_steps: int = 390, reach_steps: int = 100,
                 success_radius: float = 0.02, **kwargs):  # fmt: skip
        for name, value in (("cue_steps", cue_steps), ("reach_steps", reach_steps)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if delay_steps < 0:
            raise ValueError(f"delay_steps must be >= 0, got {delay_steps}")
        super().__init__(**kwargs)
        self.cue_steps, self.success_radius = cue_steps, success_radius
        self.go_step = cue_steps + delay_steps
        self.horizon = self.go_step + reach_steps
        self._t = 0

    def _task_obs(self, full: np.ndarray) -> np.ndarray:
        obs = full.copy()
        if self._t >= self.cue_steps:
            obs[TARGET_DIMS] = 0.0
        return obs

    def _distance(self) -> float:
        return float(np.linalg.norm(self.get_body_com("fingertip") - self.get_body_com("target")))

    def reset(self, *, seed=None, options=None):
        self._t = 0
        full, info = super().reset(seed=seed, options=options)
        return self._task_obs(full), info | {"full_state": full, "is_success": False}

    def step(self, action):
        reaching = self._t >= self.go_step
        if reaching:
            self.do_simulation(action, self.frame_skip)
            reward, info = self._get_rew(action)
        else:
            reward, info = 0.0, {"reward_dist": 0.0, "reward_ctrl": 0.0}
        self._t += 1
        full = self._get_obs()
        info |= {"full_state": full, "is_success": reaching and self._distance() < self.success_radius}
        if self.render_mode == "human":
            self.render()
        return self._task_obs(full), reward, False, self._t >= self.horizon, info
