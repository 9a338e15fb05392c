"""Delayed command tracking: Reacher-v5's arm, position-servoed, must hold at each step the command shown k
steps earlier (POPGym's RepeatPrevious made continuous): a memory of a sliding window, not of one item.

The command stream c_t ∈ [−1, 1]² (joint angles, rad) is fresh each episode: piecewise constant, each step a
new uniform command with probability 1/``mean_hold_steps`` (and at t = 0). The arm's two torque motors are
replaced by stiff position servos (ω = ``servo_omega`` rad/s, critically damped; physics step 2 ms, 10 per
0.02 s control step) that settle on a new setpoint within one control step, so holding the delayed command
is a memory problem, not a dynamics problem: the expert's action is c_{t−k} itself.

Observation (4,): the current command c_t (2), then the delayed command c_{t−k} (2) with
``full_information`` (the validity control), zeros without. The arm's posture is not observed: it is the
policy's own last action, which would give a memory-less policy a one-slot memory. ``info["full_state"]`` is
the full-information observation (the expert's and the floor's input).

The best memory-less policy (the floor): given c_t alone, c_{t−k} equals c_t when no switch happened in the
last k steps (probability p_k = (1 − 1/mean_hold_steps)^k) and is otherwise an independent draw of mean 0, so
E[c_{t−k} | c_t] = p_k c_t minimizes the expected squared error, at E‖c‖²(1 − p_k²) = ⅔(1 − p_k²) per step
(tracking c_t itself: ⅔·2(1 − p_k); holding the mean 0: ⅔).

Scoring, over the ``track_steps`` steps t ≥ k (the first k have no delayed command yet; their target is
c_0, and they earn nothing): the squared error e_t = ‖q_{t+1} − c_{t−k}‖² (the arm's joint angles after the
step against the delayed command) and the floor's f_t = ‖p_k c_t − c_{t−k}‖² on the same stream give the
reward 100·(f_t − e_t)/Σf, so an episode's return is its normalized score 100·(1 − Σe/Σf): 0 for the floor
and 100 for exact tracking on every episode, with no reference sampling noise. ``info["is_success"]``: the
RMS of e so far is at most ``success_rms``; its value at the last step is the episode's success. The episode
is truncated at ``horizon = k + track_steps``.
"""

from __future__ import annotations

import mujoco
import numpy as np
from gymnasium.envs.mujoco.reacher_v5 import ReacherEnv
from gymnasium.spaces import Box

PHYSICS_STEP = 0.002
"""Physics time step (s) of the servoed arm; ``frame_skip`` 10 keeps Reacher-v5's 0.02 s control period."""


class DelayedTrackingEnv(ReacherEnv):
    """Delayed command tracking with a lag of ``lag_steps`` = k (module docstring)."""

    def __init__(self, lag_steps: int = 16, track_steps: int = 200, mean_hold_steps: float = 16.0,
                 success_rms: float = 0.1, full_information: bool = False, servo_omega: float = 600.0,
                 **kwargs):  # fmt: skip
        if lag_steps < 1 or track_steps < 1:
            raise ValueError(f"lag_steps and track_steps must be >= 1, got {lag_steps} and {track_steps}")
        if mean_hold_steps < 1:
            raise ValueError(f"mean_hold_steps must be >= 1, got {mean_hold_steps}")
        self.servo_omega = servo_omega
        super().__init__(frame_skip=10, **kwargs)
        self.lag, self.mean_hold_steps, self.success_rms = lag_steps, mean_hold_steps, success_rms
        self.full_information = full_information
        self.horizon = lag_steps + track_steps
        self.memory_horizon = lag_steps
        """The longest lag between an observation and an action that needs it: c_{t−k} is acted on at t. Trainers
        read it (``cadence.training.run.memory_horizon``)."""
        self.observation_space = Box(-1.0, 1.0, (4,), np.float64)
        self.commands = np.zeros((self.horizon + 1, 2))
        """The episode's command stream c_t (horizon + 1, 2), drawn at reset."""
        self.floor_errors = np.zeros(self.horizon)
        """The floor's squared error f_t (horizon,) on this stream, 0 before t = k."""
        self._t, self._sq_error, self._scored = 0, 0.0, 0

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        """Reacher-v5's model with position servos (setpoint = joint angle) in place of its motors."""
        spec = mujoco.MjSpec.from_file(self.fullpath)
        spec.option.timestep = PHYSICS_STEP
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
        for actuator in spec.actuators:  # joint inertia ≈ the armature, 1 kg·m²
            actuator.gear = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
            actuator.set_to_position(kp=self.servo_omega**2, kv=2 * self.servo_omega)
        model = spec.compile()
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)

    @property
    def floor_gain(self) -> float:
        """p_k: the probability that the command did not change in the last k steps; the floor acts p_k c_t."""
        return (1.0 - 1.0 / self.mean_hold_steps) ** self.lag

    def _delayed(self) -> np.ndarray:
        return self.commands[max(self._t - self.lag, 0)]

    def _observation(self, full: bool) -> np.ndarray:
        return np.concatenate([self.commands[self._t], self._delayed() if full else np.zeros(2)])

    def _get_obs(self) -> np.ndarray:
        return self._observation(self.full_information)

    def reset_model(self) -> np.ndarray:
        n = len(self.commands)
        switch = self.np_random.random(n) < 1.0 / self.mean_hold_steps
        switch[0] = True
        values = self.np_random.uniform(-1.0, 1.0, (n, 2))
        self.commands = values[np.maximum.accumulate(np.where(switch, np.arange(n), 0))]
        scored = np.arange(self.lag, self.horizon)
        self.floor_errors = np.zeros(self.horizon)
        floor_miss = self.floor_gain * self.commands[scored] - self.commands[scored - self.lag]
        self.floor_errors[scored] = np.sum(floor_miss**2, axis=1)
        self.set_state(self.init_qpos, self.init_qvel)
        return self._get_obs()

    def reset(self, *, seed=None, options=None):
        self._t, self._sq_error, self._scored = 0, 0.0, 0
        obs, info = super().reset(seed=seed, options=options)
        return obs, info | {"full_state": self._observation(True), "is_success": False}

    def step(self, action):
        target = self._delayed()
        self.do_simulation(action, self.frame_skip)
        sq_error = float(np.sum((self.data.qpos[:2] - target) ** 2))
        reward = 0.0
        if self._t >= self.lag:
            self._sq_error, self._scored = self._sq_error + sq_error, self._scored + 1
            reward = 100.0 * (self.floor_errors[self._t] - sq_error) / self.floor_errors.sum()
        self._t += 1
        rms = np.sqrt(self._sq_error / self._scored) if self._scored else np.inf
        info = {"full_state": self._observation(True), "is_success": bool(rms <= self.success_rms),
                "tracking_error": np.sqrt(sq_error), "rms_error": float(rms)}  # fmt: skip
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), reward, False, self._t >= self.horizon, info
