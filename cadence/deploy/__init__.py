"""Real-time control: step a trained policy one observation at a time, and export the step.

* :class:`Controller` / :class:`ControllerConfig` — load a checkpoint, ``reset()``, ``action = controller(obs)``.
* :class:`NumbaLinOSSStep` — the fused LinOSS policy step as one numba kernel (the Controller's default
  runtime for LinOSS).
* :class:`PolicyStep` — the step as a module with explicit state in and out; :data:`FUSED_STEPS`
  holds per-backbone fused kernels (LinOSS), with ``backbone.step`` as the fallback.
* :func:`export_torchscript`, :func:`export_onnx` — the step as a TorchScript or ONNX file.
* :func:`state_envelope` — long-run boundedness of the state on random observations.

See docs/deploy.md.
"""

from .controller import Controller, ControllerConfig
from .export import export_onnx, export_torchscript, state_names
from .numba_step import NumbaLinOSSStep
from .stability import state_envelope
from .step import FUSED_STEPS, PolicyStep

__all__ = ["Controller", "ControllerConfig", "NumbaLinOSSStep", "PolicyStep", "FUSED_STEPS", "export_onnx",
           "export_torchscript", "state_names", "state_envelope"]
