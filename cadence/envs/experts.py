"""Scripted experts: LQR (InvertedPendulum), inverse kinematics + PD (reachers), CPG gait (Swimmer), the delayed
command (delayed tracking); and the floor policies that replace the random policy as a task's normalized-score 0.

An expert is any callable ``expert(full_state (D,)) -> action (A,)`` with an optional ``reset()`` called at
every episode start; it sees the task's full state (``info["full_state"]``), never the masked
observation. :func:`make_expert` builds a registered one by name for an env; learned experts register
the same way (``EXPERTS[name] = factory(env) -> expert``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import gymnasium as gym
import mujoco
import numpy as np

from .cue_delay import CueDelayReacherEnv
from .delayed_tracking import DelayedTrackingEnv


@runtime_checkable
class Expert(Protocol):
    def __call__(self, full_state: np.ndarray) -> np.ndarray: ...


def reset_expert(expert: Expert) -> None:
    """Calls ``expert.reset()`` when the expert has one (stateful experts: clocks, filters)."""
    if callable(getattr(expert, "reset", None)):
        expert.reset()


# ---------------------------------------------------------------------------------------------- LQR


def linearize(model: mujoco.MjModel, frame_skip: int) -> tuple[np.ndarray, np.ndarray]:
    """Discrete-time (A (2nv, 2nv), B (2nv, nu)) of one control step about ``qpos0``, zero velocity and
    zero control, for the state ``[qpos, qvel]``.

    ``mjd_transitionFD`` differentiates one ``mj_step``; it needs an integrator without RK4's sub-steps,
    so a copy of the model is switched to Euler. The ``frame_skip`` physics steps of a control step
    (control held) compose to A_c = Aᶠ, B_c = Σᵢ Aⁱ B.
    """
    m = copy.copy(model)
    m.opt.integrator = mujoco.mjtIntegrator.mjINT_EULER
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    nx = 2 * m.nv
    A, B = np.zeros((nx, nx)), np.zeros((nx, m.nu))
    mujoco.mjd_transitionFD(m, d, 1e-6, True, A, B, None, None)
    A_c, B_c = np.eye(nx), np.zeros_like(B)
    for _ in range(frame_skip):
        B_c = A @ B_c + B
        A_c = A @ A_c
    return A_c, B_c


def dlqr(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray, tol: float = 1e-10,
         max_iter: int = 100_000) -> np.ndarray:  # fmt: skip
    """Gain K (nu, nx) of u = −Kx minimizing Σ xᵀQx + uᵀRu, by iterating the discrete Riccati equation."""
    P = Q.copy()
    for _ in range(max_iter):
        K = np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
        P_next = Q + A.T @ P @ (A - B @ K)
        if np.max(np.abs(P_next - P)) <= tol * max(1.0, np.max(np.abs(P))):
            return K
        P = P_next
    raise ValueError(f"the Riccati iteration did not converge in {max_iter} steps: is (A, B) stabilizable?")


class LQRExpert:
    """u = clip(−K [qpos − qpos0, qvel]) for tasks whose full state is ``[qpos, qvel]`` (InvertedPendulum)."""

    def __init__(self, env: gym.Env, q_pos: float = 1.0, q_vel: float = 0.1, r: float = 0.1):
        u = env.unwrapped
        model = u.model
        if getattr(u, "observation_structure", None) != {"qpos": model.nq, "qvel": model.nv} or model.nq != model.nv:
            raise ValueError(f"the lqr expert needs a full state [qpos, qvel] with hinge/slide joints only; "
                             f"{type(u).__name__} observes {getattr(u, 'observation_structure', 'something else')}")  # fmt: skip
        A, B = linearize(model, u.frame_skip)
        Q = np.diag([q_pos] * model.nq + [q_vel] * model.nv)
        self.K = dlqr(A, B, Q, r * np.eye(model.nu))
        self.x0 = np.concatenate([model.qpos0, np.zeros(model.nv)])
        self.low, self.high = env.action_space.low, env.action_space.high

    def __call__(self, full_state: np.ndarray) -> np.ndarray:
        return np.clip(-self.K @ (full_state - self.x0), self.low, self.high)


# --------------------------------------------------------------------------------- reacher (IK + PD)


class ReacherExpert:
    """Joint-space PD to the inverse-kinematics solution for the target (Reacher-v5).

    Full state (10,): cos q (2), sin q (2), target (2), q̇ (2), fingertip − target (2). The fingertip is
    found by forward kinematics with the link lengths read from the model, so target = fingertip −
    (fingertip − target) relative to the arm's base. Of the two elbow solutions the one nearer the
    current posture is taken.
    """

    name, needs = "reacher", "Reacher-v5's arm and observation"

    def __init__(self, env: gym.Env, kp: float = 1.0, kd: float = 0.1):
        model = env.unwrapped.model
        names = {model.body(i).name for i in range(model.nbody)}
        if not {"body0", "body1", "fingertip"} <= names or not self.reads(env.unwrapped):
            raise ValueError(f"the {self.name} expert needs {self.needs}; got {type(env.unwrapped).__name__}")
        self.l1 = float(np.linalg.norm(model.body("body1").pos))
        self.l2 = float(np.linalg.norm(model.body("fingertip").pos))
        self.q1_limit = float(model.joint("joint1").range[1])
        self.kp, self.kd = kp, kd

    def tip(self, q: np.ndarray) -> np.ndarray:
        return np.array([self.l1 * np.cos(q[0]) + self.l2 * np.cos(q[0] + q[1]),
                         self.l1 * np.sin(q[0]) + self.l2 * np.sin(q[0] + q[1])])  # fmt: skip

    def inverse_kinematics(self, target: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Joint angles (2,) putting the fingertip on ``target`` (clamped into the workspace), nearest ``q``."""
        l1, l2 = self.l1, self.l2
        d2 = np.clip(target @ target, (l1 - l2) ** 2 + 1e-9, (l1 + l2) ** 2 - 1e-9)
        elbow = np.arccos(np.clip((d2 - l1**2 - l2**2) / (2 * l1 * l2), -1.0, 1.0))
        best, best_cost = q, np.inf
        for q1 in (elbow, -elbow):
            if abs(q1) > self.q1_limit:
                continue
            q0 = np.arctan2(target[1], target[0]) - np.arctan2(l2 * np.sin(q1), l1 + l2 * np.cos(q1))
            cand = np.array([q[0] + wrap(q0 - q[0]), q1])
            cost = np.sum((cand - q) ** 2)
            if cost < best_cost:
                best, best_cost = cand, cost
        return best

    @staticmethod
    def reads(env: gym.Env) -> bool:
        """Whether this expert can read the (unwrapped) task's full state."""
        return env.observation_space.shape == (10,)

    def reach(self, target: np.ndarray, q: np.ndarray, q_dot: np.ndarray) -> np.ndarray:
        """The PD action (2,) driving joint angles ``q`` (velocities ``q_dot``) to put the fingertip on ``target``."""
        return np.clip(self.kp * (self.inverse_kinematics(target, q) - q) - self.kd * q_dot, -1.0, 1.0)

    def __call__(self, full_state: np.ndarray) -> np.ndarray:
        q = np.arctan2(full_state[2:4], full_state[0:2])
        return self.reach(self.tip(q) - full_state[8:10], q, full_state[6:8])


class CueReacherExpert(ReacherExpert):
    """The reacher's IK + PD on the cue → delay task: zero action while the arm is braked, then a reach to
    the cued target of the full state (``Cadence/CueDelayReacher-v0``, where the cue is always shown).

    ``target=i`` makes it reach target i whatever the cue: a memory-less policy, at chance (1/K).
    """

    name, needs = "cue_reacher", "the cue → delay reacher (Cadence/CueDelayReacher-v0)"

    def __init__(self, env: gym.Env, target: int | None = None, kp: float = 1.0, kd: float = 0.1):
        super().__init__(env, kp, kd)
        u = env.unwrapped
        if target is not None and not 0 <= target < len(u.targets):
            raise ValueError(f"target must be in [0, {len(u.targets)}), got {target}")
        self.targets, self.target, self.cue_dims, self.go_dim = u.targets, target, u.cue_dims, u.go_dim

    @staticmethod
    def reads(env: gym.Env) -> bool:
        return isinstance(env, CueDelayReacherEnv)

    def __call__(self, full_state: np.ndarray) -> np.ndarray:
        if full_state[self.go_dim] < 0.5:
            return np.zeros(2)
        cued = int(np.argmax(full_state[self.cue_dims])) if self.target is None else self.target
        return self.reach(self.targets[cued], np.arctan2(full_state[2:4], full_state[0:2]), full_state[4:6])


def wrap(angle: np.ndarray | float) -> np.ndarray | float:
    """Angle wrapped into [−π, π)."""
    return (angle + np.pi) % (2 * np.pi) - np.pi


# ----------------------------------------------------------------------------------- CPG (Swimmer)


class CPGExpert:
    """Open-loop travelling wave: joint i gets ``amplitude · sin(2π f t − i · phase_lag)``.

    ``t`` is the time since the episode's start (steps × the env's control period), so ``reset()`` must be
    called at every episode start. The defaults swim Swimmer-v5 forward at f = 0.6 Hz (period ≈ 1.7 s, 42
    control steps at 25 Hz), with the wave travelling head to tail at a lag of 1.0 rad per joint (return ≈ 169).
    """

    def __init__(self, env: gym.Env, frequency: float = 0.6, phase_lag: float = 1.0, amplitude: float = 1.0):
        self.dt = env.unwrapped.dt
        self.frequency, self.amplitude = frequency, amplitude
        self.phases = phase_lag * np.arange(env.action_space.shape[0])
        self.low, self.high = env.action_space.low, env.action_space.high
        self.t = 0

    def reset(self) -> None:
        self.t = 0

    def __call__(self, full_state: np.ndarray) -> np.ndarray:
        action = self.amplitude * np.sin(2 * np.pi * self.frequency * self.t * self.dt - self.phases)
        self.t += 1
        return np.clip(action, self.low, self.high)


# ---------------------------------------------------------------------------------- delayed tracking


def require_task(env: gym.Env, cls: type, expert: str) -> None:
    """Raises a ValueError naming ``expert`` unless ``env`` is a ``cls`` task."""
    if not isinstance(env.unwrapped, cls):
        raise ValueError(f"the {expert} expert needs a {cls.__name__} task; got {type(env.unwrapped).__name__}")


class DelayedTrackerExpert:
    """Holds the delayed command: action = c_{t−k}, dims 2:4 of the full state (``Cadence/DelayedTracking-v0``)."""

    def __init__(self, env: gym.Env):
        require_task(env, DelayedTrackingEnv, "delayed_tracker")

    def __call__(self, full_state: np.ndarray) -> np.ndarray:
        return full_state[2:4].copy()


class TrackingFloor:
    """The best memory-less policy of delayed tracking, its normalized score's 0: action = gain · c_t with
    gain p_k = (1 − 1/mean_hold_steps)^k, E[c_{t−k} | c_t] (derived in :mod:`cadence.envs.delayed_tracking`).
    ``gain=1`` tracks the current command, ``gain=0`` holds the stream's mean."""

    def __init__(self, env: gym.Env, gain: float | None = None):
        require_task(env, DelayedTrackingEnv, "tracking floor")
        self.gain = env.unwrapped.floor_gain if gain is None else gain

    def __call__(self, full_state: np.ndarray) -> np.ndarray:
        return self.gain * full_state[0:2]


class HoldStill:
    """The zero action: on Reacher-Arm (``Cadence/Reacher-Arm-v5``), the best target-blind policy by return we
    found (-11.4 over 100 episodes; reaching the arena's centre cannot fold the arm, reaching a point 5 cm out
    returns -15.8), its normalized score's 0."""

    def __init__(self, env: gym.Env):
        self.zero = np.zeros(env.action_space.shape, env.action_space.dtype)

    def __call__(self, full_state: np.ndarray) -> np.ndarray:
        return self.zero


# ----------------------------------------------------------------------------------------- registry


EXPERTS: dict[str, Callable[[gym.Env], Expert]] = {
    "lqr": LQRExpert, "reacher": ReacherExpert, "cue_reacher": CueReacherExpert, "cpg": CPGExpert,
    "delayed_tracker": DelayedTrackerExpert,
}  # fmt: skip
"""Expert factories by name: ``factory(env) -> expert``."""

FLOORS: dict[str, Callable[[gym.Env], Expert]] = {"Cadence/DelayedTracking-v0": TrackingFloor,
                                                   "Cadence/Reacher-Arm-v5": HoldStill}  # fmt: skip
"""Floor policies by Gymnasium id: the normalized score's 0 for tasks where a uniform random policy would be a
straw man (their best memory-less policy); tasks not listed use the random policy (``cadence.datasets``)."""


def make_expert(name: str, env: gym.Env, **kwargs) -> Expert:
    """The expert ``name`` for ``env`` (kwargs go to its factory); an unknown name lists the valid ones."""
    if name not in EXPERTS:
        raise ValueError(f"unknown expert {name!r}; valid experts: {', '.join(sorted(EXPERTS))} "
                         "(or pass any callable expert(full_state) -> action to collect_dataset)")  # fmt: skip
    return EXPERTS[name](env, **kwargs)


def make_floor(env: gym.Env) -> Expert | None:
    """The floor policy registered for ``env``'s Gymnasium id in :data:`FLOORS`, or None (random policy)."""
    factory = FLOORS.get(env.spec.id) if env.spec is not None else None
    return None if factory is None else factory(env)
