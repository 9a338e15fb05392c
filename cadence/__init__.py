"""Cadence: robot policy learning with oscillatory state-space models (LinOSS / D-LinOSS).

Rendering defaults to MuJoCo's offscreen EGL backend (``MUJOCO_GL=egl``, set here before anything imports
MuJoCo unless the user chose a backend); on a desktop with a display use ``MUJOCO_GL=glfw``.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
