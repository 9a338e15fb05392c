"""Cue → delay → reach: Reacher-v5's arm must reach one of K fixed targets, cued only before a long delay.

Timeline of an episode (control period 0.02 s, as Reacher-v5), ``go = cue_steps + delay_steps``:

* cue, observations ``[0, cue_steps)``: the target's index is shown as a one-hot;
* delay, observations ``[cue_steps, go)``: the cue reads zero;
* reach, observations ``[go, horizon)``: the "go" flag reads 1 and the arm must reach the remembered target.

The arm is braked until go (the simulation is not stepped, actions have no effect) and starts at rest in a
posture drawn independently of the target, so neither its posture nor its motion carries the target through
the delay, and the timeline does not depend on it: the cue is the only channel. Without a memory of the cue,
the reach is independent of the target, so no policy succeeds more often than chance = 1/K.

Observation (7 + K,): cos q (2), sin q (2), q̇ (2), cue (K, one-hot while shown), go (1); without q̇ with
``velocities=False``. With
``full_information`` the cue is shown at every step (the validity control); ``info["full_state"]`` is always
that full-information observation (the expert's). The targets lie on a circle of ``target_radius`` around the
arm's base at angles 2π(i + ½)/K, all reachable (the arm reaches 0.01–0.21 m).

Reward: 1 per reach step with the fingertip within ``success_radius`` of the target, else 0 (a return that
holding still does not earn). ``info["is_success"]``: the reach has started and the fingertip is within
``success_radius`` of the target; its value at the last step is the episode's success, the task's score.
The episode is truncated at ``horizon = go + reach_steps``. The default radius, 5 cm, is less than half the
distance between neighbouring targets (21 cm at K = 4), so success says the arm went to the cued target: the
score measures memory, not the last centimetres of a reach (BC policies that carried the cue ended 3–8 cm from
it, docs/results.md).

``cue_steps = 0``: the state never shows the cue. The target is Reacher's own target geom, placed at the cued
position, so a camera sees it at every step: with ``delay_steps = 0`` and a camera (``env=reach_pixels``) this is a
task that needs the camera, the state alone being at chance (docs/tasks.md, "Reaching from pixels").
``velocities=False`` (:func:`make_cue_delay`, the id's entry point) leaves q̇ out of the observation (5 + K
entries; the full state keeps it): once a reach has begun, q̇ shows its direction, which BC then learns to continue
instead of reading the camera (the copycat shortcut, :data:`cadence.envs.reacher_arm.ARM`).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.envs.mujoco.reacher_v5 import ReacherEnv
from gymnasium.spaces import Box

from .partial import MaskObservation

START_ELBOW = 2.5
"""The start posture: shoulder angle uniform in [−π, π), elbow uniform in [−2.5, 2.5] rad."""


class CueDelayReacherEnv(ReacherEnv):
    """Cue → delay → reach (module docstring); ``target`` is the index of the episode's cued target."""

    def __init__(self, num_targets: int = 4, cue_steps: int = 5, delay_steps: int = 64, reach_steps: int = 50,
                 target_radius: float = 0.15, success_radius: float = 0.05, full_information: bool = False,
                 **kwargs):  # fmt: skip
        for name, value in (("num_targets", num_targets), ("reach_steps", reach_steps)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        for name, value in (("cue_steps", cue_steps), ("delay_steps", delay_steps)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if not 0.02 <= target_radius <= 0.2:
            raise ValueError(f"target_radius must be in [0.02, 0.2] m (the arm reaches 0.01-0.21 m), "
                             f"got {target_radius}")  # fmt: skip
        if not 0 < success_radius < target_radius * np.sin(np.pi / num_targets):
            raise ValueError(f"success_radius must be in (0, {target_radius * np.sin(np.pi / num_targets):.3f}) m, half "
                             f"the distance between neighbouring targets, so that success names the target; got "
                             f"{success_radius}")  # fmt: skip
        super().__init__(**kwargs)
        angles = 2 * np.pi * (np.arange(num_targets) + 0.5) / num_targets
        self.targets = target_radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        """Target positions (K, 2) relative to the arm's base."""
        self.cue_steps, self.success_radius, self.full_information = cue_steps, success_radius, full_information
        self.go_step = cue_steps + delay_steps
        self.horizon = self.go_step + reach_steps
        self.memory_horizon = self.horizon
        """The longest lag between an observation and an action that needs it: the cue (step 0) guides the reach
        up to the last step. Trainers read it (``cadence.training.run.memory_horizon``): whole-episode batches,
        the LinOSS τ_max rule, a Transformer context that covers it."""
        self.cue_dims = slice(6, 6 + num_targets)
        self.go_dim = 6 + num_targets
        self.observation_space = Box(-np.inf, np.inf, (7 + num_targets,), np.float64)
        self.target, self._t = 0, 0

    def _observation(self, cue_shown: bool) -> np.ndarray:
        q = self.data.qpos[:2]
        obs = np.concatenate([np.cos(q), np.sin(q), self.data.qvel[:2], np.zeros(len(self.targets) + 1)])
        if cue_shown:
            obs[self.cue_dims.start + self.target] = 1.0
        obs[self.go_dim] = float(self._t >= self.go_step)
        return obs

    def _get_obs(self) -> np.ndarray:
        return self._observation(self.full_information or self._t < self.cue_steps)

    def _distance(self) -> float:
        return float(np.linalg.norm(self.get_body_com("fingertip") - self.get_body_com("target")))

    def reset_model(self) -> np.ndarray:
        q = [self.np_random.uniform(-np.pi, np.pi), self.np_random.uniform(-START_ELBOW, START_ELBOW)]
        self.target = int(self.np_random.integers(len(self.targets)))
        self.set_state(np.concatenate([q, self.targets[self.target]]), np.zeros(self.model.nv))
        return self._get_obs()

    def reset(self, *, seed=None, options=None):
        self._t = 0
        obs, info = super().reset(seed=seed, options=options)
        return obs, info | {"full_state": self._observation(True), "is_success": False}

    def step(self, action):
        reaching = self._t >= self.go_step
        if reaching:
            self.do_simulation(action, self.frame_skip)
        self._t += 1
        distance = self._distance()
        on_target = reaching and distance < self.success_radius
        info = {"full_state": self._observation(True), "is_success": on_target, "distance": distance}
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), float(on_target), False, self._t >= self.horizon, info


VELOCITIES = [4, 5]
"""q̇'s entries in the observation."""


def make_cue_delay(velocities: bool = True, **kwargs) -> gym.Env:
    """Entry point of ``Cadence/CueDelayReacher-v0``: :class:`CueDelayReacherEnv` (``kwargs``), observing q̇ or, with
    ``velocities=False``, everything else (its ``unwrapped`` observation stays the full one)."""
    env = CueDelayReacherEnv(**kwargs)
    if velocities:
        return env
    return MaskObservation(env, np.delete(np.arange(env.observation_space.shape[0]), VELOCITIES))
