"""Cadence: robot policy learning with oscillatory state-space models (LinOSS / D-LinOSS).

Rendering defaults to MuJoCo's offscreen EGL backend (``MUJOCO_GL=egl``, set here before anything imports
MuJoCo unless the user chose a backend); on a desktop with a display use ``MUJOCO_GL=glfw``. The AV1 encoder
LeRobot records camera videos with (SVT-AV1) logs only its errors (``SVT_LOG=1``, unless the user set it): at its
default level it prints ~20 lines per episode.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("SVT_LOG", "1")
