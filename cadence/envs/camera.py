"""Camera frames of a MuJoCo task, rendered offscreen beside its state observation.

A task whose env config has a ``camera`` section (:class:`CameraConfig`) renders that camera after every reset
and step (MuJoCo's renderer, EGL offscreen by default: :mod:`cadence`) and puts the frame in
``info[CAMERA.feature]``, e.g. ``info["observation.images.top"]``, uint8 (H, W, 3) as LeRobot records a camera
feature. The observation stays the state vector, so state-only code runs unchanged; ``cadence-collect
render=true`` records the frames as a LeRobot video feature, and the evaluation hands them to image policies
(a vector env stacks them to (n, H, W, 3); with same-step autoreset, the frame beside a done flag is the next
episode's first, like the observation).

Rendering at 64 × 64 costs ~7 ms a frame on the 2-core CPU machines (Mesa's software EGL), most of a step.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

IMAGES_PREFIX = "observation.images."
"""LeRobot's prefix of camera features."""


@dataclass
class CameraConfig:
    """One camera of a MuJoCo task (``camera:`` in its env config)."""

    key: str = "main"
    """The camera feature is ``observation.images.KEY``."""
    height: int = 64
    width: int = 64
    name: str | None = None
    """A camera of the MuJoCo model (``camera_name``); None: the env's free camera, placed by ``view``."""
    view: dict | None = None
    """The free camera's placement (MuJoCo ``default_camera_config``: distance, elevation, azimuth, lookat,
    trackbodyid); None: the env's own default view."""

    def __post_init__(self):
        if self.height < 1 or self.width < 1:
            raise ValueError(f"camera height and width must be >= 1 pixel, got {self.height} x {self.width}")
        if not self.key or "." in self.key:
            raise ValueError(f"camera key {self.key!r} must be a non-empty name without dots (the feature is "
                             f"{IMAGES_PREFIX}KEY)")  # fmt: skip
        if self.name is not None and self.view is not None:
            raise ValueError(f"camera {self.key}: a named MuJoCo camera ({self.name}) has its own placement; set "
                             "either name or view")  # fmt: skip

    @property
    def feature(self) -> str:
        """The LeRobot feature (and ``info`` key) of the frames."""
        return IMAGES_PREFIX + self.key

    def env_kwargs(self) -> dict:
        """The ``gymnasium.make`` kwargs of a MuJoCo v5 env that render this camera."""
        kwargs = {"width": self.width, "height": self.height}
        if self.name is not None:
            kwargs["camera_name"] = self.name
        if self.view is not None:
            kwargs["default_camera_config"] = {k: np.asarray(v, float) if isinstance(v, list) else v
                                               for k, v in self.view.items()}  # fmt: skip
        return kwargs


class CameraFrames(gym.Wrapper):
    """Adds the frame of ``camera`` to ``info`` on every reset and step (module docstring)."""

    def __init__(self, env: gym.Env, camera: CameraConfig):
        super().__init__(env)
        if getattr(env.unwrapped, "mujoco_renderer", None) is None:
            raise ValueError(f"{env.spec.id if env.spec else type(env.unwrapped).__name__} is not a MuJoCo env, so "
                             "Cadence cannot render its camera: remove the env config's camera section, or use a "
                             "MuJoCo task")  # fmt: skip
        self.camera = camera

    def frame(self) -> np.ndarray:
        """The camera's current view, uint8 (H, W, 3), C-contiguous (the renderer returns a flipped view)."""
        return np.ascontiguousarray(self.env.unwrapped.mujoco_renderer.render("rgb_array"))

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        return obs, info | {self.camera.feature: self.frame()}

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, info | {self.camera.feature: self.frame()}
